"""Editing the config under a running scheduler: a new subscriber and changed keywords take effect at the
next tick; a broken edit is reported once and the last good config stays in force until it is fixed."""

from __future__ import annotations

import datetime as dt
import email
import json
import logging
import mailbox
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from digest import store
from digest.config import load_config
from digest.reload import ConfigWatcher
from digest.scheduler import DailyJob, serve
from tests.helpers import papers_json


@pytest.fixture(autouse=True)
def _own_log_handlers() -> Iterator[None]:
    """A CLI test elsewhere may have bound the `digest` logger to a now-closed stream: detach it here."""
    logger = logging.getLogger("digest")
    saved = logger.handlers[:]
    logger.handlers.clear()
    yield
    logger.handlers[:] = saved


PAPERS = [
    {"title": "Mamba Meets Vision", "summary": "State space models for images.", "upvotes": 3},
    {"title": "Low-bit Quantization of LLMs", "summary": "Quantization to 2 bits.", "upvotes": 2},
    {"title": "A Study of Protein Folding", "summary": "Proteins fold.", "upvotes": 1},
]
TODAY = dt.datetime.now(dt.UTC).strftime("%a").lower()
NOT_TODAY = next(d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if d != TODAY)

BASE = """
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
[[sources]]
name = "today"
type = "file"
path = "papers.json"
[[subscribers]]
email = "ada@example.org"
keywords = ["mamba"]
[[subscribers]]
email = "cy@example.org"
keywords = ["protein"]
days = ["{days}"]
"""
GRACE = """
[[subscribers]]
email = "grace@example.org"
keywords = ["state space model"]
"""


class Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def count(self, name: str) -> int:
        return sum(1 for line in self.lines if line.startswith(f"event={name} "))


@pytest.fixture
def events() -> Iterator[Events]:
    handler = Events()
    logger = logging.getLogger("digest.scheduler")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def wait_for(what: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "the scheduler did not get there"
        time.sleep(0.05)


def inbox(tmp_path: Path) -> dict[str, str]:
    """Recipient → the subject of the digest they got."""
    folder = tmp_path / "mail"
    if not folder.exists():
        return {}
    out = {}
    for data in mailbox.Maildir(folder, create=False).values():
        msg = email.message_from_bytes(bytes(data))
        out[email.utils.parseaddr(msg["To"])[1]] = " ".join(str(msg["Subject"]).split())
    return out


def test_config_edits_under_a_running_scheduler(tmp_path: Path, events: Events) -> None:
    (tmp_path / "papers.json").write_text(json.dumps(papers_json(PAPERS)))
    config = tmp_path / "digest.toml"
    config.write_text(BASE.format(days=NOT_TODAY))
    settings = load_config(config)
    engine = store.open_engine(settings.database_url)
    stop = threading.Event()
    ticks: list[int] = []
    job = DailyJob(engine, ConfigWatcher(settings), stop, on_tick=lambda _r: ticks.append(1))
    runner = threading.Thread(target=serve, args=(job, stop, 0.2))
    runner.start()
    try:

        def after_ticks(n: int) -> None:
            start = len(ticks)
            wait_for(lambda: len(ticks) >= start + n)

        wait_for(lambda: "ada@example.org" in inbox(tmp_path))
        assert "Mamba Meets Vision" in inbox(tmp_path)["ada@example.org"]
        assert "cy@example.org" not in inbox(tmp_path)  # not one of cy's days

        config.write_text(BASE.format(days=NOT_TODAY) + GRACE)  # a new subscriber
        wait_for(lambda: "grace@example.org" in inbox(tmp_path))
        assert "Mamba Meets Vision" in inbox(tmp_path)["grace@example.org"]
        assert events.count("config_reloaded") == 1

        config.write_text(BASE.format(days=NOT_TODAY) + GRACE + "[[subscribers]]\nemail = \n")  # broken
        after_ticks(4)
        assert events.count("config_rejected") == 1  # reported once, not at every tick
        rejected = next(line for line in events.lines if line.startswith("event=config_rejected"))
        assert "digest.toml" in rejected and "TOML syntax error" in rejected
        assert job.watcher.current().subscriber("grace@example.org")  # the last good config is in force

        fixed = BASE.format(days=TODAY).replace('keywords = ["protein"]', 'keywords = ["quantization"]') + GRACE
        config.write_text(fixed)  # fixed, with cy now due today and new keywords
        wait_for(lambda: "cy@example.org" in inbox(tmp_path))
        assert "Low-bit Quantization of LLMs" in inbox(tmp_path)["cy@example.org"]
        assert "Protein" not in inbox(tmp_path)["cy@example.org"]
        assert events.count("config_reloaded") == 2
        assert events.count("config_rejected") == 1
        after_ticks(2)
        assert len(mailbox.Maildir(tmp_path / "mail", create=False)) == 3  # one each, nothing twice
        assert events.count("tick_failed") == 0
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
