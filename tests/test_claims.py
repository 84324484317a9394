"""Outbox claims and the planning lock on both backends: disjoint batches, leases that lapse and renew,
`digest send --worker`, and one planner at a time on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from digest import pipeline, runlock, store
from digest.config import Settings, parse_config
from digest.deliver import MaildirTransport
from digest.models import DeliveryStatus
from tests.helpers import papers_json, utc
from tests.postgres import PostgresServer
from tests.smtpd_helpers import FaultHandler, smtp_server

NOW = utc(2026, 3, 2, 8, 0)
LEASE = dt.timedelta(seconds=30)


def add_pending(engine: Engine, n: int) -> None:
    rows = [
        store.NewDelivery(f"r{i:03d}@example.org", NOW.date(), DeliveryStatus.pending, f"<{i}@x>", b"Hi.\r\n", [])
        for i in range(n)
    ]
    with engine.begin() as conn:
        store.insert_deliveries(conn, rows, NOW)


def test_claims_are_disjoint_and_a_lapsed_lease_frees_its_rows(db_url: str) -> None:
    engine = store.open_engine(db_url)
    add_pending(engine, 10)
    with engine.begin() as conn:
        a = store.claim_pending(conn, "a", NOW, LEASE, 4)
    with engine.begin() as conn:
        b = store.claim_pending(conn, "b", NOW, LEASE, 100)
    assert len(a) == 4 and len(b) == 6
    assert not {o.id for o in a} & {o.id for o in b}
    with engine.begin() as conn:
        assert store.claim_pending(conn, "c", NOW + LEASE / 2, LEASE, 100) == []
        assert store.renew_claims(conn, "a", NOW + 2 * LEASE) == 4
        # b's lease has lapsed, a's was renewed: c takes exactly b's rows.
        c = store.claim_pending(conn, "c", NOW, LEASE, 100, claim_time=NOW + LEASE + dt.timedelta(seconds=1))
        assert store.due_count(conn, NOW) == 10
    assert {o.id for o in c} == {o.id for o in b}


@pytest.mark.postgres
def test_concurrent_transactions_skip_each_others_locked_rows(pg_server: PostgresServer) -> None:
    engine = store.open_engine(pg_server.database())
    add_pending(engine, 10)
    with engine.begin() as first:
        a = store.claim_pending(first, "a", NOW, LEASE, 4)
        with engine.begin() as second:  # while the first still holds its row locks
            b = store.claim_pending(second, "b", NOW, LEASE, 4)
    assert len(a) == len(b) == 4
    assert [o.id for o in a] == [1, 2, 3, 4]
    assert [o.id for o in b] == [5, 6, 7, 8]
    engine.dispose()


@pytest.mark.postgres
def test_the_heartbeat_skips_rows_whose_outcome_is_being_written(pg_server: PostgresServer) -> None:
    """The lease renewal must not wait on a row the outcome writer holds: it would lock rows in another
    order than the writer and the two could deadlock (seen in CI with three workers)."""
    engine = store.open_engine(pg_server.database())
    add_pending(engine, 3)
    with engine.begin() as conn:
        held = store.claim_pending(conn, "a", NOW, LEASE, 3)
    ids = [o.id for o in held]
    with engine.begin() as writer:
        store.record_outcomes(writer, [store.SendOutcome(ids[1], DeliveryStatus.sent)], NOW)
        with engine.begin() as beat:  # the writer has not committed: it still holds ids[1]
            beat.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            assert store.renew_claims(beat, "a", NOW + 2 * LEASE) == 2
        store.record_outcomes(writer, [store.SendOutcome(ids[0], DeliveryStatus.sent)], NOW)
    t = store.delivery_t
    with engine.connect() as conn:
        rows: dict[int, dt.datetime | None] = dict(conn.execute(select(t.c.id, t.c.claimed_until)).all())
    assert rows[ids[0]] is None and rows[ids[1]] is None
    renewed = rows[ids[2]]
    assert renewed is not None and renewed.replace(tzinfo=dt.UTC) == NOW + 2 * LEASE
    engine.dispose()


def worker_config(tmp_path: Path, db_url: str, port: int) -> Path:
    config = tmp_path / "digest.toml"
    config.write_text(
        f'database_url = "{db_url}"\n[delivery]\ntransport = "smtp"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        '[[subscribers]]\nemail = "r000@example.org"\n'
    )
    return config


def test_send_worker_until_empty_drains_the_outbox(tmp_path: Path, db_url: str) -> None:
    engine = store.open_engine(db_url)
    add_pending(engine, 25)
    handler = FaultHandler()
    with smtp_server(handler) as port:
        config = worker_config(tmp_path, db_url, port)
        argv = [sys.executable, "-m", "digest", "--config", str(config), "send", "--worker", "--until-empty"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "worker sent: 25" in done.stdout
    assert len(handler.by_recipient()) == 25
    t = store.delivery_t
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t).where(t.c.status != "sent")).scalar_one() == 0
    engine.dispose()


def test_until_empty_needs_worker(tmp_path: Path) -> None:
    config = worker_config(tmp_path, f"sqlite:///{tmp_path / 'd.db'}", 25)
    done = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "send", "--until-empty"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--until-empty goes with --worker" in done.stderr


SUBSCRIBERS = 20


def plan_settings(tmp_path: Path, db_url: str) -> Settings:
    (tmp_path / "papers.json").write_text(
        json.dumps(papers_json([{"title": f"State space model {i}", "summary": "Mamba."} for i in range(3)]))
    )
    subs = "".join(f'[[subscribers]]\nemail = "s{i:02d}@example.org"\n' for i in range(SUBSCRIBERS))
    text = f"""
database_url = "{db_url}"
[schedule]
send_at = "00:00"
[delivery]
transport = "maildir"
maildir = "outbox"
[[sources]]
name = "today"
type = "file"
path = "papers.json"
{subs}"""
    return parse_config(text, tmp_path / "digest.toml")


@pytest.mark.postgres
def test_one_planner_at_a_time_on_postgresql(tmp_path: Path, pg_server: PostgresServer) -> None:
    settings = plan_settings(tmp_path, pg_server.database())
    engine = store.open_engine(settings.database_url)
    transport = MaildirTransport(tmp_path / "outbox")
    with runlock.planning_lock(engine) as held:
        assert held
        skipped = pipeline.run_once(engine, settings, NOW, transport=transport, plan_wait=False)
        assert skipped.planned == [] and skipped.fetched == []
        waiting: list[pipeline.RunReport] = []
        blocked = threading.Thread(
            target=lambda: waiting.append(pipeline.run_once(engine, settings, NOW, transport=transport))
        )
        blocked.start()
        blocked.join(timeout=0.5)
        assert blocked.is_alive(), "a waiting planner went ahead while another held the planning lock"
    blocked.join(timeout=60)
    assert len(waiting[0].planned) == SUBSCRIBERS

    # Two schedulers ticking at once: one plans, the other skips or finds everything planned; no error.
    reports: list[pipeline.RunReport] = []
    barrier = threading.Barrier(2)
    later = NOW + dt.timedelta(days=1)

    def tick() -> None:
        barrier.wait()
        reports.append(pipeline.run_once(engine, settings, later, transport=transport, plan_wait=False))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert sorted(len(r.planned) for r in reports) == [0, SUBSCRIBERS]
    t = store.delivery_t
    with engine.connect() as conn:
        per_day = conn.execute(select(t.c.digest_date, func.count()).group_by(t.c.digest_date)).all()
    assert sorted(n for _, n in per_day) == [SUBSCRIBERS, SUBSCRIBERS]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t).where(t.c.status == "pending")).scalar_one() == 0
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == SUBSCRIBERS  # day two had nothing new
    engine.dispose()
