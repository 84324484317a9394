"""CLI verbs that had no test of their own: `send --dry-run`, `subscribers`, and `preview` once a digest is stored."""

from __future__ import annotations

import json
from pathlib import Path

from freezegun import freeze_time
from sqlalchemy import func, select
from typer.testing import CliRunner

from digest import store
from digest.cli import app
from tests.helpers import papers_json

CONFIG = """
database_url = "sqlite:///digest.db"

[schedule]
send_at = "07:00"

[delivery]
trending = 0
maildir = "mail"

[[sources]]
name = "today"
type = "file"
path = "today.json"

[[subscribers]]
email = "ada@example.org"
name = "Ada Lovelace"
keywords = ["state space model", "mamba^2"]
exclude = ["survey"]
max_papers = 3

[[subscribers]]
email = "grace@example.org"
keywords = ["quantization"]
send_at = "09:15"
timezone = "America/Los_Angeles"
days = ["mon", "fri"]
"""

PAPERS = [
    {"title": "Mamba Meets Vision", "summary": "We apply mamba state space models to images.", "upvotes": 30},
    {"title": "Low-bit Quantization of LLMs", "summary": "Quantization to 2 bits.", "upvotes": 10},
    {"title": "A Study of Protein Folding", "summary": "Nothing about our topics.", "upvotes": 99},
]


def _setup(tmp_path: Path) -> Path:
    (tmp_path / "today.json").write_text(json.dumps(papers_json(PAPERS)))
    config = tmp_path / "digest.toml"
    config.write_text(CONFIG)
    return config


def _invoke(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def _deliveries(config: Path) -> int:
    engine = store.open_engine(f"sqlite:///{config.parent / 'digest.db'}")
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(store.delivery_t)).scalar_one())


def test_send_dry_run_shows_what_would_go_and_records_nothing(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    with freeze_time("2026-11-23 08:00:00"):  # Ada is due (07:00 UTC); Grace is not (00:00 in Los Angeles)
        code, out, err = _invoke(config, "send", "--dry-run")
    assert code == 0, err
    assert "would send (dry run)" in out
    assert "ada@example.org" in out and "Mamba Meets Vision" in out
    assert "grace@example.org" not in out
    assert _deliveries(config) == 0
    assert not (tmp_path / "mail").exists()
    engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    with engine.connect() as conn:
        assert store.count_papers(conn) == 0  # the fetch was rolled back too


def test_send_dry_run_with_a_date_builds_for_every_named_subscriber(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    with freeze_time("2026-11-23 08:00:00"):
        code, out, err = _invoke(config, "send", "--dry-run", "--subscriber", "grace@example.org")
    assert code == 0, err
    assert "grace@example.org" in out and "Quantization" in out and "ada@example.org" not in out
    assert _deliveries(config) == 0


def test_subscribers_lists_interests_and_schedule(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    code, out, err = _invoke(config, "subscribers")
    assert code == 0, err
    assert "ada@example.org" in out and "Ada Lovelace" in out
    assert "state space model, mamba^2" in out and "survey" in out
    assert "07:00" in out and "UTC" in out and "every day" in out
    assert "grace@example.org" in out and "09:15" in out and "America/Los_Angeles" in out and "mon,fri" in out


def test_preview_after_the_digest_was_sent_shows_it_again_and_changes_nothing(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    with freeze_time("2026-11-23 08:00:00"):
        code, _, err = _invoke(config, "send")
        assert code == 0, err
        assert _deliveries(config) == 1
        code, out, err = _invoke(config, "preview", "--format", "json", "--no-fetch")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["date"] == "2026-11-23"
    assert [p["title"] for p in shown["papers"]] == ["Mamba Meets Vision"]
    assert _deliveries(config) == 1
    box = list((tmp_path / "mail" / "new").iterdir())
    assert len(box) == 1
