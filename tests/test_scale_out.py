"""Scale-out on a real PostgreSQL server: 3,000 pending deliveries drained by three `digest send --worker`
processes against one aiosmtpd; one worker is SIGKILLed midway with claims in hand. Every subscriber gets
exactly one message, or a same-Message-ID resend of a row the killed worker held; nothing stays pending."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from digest import store
from digest.models import DeliveryStatus
from tests.helpers import utc
from tests.postgres import PostgresServer
from tests.smtpd_helpers import FaultHandler, smtp_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DELIVERIES = 3000
WORKERS = 3
KILL_AFTER = 900  # messages received by the server before the first worker is killed
NOW = utc(2026, 3, 2, 8, 0)


def recipient(i: int) -> str:
    return f"s{i:04d}@example.org"


def fill_outbox(engine: Engine) -> None:
    rows = []
    for i in range(DELIVERIES):
        rcpt = recipient(i)
        mid = f"<2026-03-02.{i:04d}@example.org>"
        data = f"From: papers@example.org\r\nTo: {rcpt}\r\nSubject: Daily papers\r\nMessage-ID: {mid}\r\n\r\nHi.\r\n"
        rows.append(store.NewDelivery(rcpt, NOW.date(), DeliveryStatus.pending, mid, data.encode(), []))
    with engine.begin() as conn:
        store.insert_deliveries(conn, rows, NOW)


def write_config(tmp_path: Path, db_url: str, port: int) -> Path:
    config = tmp_path / "digest.toml"
    config.write_text(
        f"""
database_url = "{db_url}"
[delivery]
transport = "smtp"
claim_lease_seconds = 2
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = 20
max_connections = 4
[[subscribers]]
email = "{recipient(0)}"
"""
    )
    return config


def held_by(engine: Engine, pid: int) -> set[str]:
    """Recipients of pending rows the process `pid` has claimed (worker ids are host:pid:random)."""
    t = store.delivery_t
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.c.subscriber).where(t.c.status == "pending", t.c.claimed_by.like(f"%:{pid}:%"))
        ).all()
    return {r[0] for r in rows}


def test_three_workers_one_killed_every_subscriber_gets_exactly_one(tmp_path: Path, pg_server: PostgresServer) -> None:
    db_url = pg_server.database()
    engine = store.open_engine(db_url)
    fill_outbox(engine)
    handler = FaultHandler()
    with smtp_server(handler) as port:
        config = write_config(tmp_path, db_url, port)
        argv = [sys.executable, "-m", "digest", "--config", str(config), "send", "--worker", "--until-empty"]
        workers = [
            subprocess.Popen([*argv, "--poll", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(WORKERS)
        ]
        victim = workers[0]
        in_hand: set[str] = set()
        killed_at = [0]

        def kill_midway() -> None:
            """SIGKILL the first worker once the server has taken KILL_AFTER messages and it holds claims."""
            while victim.poll() is None:
                if len(handler.received) >= KILL_AFTER:
                    claimed = held_by(engine, victim.pid)
                    if claimed:
                        victim.send_signal(signal.SIGKILL)
                        killed_at[0] = len(handler.received)
                        victim.wait()
                        in_hand.update(held_by(engine, victim.pid))
                        return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_midway)
        killer.start()
        outputs = [w.communicate(timeout=120) for w in workers]
        killer.join(timeout=10)

    assert victim.returncode == -signal.SIGKILL, "the first worker finished before it could be killed"
    assert KILL_AFTER <= killed_at[0] < DELIVERIES
    assert in_hand, "the killed worker held no claims: its lease expiry was not exercised"
    for w, (out, err) in zip(workers[1:], outputs[1:], strict=True):
        assert w.returncode == 0, err[-2000:]
        assert "worker sent:" in out

    received = handler.by_recipient()
    assert sorted(received) == [recipient(i) for i in range(DELIVERIES)]
    duplicates = {r: msgs for r, msgs in received.items() if len(msgs) > 1}
    for rcpt, msgs in duplicates.items():
        assert rcpt in in_hand, f"{rcpt} got {len(msgs)} messages but the killed worker never held it"
        assert len({m.message_id for m in msgs}) == 1
        assert len({m.data for m in msgs}) == 1
    assert all(len(msgs) <= 2 for msgs in received.values())

    t = store.delivery_t
    with engine.connect() as conn:
        statuses: dict[str, int] = dict(conn.execute(select(t.c.status, func.count()).group_by(t.c.status)).all())
        claimed = conn.execute(select(func.count()).select_from(t).where(t.c.claimed_by.is_not(None))).scalar_one()
    assert statuses == {"sent": DELIVERIES}
    assert claimed == 0
    print(
        f"\nscale-out: killed after {killed_at[0]} messages holding {len(in_hand)} claims; "
        f"{len(handler.received)} received, {sum(len(m) - 1 for m in duplicates.values())} resent"
    )
    engine.dispose()
