"""Logs: one line per event in a stable, greppable shape; --verbose for debug; no tracebacks for the expected."""

from __future__ import annotations

import json
import re
from pathlib import Path

from freezegun import freeze_time
from typer.testing import CliRunner

from digest.cli import app
from tests.helpers import papers_json

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) digest(\.\w+)* "
    r'event=\w+( \w+=([^\s"]+|"([^"\\]|\\.)*"))*$'
)

CONFIG = """
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
[smtp]
password = "sup3r-s3cret-pw"
[[sources]]
name = "feed"
type = "file"
path = "feed.json"
[[sources]]
name = "gone"
type = "file"
path = "missing.jsonl"
[[subscribers]]
email = "ada@example.org"
keywords = ["mamba"]
"""


def test_every_log_line_has_the_event_shape(tmp_path: Path) -> None:
    items = papers_json([{"title": 'Mamba\nwith a "quoted" newline', "summary": "mamba"}])
    items.append({"paper": {"summary": "no title"}})
    (tmp_path / "feed.json").write_text(json.dumps(items))
    (tmp_path / "digest.toml").write_text(CONFIG)
    with freeze_time("2026-11-23 08:00:00"):
        result = CliRunner().invoke(app, ["--config", str(tmp_path / "digest.toml"), "--verbose", "send"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("error:", "HTML"))]
    log_lines = [line for line in lines if re.match(r"^\d{4}-\d\d-\d\d ", line)]
    assert log_lines, result.stderr
    for line in log_lines:
        assert LINE.match(line), line
    events = {re.search(r"event=(\w+)", line).group(1) for line in log_lines}  # type: ignore[union-attr]
    assert {"fetch_failed", "item_rejected", "fetched", "planned", "send"} <= events
    assert "Traceback" not in result.output
    assert "sup3r-s3cret-pw" not in result.output


def test_quiet_without_verbose(tmp_path: Path) -> None:
    (tmp_path / "feed.json").write_text(json.dumps(papers_json([{"title": "Mamba", "summary": "mamba"}])))
    (tmp_path / "digest.toml").write_text(
        CONFIG.replace('[[sources]]\nname = "gone"', '[[sources]]\nenabled = false\nname = "gone"')
    )
    with freeze_time("2026-11-23 08:00:00"):
        result = CliRunner().invoke(app, ["--config", str(tmp_path / "digest.toml"), "send"])
    assert result.exit_code == 0, result.output
    assert "event=fetched" not in result.stderr and "DEBUG" not in result.stderr
