"""Crash safety: `digest send` for 300 subscribers is SIGKILLed at random moments (while starting, while
planning, between messages, and between the server's 250 and our commit), restarted until it finishes.
Every subscriber ends with exactly one `sent` delivery; any duplicate on the server is the very same
stored message (same Message-ID, same bytes)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from digest import store
from tests.helpers import papers_json
from tests.smtpd_helpers import FaultHandler, smtp_server

SUBSCRIBERS = 300
MAX_KILL_ROUNDS = int(os.environ.get("CRASH_ROUNDS", "15"))  # more: CRASH_ROUNDS=100
PAPERS = [
    {
        "title": f"Paper {i}: Efficient Sequence Models at Scale",
        "summary": "We study state space models and linear attention. " * 12,
        "upvotes": 50 - i,
    }
    for i in range(10)
]


def write_config(tmp_path: Path, port: int) -> Path:
    (tmp_path / "papers.json").write_text(json.dumps(papers_json(PAPERS)))
    subs = "".join(f'[[subscribers]]\nemail = "s{i:03d}@example.org"\n' for i in range(SUBSCRIBERS))
    config = tmp_path / "digest.toml"
    config.write_text(
        f"""
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
transport = "smtp"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = 20
max_connections = 4
[[sources]]
name = "today"
type = "file"
path = "papers.json"
{subs}"""
    )
    return config


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_changes_a_digest(tmp_path: Path) -> None:
    rnd = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    kill_at: list[int] = [0]
    current: list[subprocess.Popen[bytes] | None] = [None]
    count_reached = threading.Event()

    def on_data(count: int) -> None:
        """Runs inside the server before it answers 250: the kill lands between its 250 and our commit."""
        if kill_at[0] and count >= kill_at[0]:
            kill_at[0] = 0
            proc = current[0]
            if proc is not None and proc.poll() is None:
                if rnd.random() < 0.5:
                    proc.send_signal(signal.SIGKILL)
                count_reached.set()

    handler = FaultHandler(on_data=on_data)
    kills = {"timer": 0, "after_messages": 0}
    rounds = 0
    with smtp_server(handler) as port:
        config = write_config(tmp_path, port)
        argv = [sys.executable, "-m", "digest", "--config", str(config), "send"]
        while True:
            rounds += 1
            killing = rounds <= MAX_KILL_ROUNDS
            count_reached.clear()
            if killing and rnd.random() < 0.7:
                kill_at[0] = len(handler.received) + rnd.randint(1, 20)
                mode = "after_messages"
            else:
                kill_at[0] = 0
                mode = "timer"
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            current[0] = proc
            if killing and mode == "timer":
                try:
                    proc.wait(timeout=rnd.uniform(0.1, 2.5))
                except subprocess.TimeoutExpired:
                    proc.kill()
            elif killing:
                while proc.poll() is None and not count_reached.wait(0.05):
                    pass
                if proc.poll() is None:
                    proc.kill()
            _, err = proc.communicate(timeout=120)
            killed = proc.returncode == -signal.SIGKILL
            if killed:
                kills[mode] += 1
            elif proc.returncode == 0:
                break
            else:
                raise AssertionError(f"digest send failed ({proc.returncode}): {err.decode()[-2000:]}")
            assert rounds < MAX_KILL_ROUNDS + 5, "no progress"

    received = handler.by_recipient()
    duplicates = {r: msgs for r, msgs in received.items() if len(msgs) > 1}
    print(
        f"\ncrash test: {rounds} runs, kills {kills}, {len(handler.received)} messages received, "
        f"{sum(len(m) - 1 for m in duplicates.values())} duplicates for {len(duplicates)} subscribers"
    )
    assert sum(kills.values()) >= 8
    assert sorted(received) == [f"s{i:03d}@example.org" for i in range(SUBSCRIBERS)]
    for msgs in duplicates.values():
        assert len({m.message_id for m in msgs}) == 1
        assert len({m.data for m in msgs}) == 1  # the stored bytes, not a recomposed message

    engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    t = store.delivery_t
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.subscriber, t.c.status, t.c.message_id, t.c.claimed_by)).all()
    assert len(rows) == SUBSCRIBERS
    assert {r.status for r in rows} == {"sent"}
    assert all(r.claimed_by is None for r in rows)
    stored = {r.subscriber: r.message_id for r in rows}
    assert all(msgs[0].message_id == stored[rcpt] for rcpt, msgs in received.items())
