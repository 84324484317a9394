"""The daily loop end to end on real files: config → file source → SQLite → rank → templates → Maildir."""

from __future__ import annotations

import datetime as dt
import email
import json
import mailbox
from email.message import Message, MIMEPart
from pathlib import Path
from typing import cast

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select
from typer.testing import CliRunner

from digest import store
from digest.cli import app
from tests.helpers import papers_json

CONFIG = """
database_url = "sqlite:///state/digest.db"

[schedule]
send_at = "07:00"

[delivery]
trending = 0                  # these tests are about the personal picks
maildir = "mail"
from = "Papers <papers@example.org>"

[[sources]]
name = "today"
type = "file"
path = "today.json"

[[subscribers]]
email = "ada@example.org"
name = "Ada Lovelace"
keywords = ["state space model", "mamba"]

[[subscribers]]
email = "grace@example.org"
keywords = ["quantization"]
timezone = "America/Los_Angeles"
"""

DAY1: list[dict[str, object]] = [
    {"title": "Mamba Meets Vision", "summary": "We apply mamba state space models to images.", "upvotes": 30},
    {"title": "Low-bit Quantization of LLMs", "summary": "Quantization to 2 bits.", "upvotes": 10},
    {"title": "A Study of Protein Folding", "summary": "Nothing about our topics.", "upvotes": 99},
]
DAY2: list[dict[str, object]] = [
    *DAY1,
    {"title": "Selective State Space Models Revisited", "summary": "A state space model study."},
]


def _setup(tmp_path: Path, papers: list[dict[str, object]]) -> Path:
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "today.json").write_text(json.dumps(papers_json(papers)))
    config = tmp_path / "digest.toml"
    config.write_text(CONFIG)
    return config


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


def _messages(tmp_path: Path) -> list[Message]:
    box = mailbox.Maildir(tmp_path / "mail", create=False)
    return [email.message_from_bytes(box.get_bytes(key)) for key in sorted(box.keys())]


def _by_rcpt(messages: list[Message]) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = {}
    for m in messages:
        out.setdefault(email.utils.parseaddr(m["To"])[1], []).append(m)
    return out


def _titles(msg: Message) -> str:
    part = msg.get_body(("plain",)) if isinstance(msg, MIMEPart) else None
    if part is None:
        for p in msg.walk():
            if p.get_content_type() == "text/plain":
                payload = p.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode()
    assert part is not None
    return part.get_content()


def test_send_is_idempotent_and_day_two_sends_only_new_papers(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    config = _setup(tmp_path, DAY1)
    with freeze_time("2026-11-23 16:00:00"):  # 16:00 UTC: Ada (UTC) and Grace (08:00 in Los Angeles) are due
        code, out = _run(config, "send")
        assert code == 0, out
        first = _messages(tmp_path)
        assert len(first) == 2
        code, _ = _run(config, "send")
        assert code == 0
        assert len(_messages(tmp_path)) == 2

    for msg in first:
        assert msg.get_content_type() == "multipart/alternative"
        parts = cast("list[Message]", msg.get_payload())  # multipart: a list of sub-messages
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert msg["Message-ID"].startswith("<digest-2026-11-23.")
        assert "Mon 23 Nov" in msg["Subject"]
    by = _by_rcpt(first)
    assert "Mamba Meets Vision" in by["ada@example.org"][0]["Subject"]
    assert "Protein" not in _titles(by["ada@example.org"][0])
    assert "Quantization" in by["grace@example.org"][0]["Subject"]

    _setup(tmp_path, DAY2)
    with freeze_time("2026-11-24 16:00:00"):
        code, out = _run(config, "send")
        assert code == 0, out
    second = [m for m in _messages(tmp_path) if m not in first]
    by2 = _by_rcpt(_messages(tmp_path)[len(first) :] if len(second) != 1 else second)
    assert list(by2) == ["ada@example.org"]  # Grace has nothing new: skipped, no mail
    text = _titles(by2["ada@example.org"][0])
    assert "Selective State Space Models Revisited" in text
    assert "Mamba Meets Vision" not in text

    engine = store.open_engine(db_url)
    with engine.connect() as conn:
        rows = store.history(conn, dt.date(2026, 11, 1))
    assert sorted((d.digest_date.isoformat(), d.subscriber, d.status) for d in rows) == [
        ("2026-11-23", "ada@example.org", "sent"),
        ("2026-11-23", "grace@example.org", "sent"),
        ("2026-11-24", "ada@example.org", "sent"),
        ("2026-11-24", "grace@example.org", "skipped"),
    ]


def test_papers_left_out_by_max_papers_do_not_come_back_the_next_day(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paper fetched in the run that built a digest was ranked for it: when `max_papers` cut it, the
    next day's digest does not bring it back (it holds only papers first seen after that digest)."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    config = _setup(
        tmp_path, [{"title": f"Mamba Variant {i}", "summary": "A mamba model.", "upvotes": 10 - i} for i in range(3)]
    )
    config.write_text(
        CONFIG.replace('keywords = ["state space model", "mamba"]', 'keywords = ["mamba"]\nmax_papers = 1')
    )
    with freeze_time("2026-11-23 16:00:00"):  # fetch and plan share one timestamp, as in every real run
        assert _run(config, "send")[0] == 0
    with freeze_time("2026-11-24 16:00:00"):
        assert _run(config, "send")[0] == 0
    by = _by_rcpt(_messages(tmp_path))
    assert len(by["ada@example.org"]) == 1, "day 2 has no new paper: skipped, not yesterday's leftovers"
    assert "Mamba Variant 0" in by["ada@example.org"][0]["Subject"]
    with store.open_engine(db_url).connect() as conn:
        rows = store.history(conn, dt.date(2026, 11, 1), "ada@example.org")
    assert sorted((d.digest_date.isoformat(), d.status) for d in rows) == [
        ("2026-11-23", "sent"),
        ("2026-11-24", "skipped"),
    ]


def test_not_due_before_send_time(tmp_path: Path) -> None:
    config = _setup(tmp_path, DAY1)
    with freeze_time("2026-11-23 06:59:00"):  # Ada: 06:59 in UTC; Grace: 22:59 on the 22nd in Los Angeles
        code, out = _run(config, "send")
    assert code == 0, out
    (grace,) = _messages(tmp_path)
    assert email.utils.parseaddr(grace["To"])[1] == "grace@example.org"
    assert "Sun 22 Nov" in grace["Subject"]
    with freeze_time("2026-11-23 07:00:00"):
        _run(config, "send")
    assert [email.utils.parseaddr(m["To"])[1] for m in _messages(tmp_path)].count("ada@example.org") == 1


def test_preview_json_records_and_sends_nothing(tmp_path: Path) -> None:
    config = _setup(tmp_path, DAY1)
    with freeze_time("2026-11-23 16:00:00"):
        code, out = _run(config, "preview", "--format", "json", "--subscriber", "ada@example.org")
    assert code == 0, out
    payload = json.loads(out[out.index("{") :])
    assert payload["subscriber"] == "ada@example.org"
    assert payload["date"] == "2026-11-23"
    (paper,) = payload["papers"]
    assert set(paper) == {"key", "arxiv_id", "title", "url", "score", "matched", "section", "liked"}  # issues 20, 17
    assert paper["section"] == "for_you"
    assert paper["title"] == "Mamba Meets Vision"
    assert sorted(paper["matched"]) == ["mamba", "state space model"]
    assert not (tmp_path / "mail").exists()
    engine = store.open_engine(f"sqlite:///{tmp_path / 'state' / 'digest.db'}")
    with engine.connect() as conn:
        for table in (store.paper_t, store.delivery_t, store.run_t):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0


def test_preview_eml_is_the_message_send_writes(tmp_path: Path) -> None:
    config = _setup(tmp_path, DAY1)
    eml = tmp_path / "preview.eml"
    with freeze_time("2026-11-23 16:00:00"):
        _run(config, "preview", "--format", "eml", "--output", str(eml))
        _run(config, "send", "--subscriber", "ada@example.org")
    box = mailbox.Maildir(tmp_path / "mail", create=False)
    (key,) = box.keys()
    assert eml.read_bytes() == box.get_bytes(key)


def test_text_preview_prints_digest_and_html_path(tmp_path: Path) -> None:
    config = _setup(tmp_path, DAY1)
    with freeze_time("2026-11-23 16:00:00"):
        code, out = _run(config, "preview")
    assert code == 0
    assert "1. Mamba Meets Vision" in out
    html_path = Path(out.rsplit("HTML version: ", 1)[1].strip())
    assert "<a href" in html_path.read_text() or "Mamba Meets Vision" in html_path.read_text()
