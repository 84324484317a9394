"""When is a digest due? freezegun walks the clock across the March and October/November DST changes for
UTC, Europe/Berlin and America/Los_Angeles subscribers; a process down 06:00-11:00 catches up at start;
a restart right after a send sends nothing."""

from __future__ import annotations

import datetime as dt
import json
import logging
import mailbox
import threading
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select

from digest import pipeline, selection, store
from digest.config import Settings, parse_config
from digest.reload import ConfigWatcher
from digest.scheduler import DailyJob, serve
from tests.helpers import papers_json, utc


@pytest.fixture(autouse=True)
def _own_log_handlers() -> Iterator[None]:
    """A CLI test elsewhere may have bound the `digest` logger to a now-closed stream: detach it here."""
    logger = logging.getLogger("digest")
    saved = logger.handlers[:]
    logger.handlers.clear()
    yield
    logger.handlers[:] = saved


CONFIG = """
database_url = "sqlite:///digest.db"
[schedule]
send_at = "07:00"
[delivery]
maildir = "mail"
send_empty = true
[[subscribers]]
email = "utc@example.org"
[[subscribers]]
email = "berlin@example.org"
timezone = "Europe/Berlin"
[[subscribers]]
email = "la@example.org"
timezone = "America/Los_Angeles"
[[subscribers]]
email = "gap@example.org"
timezone = "Europe/Berlin"
send_at = "02:30"
[[subscribers]]
email = "twice@example.org"
timezone = "America/Los_Angeles"
send_at = "01:00"
[[subscribers]]
email = "weekdays@example.org"
timezone = "Europe/Berlin"
days = ["mon", "tue", "wed", "thu", "fri"]
"""


def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "digest.toml"
    path.write_text(CONFIG)
    return parse_config(CONFIG, path)


# (subscriber, local date, first UTC instant it is due)
DUE = [
    ("utc@example.org", "2026-03-29", utc(2026, 3, 29, 7)),
    ("berlin@example.org", "2026-03-28", utc(2026, 3, 28, 6)),  # CET, UTC+1
    ("berlin@example.org", "2026-03-29", utc(2026, 3, 29, 5)),  # CEST from 02:00 that day, UTC+2
    ("berlin@example.org", "2026-10-24", utc(2026, 10, 24, 5)),
    ("berlin@example.org", "2026-10-25", utc(2026, 10, 25, 6)),  # back to CET: a 25-hour day
    ("berlin@example.org", "2026-11-01", utc(2026, 11, 1, 6)),
    ("la@example.org", "2026-03-07", utc(2026, 3, 7, 15)),  # PST, UTC-8
    ("la@example.org", "2026-03-08", utc(2026, 3, 8, 14)),  # PDT from 02:00 that day: a 23-hour day
    ("la@example.org", "2026-10-31", utc(2026, 10, 31, 14)),
    ("la@example.org", "2026-11-01", utc(2026, 11, 1, 15)),  # back to PST
    ("gap@example.org", "2026-03-29", utc(2026, 3, 29, 1)),  # 02:30 does not exist: due at 03:00 CEST
    ("gap@example.org", "2026-03-28", utc(2026, 3, 28, 1, 30)),
    ("twice@example.org", "2026-11-01", utc(2026, 11, 1, 8)),  # 01:00 happens twice: the first counts
    ("weekdays@example.org", "2026-03-30", utc(2026, 3, 30, 5)),  # Monday
]


@pytest.mark.parametrize(("email", "day", "due_at"), DUE)
def test_due_from_the_local_send_time(tmp_path: Path, email: str, day: str, due_at: dt.datetime) -> None:
    s = settings(tmp_path)
    sub = s.subscriber(email)
    minute = dt.timedelta(minutes=1)
    with freeze_time(due_at - minute):
        assert not selection.is_due(s, sub, pipeline.utcnow())
    with freeze_time(due_at):
        assert selection.is_due(s, sub, pipeline.utcnow())
        assert selection.local_now(s, sub, pipeline.utcnow()).date().isoformat() == day


def test_weekend_is_not_due_for_a_weekday_subscriber(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with freeze_time(utc(2026, 3, 28, 12)):  # Saturday
        assert not selection.is_due(s, s.subscriber("weekdays@example.org"), pipeline.utcnow())


def _sent(engine: Engine) -> list[tuple[str, dt.date, dt.datetime]]:
    t = store.delivery_t
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.subscriber, t.c.digest_date, t.c.sent_at, t.c.status)).all()
    assert {r.status for r in rows} <= {"sent"}
    return [(r.subscriber, r.digest_date, r.sent_at.replace(tzinfo=dt.UTC)) for r in rows]


@pytest.mark.parametrize(
    ("start", "days"),
    [(utc(2026, 3, 7), 2), (utc(2026, 3, 28), 2), (utc(2026, 10, 24), 2), (utc(2026, 10, 31), 2)],
    ids=["us-spring", "eu-spring", "eu-autumn", "us-autumn"],
)
def test_hourly_ticks_across_dst_send_once_a_day_at_the_right_hour(
    tmp_path: Path, start: dt.datetime, days: int
) -> None:
    s = settings(tmp_path)
    engine = store.open_engine(s.database_url)
    with freeze_time(start, real_asyncio=True) as clock:
        job = DailyJob(engine, ConfigWatcher(s), threading.Event())
        for hour in range(days * 24):
            clock.move_to(start + dt.timedelta(hours=hour))
            job.tick()
    sent = _sent(engine)
    per_day = Counter((email, day) for email, day, _ in sent)
    assert set(per_day.values()) == {1}
    when = {(email, day.isoformat()): at for email, day, at in sent}
    for email, day, due_at in DUE:
        if start <= due_at < start + dt.timedelta(days=days):
            first_tick = due_at + (dt.datetime.min.replace(tzinfo=dt.UTC) - due_at) % dt.timedelta(hours=1)
            assert when[(email, day)] == first_tick, (email, day)
    assert len(mailbox.Maildir(tmp_path / "mail", create=False)) == len(sent)


def test_down_from_six_to_eleven_catches_up_at_start_and_a_restart_sends_nothing(tmp_path: Path) -> None:
    s = settings(tmp_path)
    engine = store.open_engine(s.database_url)
    monday = utc(2026, 3, 2)
    with freeze_time(monday + dt.timedelta(hours=5, minutes=59), real_asyncio=True) as clock:
        DailyJob(engine, ConfigWatcher(s), threading.Event()).tick()
        before = _sent(engine)  # Los Angeles (still Sunday evening there) and the 02:30 Berlin one
        assert {(e, d.isoformat()) for e, d, _ in before} == {
            ("la@example.org", "2026-03-01"),
            ("twice@example.org", "2026-03-01"),
            ("gap@example.org", "2026-03-02"),
        }

        clock.move_to(monday + dt.timedelta(hours=11))  # the process was down 06:00-11:00

        def start_and_wait_first_tick() -> DailyJob:
            stop = threading.Event()
            job = DailyJob(engine, ConfigWatcher(s), stop, on_tick=lambda _r: stop.set())
            runner = threading.Thread(target=serve, args=(job, stop, 3600.0))
            runner.start()
            runner.join(timeout=60)
            assert not runner.is_alive()
            return job

        job = start_and_wait_first_tick()
        assert job.ticks == 1
        caught_up = {(e, d.isoformat()): at for e, d, at in _sent(engine) if (e, d, at) not in before}
        eleven = monday + dt.timedelta(hours=11)
        assert caught_up == {
            ("utc@example.org", "2026-03-02"): eleven,
            ("berlin@example.org", "2026-03-02"): eleven,
            ("weekdays@example.org", "2026-03-02"): eleven,
            ("twice@example.org", "2026-03-02"): eleven,  # 01:00 in Los Angeles was 09:00 UTC
        }

        clock.move_to(monday + dt.timedelta(hours=11, minutes=1))  # restarted right after the send
        start_and_wait_first_tick()
        assert len(_sent(engine)) == 7
    assert len(mailbox.Maildir(tmp_path / "mail", create=False)) == 7


def _first_part_text(message: Message) -> str:
    part = message.get_payload(0)
    assert isinstance(part, Message)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_weekday_subscriber_gets_the_weekend_papers_on_monday(tmp_path: Path) -> None:
    papers = tmp_path / "papers.json"
    text = """
database_url = "sqlite:///digest.db"
[delivery]
maildir = "mail"
[[sources]]
name = "today"
type = "file"
path = "papers.json"
[[subscribers]]
email = "weekdays@example.org"
timezone = "Europe/Berlin"
send_at = "08:00"
days = ["mon", "tue", "wed", "thu", "fri"]
"""
    (tmp_path / "digest.toml").write_text(text)
    s = parse_config(text, tmp_path / "digest.toml")
    engine = store.open_engine(s.database_url)
    seen: list[dict[str, object]] = []
    steps = [
        (utc(2026, 3, 6, 7), "Friday Paper On Attention"),
        (utc(2026, 3, 7, 12), "Saturday Paper On Mamba"),
        (utc(2026, 3, 8, 12), "Sunday Paper On Quantization"),
        (utc(2026, 3, 9, 7), None),
    ]
    with freeze_time(steps[0][0], real_asyncio=True) as clock:
        job = DailyJob(engine, ConfigWatcher(s), threading.Event())
        for at, title in steps:
            clock.move_to(at)
            if title:
                seen.append({"title": title, "summary": "An abstract."})
            papers.write_text(json.dumps(papers_json(seen)))
            job.tick()
    messages = [message_from_bytes(bytes(m)) for m in mailbox.Maildir(tmp_path / "mail", create=False)]
    bodies = {m["Date"]: _first_part_text(m) for m in messages}
    assert len(bodies) == 2  # Friday and Monday; nothing at the weekend
    friday, monday = (bodies[k] for k in sorted(bodies, key=parsedate_to_datetime))
    assert "Friday Paper" in friday
    assert "Saturday Paper" in monday and "Sunday Paper" in monday and "Friday Paper" not in monday
