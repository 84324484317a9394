"""Any number of processes may start together on an empty (or older) database: schema creation and upgrades
are serialised (SQLite's write lock, a PostgreSQL advisory lock), so every one of them succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from digest import store

PROCESSES = 4
START = """
import sys, time
from digest import store
from digest.clock import utcnow
from digest.models import SubscriberStatus
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
engine = store.open_engine(sys.argv[1])
with engine.begin() as conn:
    store.set_status(conn, f"p{sys.argv[3]}@example.org", SubscriberStatus.paused, utcnow(), "cli")
print("ok")
"""


def _start_together(url: str, tmp_path: Path) -> list[subprocess.CompletedProcess[str]]:
    at = time.time() + 2.0  # every process imports first, then opens the database at the same instant
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START, url, str(at), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for i in range(PROCESSES)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(120), *p.communicate()) for p in procs]


@pytest.mark.parametrize("round_", range(3))
def test_processes_cold_start_together_on_an_empty_database(tmp_path: Path, db_url: str, round_: int) -> None:
    results = _start_together(db_url, tmp_path)
    for r in results:
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    engine = store.open_engine(db_url)
    with engine.connect() as conn:
        assert len(store.subscriber_statuses(conn)) == PROCESSES
        version = conn.execute(select(store.meta_t.c.value).where(store.meta_t.c.key == "schema_version"))
        assert [r[0] for r in version] == ["2"]


def test_processes_cold_start_together_on_an_older_database(tmp_path: Path, db_url: str) -> None:
    engine = store.open_engine(db_url)
    with engine.begin() as conn:
        for table in ("delivery_message", "feedback", "subscriber_state"):
            conn.execute(text(f"DROP TABLE {table}"))
        blob = "BYTEA" if engine.dialect.name == "postgresql" else "BLOB"
        conn.execute(text(f"ALTER TABLE delivery ADD COLUMN message {blob}"))
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    engine.dispose()
    results = _start_together(db_url, tmp_path)
    for r in results:
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    with store.open_engine(db_url).connect() as conn:
        assert len(store.subscriber_statuses(conn)) == PROCESSES
