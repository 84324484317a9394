"""Feeds written by strangers: hostile items go through the real file source, store, ranking and email."""

from __future__ import annotations

import datetime as dt
import email
import json
import mailbox
import re
from email import policy
from pathlib import Path

from freezegun import freeze_time
from typer.testing import CliRunner

from digest import store
from digest.cli import app
from digest.sources.file import read_file

CONFIG = """
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
[[sources]]
name = "feed"
type = "file"
path = "feed.json"
[[subscribers]]
email = "ada@example.org"
keywords = ["mamba"]
max_papers = 50
"""


def item(title: object, summary: object = "About mamba.", **paper: object) -> dict[str, object]:
    return {"paper": {"title": title, "summary": summary, **paper}, "numComments": 1}


HOSTILE = [
    item("<script>alert('t')</script> Mamba title", "<script>alert('a')</script> mamba abstract"),
    item('Mamba <img src=x onerror="alert(1)"> images'),
    item("Mamba with javascript links", githubRepo="javascript:alert(1)", projectPage="data:text/html,<b>x</b>"),
    item("Mamba\r\nBcc: victim@example.org\r\nSubject: injected"),
    item("Mamba\x00with NUL\x00bytes"),
    item("Mamba huge abstract", "mamba " * 2_000_000),
    item(
        "Mamba wrong types",
        ["not", "a", "string"],
        upvotes="many",
        authors="Ada",
        ai_keywords={"a": 1},
        publishedAt=12,
        submittedOnDailyAt=["x"],
        githubStars="lots",
    ),
    item("Mamba far future", publishedAt="9999-12-31T23:59:59Z", submittedOnDailyAt="0001-01-01T00:00:00Z"),
    item("Mamba duplicate id one", id="2401.00001"),
    item("Mamba duplicate id two", id="2401.00001"),
    item(12345),
    item(None),
    {"paper": "just a string"},
    "not an object",
    None,
    [1, 2, 3],
    item("Mamba lone \ud800 surrogate", "mamba \udfff"),
    item("Mamba good paper", "A fine mamba state space paper.", id="2401.99999", upvotes=3),
]


def _send(tmp_path: Path) -> tuple[int, str]:
    (tmp_path / "digest.toml").write_text(CONFIG)
    with freeze_time("2026-11-23 08:00:00"):
        result = CliRunner().invoke(app, ["--config", str(tmp_path / "digest.toml"), "send"])
    return result.exit_code, result.output


def test_hostile_items_are_escaped_truncated_or_rejected(tmp_path: Path) -> None:
    (tmp_path / "feed.json").write_text(json.dumps(HOSTILE))
    code, out = _send(tmp_path)
    assert code == 0, out
    assert "Traceback" not in out

    result = read_file(tmp_path / "feed.json", "feed")
    assert len(result.rejected) == 6  # 12345 and None titles, "paper" a string, "not an object", None, a list
    assert all(r.reason for r in result.rejected)

    engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    with engine.connect() as conn:
        papers = {p.title: p for p in store.papers_seen_since(conn, dt.datetime(1970, 1, 1, tzinfo=dt.UTC))}
    assert "Mamba good paper" in papers
    huge = papers["Mamba huge abstract"]
    assert len(huge.abstract) <= 20_000
    assert "\x00" not in papers["Mamba with NUL bytes"].title
    assert papers["Mamba wrong types"].upvotes == 0 and papers["Mamba wrong types"].abstract == ""
    links = papers["Mamba with javascript links"]
    assert links.github_repo is None and links.project_page is None
    injected = [t for t in papers if t.startswith("Mamba Bcc")]
    assert injected and "\r" not in injected[0] and "\n" not in injected[0]
    # two items with one arXiv id are one paper
    assert sum(1 for p in papers.values() if p.arxiv_id == "2401.00001") == 1

    box = mailbox.Maildir(tmp_path / "mail", create=False)
    (key,) = box.keys()
    raw = box.get_bytes(key)
    msg = email.message_from_bytes(raw, policy=policy.default)
    subjects = msg.get_all("Subject")
    assert msg["Bcc"] is None and subjects and len(subjects) == 1
    assert "victim" not in str(msg["To"])
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "<script" not in html.lower()
    assert "<img src=x" not in html and "&lt;img src=x" in html
    for href in re.findall(r'href=["\']([^"\']*)', html):
        assert href.startswith(("http://", "https://", "mailto:")), href
    assert "javascript:" not in html.lower()
    assert len(raw) < 100_000


def test_invalid_utf8_and_deep_nesting_fail_cleanly(tmp_path: Path) -> None:
    (tmp_path / "feed.json").write_bytes(b'[{"paper": {"title": "Mamba \xff\xfe bad bytes", "summary": "x"}}]')
    code, out = _send(tmp_path)
    assert code == 0, out
    engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    with engine.connect() as conn:
        (paper,) = store.papers_seen_since(conn, dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    assert paper.title.startswith("Mamba") and "bad bytes" in paper.title

    (tmp_path / "feed.json").write_text("[" * 200_000 + "]" * 200_000)
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "digest.toml"), "fetch"])
    assert result.exit_code == 1
    assert "not valid JSON" in result.output and "Traceback" not in result.output
    with engine.connect() as conn:  # what was stored before is still there
        assert store.count_papers(conn) == 1


def test_hundred_thousand_item_page(tmp_path: Path) -> None:
    items = [item(f"Paper number {i}", "short") for i in range(100_000)]
    (tmp_path / "big.json").write_text(json.dumps(items))
    result = read_file(tmp_path / "big.json", "big")
    assert len(result.records) == 100_000 and not result.rejected
