"""Retention and backups: old message bytes go, the history (and "never the same paper twice") stays, the
space comes back, and a backup taken while `digest send` works is a sound database."""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from freezegun import freeze_time
from sqlalchemy import func, select
from typer.testing import CliRunner

from digest import store
from digest.cli import app
from digest.models import DeliveryStatus
from tests.helpers import papers_json

CONFIG = """
database_url = "{db_url}"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
keep_message_days = 3
send_empty = true
[[sources]]
name = "today"
type = "file"
path = "today.json"
{subscribers}
"""


def _write(tmp_path: Path, db_url: str, readers: int = 2) -> Path:
    subs = "".join(f'[[subscribers]]\nemail = "r{i}@example.org"\nkeywords = ["mamba"]\n' for i in range(readers))
    config = tmp_path / "digest.toml"
    config.write_text(CONFIG.format(db_url=db_url, subscribers=subs))
    return config


def _papers(tmp_path: Path, day: int, count: int = 3) -> None:
    items = [{"title": f"Mamba day {day} part {i}", "summary": "A mamba model."} for i in range(count)]
    (tmp_path / "today.json").write_text(json.dumps(papers_json(items)))


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_retention_drops_old_bytes_keeps_history_and_never_sends_a_paper_twice(tmp_path: Path, db_url: str) -> None:
    config = _write(tmp_path, db_url)
    for day in range(6):
        _papers(tmp_path, day)
        with freeze_time(f"2026-11-{10 + day} 08:00:00"):
            _run(config, "send")
    engine = store.open_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.message_t)).scalar_one() == 12
    with freeze_time("2026-11-15 09:00:00"):
        out = _run(config, "prune")
    assert "dropped the bytes of 6 digests" in out  # the 10th to the 12th: created more than 3 days before
    with engine.connect() as conn:
        kept_days = conn.execute(
            select(store.delivery_t.c.digest_date)
            .join(store.message_t, store.message_t.c.delivery_id == store.delivery_t.c.id)
            .distinct()
        ).scalars()
        assert sorted(d.day for d in kept_days) == [13, 14, 15]
        assert conn.execute(select(func.count()).select_from(store.delivery_t)).scalar_one() == 12
        assert store.stored_message(conn, "r0@example.org", dt.date(2026, 11, 10)) is None
        assert store.stored_message(conn, "r0@example.org", dt.date(2026, 11, 15)) is not None
    # the day-0 papers come again (an updated listing): the history still says they were sent
    _papers(tmp_path, 0)
    with freeze_time("2026-11-16 08:00:00"):
        _run(config, "send")
    with engine.connect() as conn:
        rows = conn.execute(
            select(store.delivery_t.c.status, func.count(store.item_t.c.id))
            .outerjoin(store.item_t, store.item_t.c.delivery_id == store.delivery_t.c.id)
            .where(store.delivery_t.c.digest_date == dt.date(2026, 11, 16))
            .group_by(store.delivery_t.c.id, store.delivery_t.c.status)
        ).all()
    assert rows == [("sent", 0), ("sent", 0)], "the empty note, not the papers again"


def test_pending_digests_keep_their_bytes_however_old(tmp_path: Path) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [
        store.NewDelivery("a@example.org", old.date(), status, "<m>", b"bytes", [])
        for status in (DeliveryStatus.pending, DeliveryStatus.skipped)
    ]
    rows[1].subscriber = "b@example.org"
    with engine.begin() as conn:
        store.insert_deliveries(conn, rows, old)
        assert store.prune_messages(conn, old + dt.timedelta(days=400)) == 1
        claimed = store.claim_pending(conn, "me", old + dt.timedelta(days=400), dt.timedelta(60), 10, mark=False)
    assert [c.message for c in claimed] == [b"bytes"]


def test_pruning_hands_the_space_back_to_the_file_system(tmp_path: Path) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    day = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    noise = random.Random(1)
    rows = [  # random bytes do not compress: 200 × 64 KB
        store.NewDelivery(f"r{i}@example.org", day.date(), DeliveryStatus.skipped, None, noise.randbytes(65536), [])
        for i in range(200)
    ]
    with engine.begin() as conn:
        store.insert_deliveries(conn, rows, day)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = store.database_size(engine) or 0
    with engine.begin() as conn:
        assert store.prune_messages(conn, day + dt.timedelta(days=1)) == 200
    freed = store.reclaim_space(engine)
    after = store.database_size(engine) or 0
    assert freed > 10_000_000 and after < before - 10_000_000
    # moving pages writes them to the write-ahead log: it must not stay as large as what was freed
    wal = tmp_path / "digest.db-wal"
    assert not wal.exists() or wal.stat().st_size < 1_000_000


def test_a_backup_taken_while_send_works_is_sound(tmp_path: Path) -> None:
    db = tmp_path / "digest.db"
    config = _write(tmp_path, f"sqlite:///{db}", readers=800)
    _papers(tmp_path, 0, count=40)
    _run(config, "fetch")
    sender = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "send", "--no-fetch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    copies: list[Path] = []
    try:
        for n in range(30):
            if sender.poll() is not None and copies:
                break
            copy = tmp_path / f"copy-{n}.db"
            _run(config, "backup", str(copy))
            copies.append(copy)
            time.sleep(0.05)
    finally:
        _, err = sender.communicate(timeout=300)
    assert sender.returncode == 0, err
    assert len(copies) >= 2
    for copy in copies:
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            orphans = conn.execute(  # a digest and its bytes are stored in one transaction: never one alone
                "SELECT count(*) FROM delivery d LEFT JOIN delivery_message m ON m.delivery_id = d.id"
                " WHERE m.delivery_id IS NULL AND d.status != 'skipped'"
            ).fetchone()
            assert orphans == (0,)
    result = CliRunner().invoke(app, ["--config", str(config), "backup", str(copies[0])])
    assert result.exit_code == 1 and "exists" in result.output
