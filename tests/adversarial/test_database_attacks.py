"""The database under stress while sending: full or read-only disk, a newer schema, two processes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.pool import ConnectionPoolEntry
from typer.testing import CliRunner

from digest import fetching, pipeline, planner, sending, store
from digest.cli import app
from digest.compose import Composer
from digest.config import Settings, load_config
from digest.deliver import MaildirTransport
from digest.models import DeliveryStatus
from tests.helpers import papers_json, utc

CONFIG = """
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
[[sources]]
name = "feed"
type = "file"
path = "feed.json"
"""
NOW = utc(2026, 11, 23, 9)


def _world(tmp_path: Path, subscribers: int = 5) -> Path:
    papers = [{"title": f"Mamba paper {i}", "summary": "A mamba state space model."} for i in range(3)]
    (tmp_path / "feed.json").write_text(json.dumps(papers_json(papers)))
    subs = "".join(f'[[subscribers]]\nemail = "r{i}@example.org"\nkeywords = ["mamba"]\n' for i in range(subscribers))
    path = tmp_path / "digest.toml"
    path.write_text(CONFIG + subs)
    return path


def _planned(tmp_path: Path) -> tuple[Settings, Engine]:
    settings = load_config(_world(tmp_path))
    engine = store.open_engine(settings.database_url)
    fetching.fetch(engine, settings, NOW)
    with engine.begin() as conn:
        planner.record(conn, planner.plan(conn, settings, Composer(), NOW), NOW)
    return settings, engine


def _statuses(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM delivery ORDER BY id")]


def _full_disk(engine: Engine) -> None:
    """From now on every write fails as on a full disk: SQLite may not grow the file by one page."""

    @event.listens_for(engine, "connect")
    def _cap(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    engine.dispose()


def test_full_disk_while_sending_leaves_deliveries_pending(tmp_path: Path) -> None:
    settings, engine = _planned(tmp_path)
    assert _statuses(tmp_path / "digest.db") == ["pending"] * 5
    with engine.begin() as conn:
        # recording an outcome rewrites a few bytes of small rows (message bytes live apart), so a page cap
        # cannot make it fail; the write fails as a full disk makes it fail
        conn.exec_driver_sql(
            "CREATE TRIGGER disk_full BEFORE UPDATE ON delivery BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(store.StoreError, match="cannot record"):
        asyncio.run(sending.send_pending(engine, settings, MaildirTransport(tmp_path / "mail"), NOW))
    assert set(_statuses(tmp_path / "digest.db")) == {"pending"}, "nothing is marked sent that was not recorded"


def test_read_only_database_while_sending(tmp_path: Path) -> None:
    settings, engine = _planned(tmp_path)
    engine.dispose()
    ro = store.open_engine(f"sqlite:///file:{tmp_path / 'digest.db'}?mode=ro&uri=true")
    with pytest.raises(store.StoreError, match="cannot record"):
        asyncio.run(sending.send_pending(ro, settings, MaildirTransport(tmp_path / "mail"), NOW))
    assert set(_statuses(tmp_path / "digest.db")) == {"pending"}


def test_full_disk_while_planning_records_nothing_and_exits_1(tmp_path: Path) -> None:
    config = _world(tmp_path)
    settings = load_config(config)
    engine = store.open_engine(settings.database_url)
    # the CLI plans at the real time, so the papers must be inside its lookback window: seen now
    fetching.fetch(engine, settings, pipeline.utcnow())
    with sqlite3.connect(tmp_path / "digest.db") as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute("CREATE TABLE ballast (x BLOB)")
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        conn.execute("INSERT INTO ballast VALUES (zeroblob(?))", (max(free, 1) * 4096,))
    # Every later connection (the CLI's) may not grow the file: planning's insert fails.
    import digest.store._engine as store_module

    original = store_module._configure_sqlite

    def capped(engine: Engine) -> None:
        original(engine)

        @event.listens_for(engine, "connect")
        def _cap(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
            now_pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
            dbapi_conn.execute(f"PRAGMA max_page_count = {now_pages}")

    store_module._configure_sqlite = capped
    try:
        result = CliRunner().invoke(app, ["--config", str(config), "send", "--no-fetch"])
    finally:
        store_module._configure_sqlite = original
    assert result.exit_code == 1, result.output
    assert "database" in result.output and "full" in result.output
    assert "Traceback" not in result.output
    assert _statuses(tmp_path / "digest.db") == []
    assert not (tmp_path / "mail").exists() or not any((tmp_path / "mail" / "new").iterdir())
    assert pages > 0


def test_newer_schema_is_refused_by_the_cli(tmp_path: Path) -> None:
    config = _world(tmp_path)
    store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    with sqlite3.connect(tmp_path / "digest.db") as conn:
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    result = CliRunner().invoke(app, ["--config", str(config), "send"])
    assert result.exit_code == 2
    assert "schema version 7, newer than this digest understands" in result.output
    assert "Traceback" not in result.output


def test_pending_survive_and_are_sent_once_the_disk_is_fine(tmp_path: Path) -> None:
    settings, engine = _planned(tmp_path)
    report = asyncio.run(sending.send_pending(engine, settings, MaildirTransport(tmp_path / "mail"), NOW))
    assert report.sent == 5
    with engine.connect() as conn:
        rows = conn.execute(select(store.delivery_t.c.status)).all()
    assert {r[0] for r in rows} == {DeliveryStatus.sent.value}
