"""`digest feedback`, `digest unsubscribe` / `resubscribe` and `subscribers --format json`: the operator's side of
what readers tell us, on a real database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest import store
from digest.cli import app
from digest.models import PaperRecord
from tests.helpers import papers_json

CONFIG = """
database_url = "{db_url}"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
[[sources]]
name = "today"
type = "file"
path = "today.json"
[[subscribers]]
email = "ada@example.org"
keywords = ["mamba"]
[[subscribers]]
email = "grace@example.org"
keywords = ["quantization"]
"""
PAPERS = [
    {"id": "2611.00001", "title": "Mamba Meets Vision", "summary": "Mamba for images."},
    {"id": "2611.00002", "title": "Mamba Again", "summary": "More mamba."},
    {"title": "A Paper Without an Id", "summary": "Mamba without an arXiv id."},
]


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    (tmp_path / "today.json").write_text(json.dumps(papers_json(PAPERS)))
    path = tmp_path / "digest.toml"
    path.write_text(CONFIG.format(db_url=db_url))
    code, out = _run(path, "fetch")
    assert code == 0, out
    return path


def test_feedback_records_by_arxiv_id_or_key_lists_and_resets(config: Path) -> None:
    code, out = _run(config, "preview", "--format", "json", "--no-fetch")
    keys = {p["title"]: p["key"] for p in json.loads(out.split("HTML version")[0])["papers"]}
    code, out = _run(
        config,
        "feedback",
        "--subscriber",
        "ADA@example.org",
        "--more",
        "2611.00001v2",
        "--less",
        keys["A Paper Without an Id"],
        "--format",
        "json",
    )
    assert code == 0, out
    given = json.loads(out)
    assert given["subscriber"] == "ada@example.org"
    assert sorted((f["title"], f["value"], f["via"]) for f in given["feedback"]) == [
        ("A Paper Without an Id", -1, "cli"),
        ("Mamba Meets Vision", 1, "cli"),
    ]
    code, out = _run(config, "feedback", "--subscriber", "ada@example.org", "--less", "arxiv:2611.00001")
    assert code == 0 and "Mamba Meets Vision" in out and "less" in out
    code, out = _run(config, "feedback", "--subscriber", "ada@example.org", "--format", "json")
    assert sorted((f["title"], f["value"]) for f in json.loads(out)["feedback"]) == [
        ("A Paper Without an Id", -1),
        ("Mamba Meets Vision", -1),
    ]
    code, out = _run(config, "feedback", "--subscriber", "grace@example.org", "--format", "json")
    assert json.loads(out)["feedback"] == []
    code, out = _run(config, "feedback", "--subscriber", "ada@example.org", "--reset", "--format", "json")
    assert code == 0 and json.loads(out)["feedback"] == []


def test_feedback_names_what_is_wrong_and_records_nothing(config: Path) -> None:
    code, out = _run(
        config, "feedback", "--subscriber", "ada@example.org", "--more", "2611.00001", "--less", "9999.99999"
    )
    assert code == 2 and "9999.99999" in out
    code, out = _run(config, "feedback", "--subscriber", "nobody@example.org", "--more", "2611.00001")
    assert code == 2 and "nobody@example.org" in out
    code, out = _run(config, "feedback", "--subscriber", "ada@example.org", "--format", "json")
    assert json.loads(out)["feedback"] == []


def test_unsubscribe_and_resubscribe_show_in_subscribers(config: Path) -> None:
    code, out = _run(config, "unsubscribe", "Grace@Example.org")
    assert code == 0 and "unsubscribed (was active)" in out
    code, out = _run(config, "subscribers", "--format", "json")
    assert {s["email"]: s["status"] for s in json.loads(out)} == {
        "ada@example.org": "active",
        "grace@example.org": "unsubscribed",
    }
    code, out = _run(config, "send", "--no-fetch")
    assert code == 0 and "digests built: 1" in out
    code, out = _run(config, "subscribers")
    assert "unsubscribed" in out
    code, out = _run(config, "resubscribe", "grace@example.org")
    assert code == 0 and "active (was unsubscribed)" in out
    code, out = _run(config, "unsubscribe", "nobody@example.org")
    assert code == 2


def test_feedback_survives_when_two_papers_turn_out_to_be_one(tmp_path: Path) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    t0 = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    with engine.begin() as conn:
        store.upsert_records(conn, [PaperRecord(source="a", title="Mamba Meets Vision")], t0)
        store.upsert_records(conn, [PaperRecord(source="b", title="Another Title", arxiv_id="2611.00001")], t0)
        by_title = store.find_paper(conn, "title:mambameetsvision")
        by_id = store.find_paper(conn, "2611.00001")
        assert by_title is not None and by_id is not None and by_title.id != by_id.id
        assert by_title.id is not None and by_id.id is not None
        store.record_feedback(conn, "ada@example.org", by_title.id, 1, t0, "web")
        store.record_feedback(conn, "ada@example.org", by_id.id, -1, t0 + dt.timedelta(hours=1), "web")
        store.record_feedback(conn, "grace@example.org", by_title.id, 1, t0, "web")
        # a record holding both keys shows they are one paper
        store.upsert_records(conn, [PaperRecord(source="c", title="Mamba Meets Vision", arxiv_id="2611.00001v2")], t0)
        assert store.count_papers(conn) == 1
        assert [(f.value, f.title) for f in store.feedback_of(conn, "ada@example.org")] == [(-1, "Mamba Meets Vision")]
        assert [f.value for f in store.feedback_of(conn, "grace@example.org")] == [1]
