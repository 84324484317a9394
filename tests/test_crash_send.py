"""Crash safety: `digest send` for 300 subscribers, over several days of digests, is SIGKILLed exactly
`CRASH_ROUNDS` times whatever the seed (default 12; `CRASH_ROUNDS=100` means 100 kills), each kill aimed at
fetching, planning or sending (between the server's 250 and our commit), and restarted until the day is done.
Every subscriber ends with exactly one `sent` delivery a day; any duplicate on the server is the very same
stored message (same Message-ID, same bytes)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest import store
from tests.helpers import papers_json
from tests.smtpd_helpers import FaultHandler, smtp_server

SUBSCRIBERS = 300
KILLS = int(os.environ.get("CRASH_ROUNDS", "12"))  # exactly this many kills; CRASH_ROUNDS=100 for a long run
MIN_DAYS = 2
PHASES = ("fetch", "planning", "sending")


def papers(day: int) -> list[dict[str, object]]:
    """Day `day`'s listing: 10 papers every reader wants, and 1,500 others, so fetching takes a while."""
    wanted: list[dict[str, object]] = [
        {
            "title": f"Day {day} paper {i}: Efficient Sequence Models at Scale",
            "summary": "We study state space models and linear attention. " * 12,
            "upvotes": 50 - i,
        }
        for i in range(10)
    ]
    filler: list[dict[str, object]] = [
        {"title": f"Day {day} unrelated note {i}", "summary": f"Protein folding number {i}."} for i in range(1500)
    ]
    return wanted + filler


def write_config(tmp_path: Path, port: int) -> Path:
    subs = "".join(
        f'[[subscribers]]\nemail = "s{i:03d}@example.org"\nkeywords = ["state space model"]\n'
        for i in range(SUBSCRIBERS)
    )
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


class World:
    """What the test sees of the database, read-only, to aim kills at a phase and to name where one landed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")

    def fetched_since(self, since: dt.datetime) -> bool:
        with self.engine.connect() as conn:
            return any(r.started_at >= since and r.status == "ok" for r in store.fetch_runs(conn, limit=5))

    def planned(self, day: dt.date) -> int:
        with self.engine.connect() as conn:
            t = store.delivery_t
            return int(conn.execute(select(func.count()).where(t.c.digest_date == day)).scalar_one())

    def phase(self, day: dt.date, since: dt.datetime) -> str:
        if not self.fetched_since(since) and not self.planned(day):
            return "fetch"
        return "planning" if self.planned(day) < SUBSCRIBERS else "sending"

    def locked_by(self, pid: int) -> bool:
        lock = self.tmp_path / "digest.db.lock"
        return lock.exists() and f"pid {pid}," in lock.read_text()


@pytest.mark.slow
def test_sigkill_a_fixed_number_of_times_never_loses_or_changes_a_digest(tmp_path: Path) -> None:
    rnd = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    current: list[subprocess.Popen[bytes] | None] = [None]
    kill_after: list[int] = [0]
    landed = threading.Event()

    def on_data(count: int) -> None:
        """Runs inside the server before it answers 250: the kill lands between its 250 and our commit."""
        proc = current[0]
        if kill_after[0] and count >= kill_after[0] and proc is not None and proc.poll() is None:
            kill_after[0] = 0
            proc.send_signal(signal.SIGKILL)
            landed.set()

    handler = FaultHandler(on_data=on_data)
    kills: Counter[str] = Counter()
    day_index, runs = 0, 0
    today = dt.datetime.now(dt.UTC).date()
    with smtp_server(handler) as port:
        config = write_config(tmp_path, port)
        world: World | None = None
        while day_index < MIN_DAYS or sum(kills.values()) < KILLS:
            day = today + dt.timedelta(days=day_index)
            (tmp_path / "papers.json").write_text(json.dumps(papers_json(papers(day_index))))
            while True:  # rounds of this day: each ends once its kill landed, or the day's work is done
                runs += 1
                assert runs < KILLS + 6 * (day_index + 1) + 20, "no progress"
                aim = rnd.choice(PHASES) if sum(kills.values()) < KILLS else None
                landed.clear()
                if aim == "sending":
                    kill_after[0] = len(handler.received) + rnd.randint(1, 40)
                argv = [sys.executable, "-m", "digest", "--config", str(config), "send", "--date", day.isoformat()]
                round_started = dt.datetime.now(dt.UTC)
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                current[0] = proc
                world = world or World(tmp_path)
                killed_in = None
                while proc.poll() is None and aim is not None and aim != "sending":
                    ready = (
                        world.locked_by(proc.pid)
                        if aim == "fetch"
                        else world.fetched_since(round_started) and world.planned(day) < SUBSCRIBERS
                    )
                    if ready:
                        time.sleep(rnd.uniform(0.0, 0.08))
                        killed_in = world.phase(day, round_started)
                        proc.send_signal(signal.SIGKILL)
                        break
                    time.sleep(0.005)
                if aim == "sending":
                    while proc.poll() is None and not landed.wait(0.05):
                        pass
                    kill_after[0] = 0
                    killed_in = "sending" if landed.is_set() else None
                _, err = proc.communicate(timeout=180)
                if proc.returncode == -signal.SIGKILL:
                    kills[killed_in or "sending"] += 1
                    continue
                assert proc.returncode == 0, f"digest send failed ({proc.returncode}): {err.decode()[-2000:]}"
                break  # the day is done
            day_index += 1

    days = [today + dt.timedelta(days=i) for i in range(day_index)]
    print(
        f"\ncrash test: {runs} runs over {day_index} days, {sum(kills.values())} kills {dict(kills)}, "
        f"{len(handler.received)} messages received"
    )
    assert sum(kills.values()) == KILLS
    received = handler.by_recipient()
    assert sorted(received) == [f"s{i:03d}@example.org" for i in range(SUBSCRIBERS)]
    duplicates = 0
    for msgs in received.values():
        by_id: dict[str, set[bytes]] = {}
        for m in msgs:
            by_id.setdefault(m.message_id, set()).add(m.data)
        assert len(by_id) == len(days), "one digest a day, none lost"
        assert all(len(bodies) == 1 for bodies in by_id.values()), "a duplicate is the stored message itself"
        duplicates += len(msgs) - len(by_id)
    print(f"crash test: {duplicates} duplicates (same Message-ID and bytes), none lost")

    assert world is not None
    t = store.delivery_t
    with world.engine.connect() as conn:
        rows = conn.execute(select(t.c.subscriber, t.c.digest_date, t.c.status, t.c.message_id, t.c.claimed_by)).all()
        items = conn.execute(
            select(t.c.subscriber, store.item_t.c.paper_id).join(store.item_t, store.item_t.c.delivery_id == t.c.id)
        ).all()
    assert len(rows) == SUBSCRIBERS * len(days)
    assert {r.status for r in rows} == {"sent"} and all(r.claimed_by is None for r in rows)
    assert sorted({r.digest_date for r in rows}) == days
    stored = {(r.subscriber, r.message_id) for r in rows}
    assert all((rcpt, m.message_id) in stored for rcpt, msgs in received.items() for m in msgs)
    assert len(items) == len(set(items)), "no paper went twice to one reader"
