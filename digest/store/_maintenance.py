"""Keeping a database healthy for months: space freed by retention handed back, its size, online backups.

These take an `Engine`, not a connection: each needs a connection of its own outside any transaction
(SQLite's incremental vacuum and backup API work on the raw connection).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, text

from digest.store._engine import StoreError


def reclaim_space(engine: Engine) -> int:
    """Hand pages freed by retention back to the file system; how many bytes went (0 elsewhere). SQLite files
    made by digest use incremental auto-vacuum; an older file keeps its free pages for new digests (a full
    `VACUUM` converts it). The write-ahead log the move went through is truncated after (unless a reader
    holds it; `journal_size_limit` trims it at a later checkpoint). PostgreSQL's autovacuum does this itself."""
    if engine.dialect.name != "sqlite":
        return 0
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        mode, free, size = (int(conn.exec_driver_sql(f"PRAGMA {p}").scalar_one()) for p in _SPACE)
        if mode != 2 or not free:  # 2: incremental
            return 0
        level = raw.isolation_level
        raw.isolation_level = None
        try:
            raw.executescript("PRAGMA incremental_vacuum;")  # execute() would free one page a call
            # the pages it moved went through the write-ahead log, which keeps its size until truncated
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.isolation_level = level
        after = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
    return (free - after) * size


_SPACE = ("auto_vacuum", "freelist_count", "page_size")


def vacuum(engine: Engine) -> None:
    """Rewrite a SQLite file whole, switching it to incremental auto-vacuum (needs as much free disk as the
    file, and waits for other writers)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        level = raw.isolation_level
        raw.isolation_level = None
        try:
            raw.execute("PRAGMA auto_vacuum=INCREMENTAL")
            raw.execute("VACUUM")
        finally:
            raw.isolation_level = level


def database_size(engine: Engine) -> int | None:
    """Bytes the database takes: a SQLite file with its write-ahead log, or PostgreSQL's database size."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            return None
        path = Path(database.removeprefix("file:").split("?")[0])
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    return None


def backup(engine: Engine, target: Path) -> int:
    """A consistent copy of a SQLite database at `target` through SQLite's online backup API, taken while
    other processes keep writing; the copy's size. PostgreSQL: use `pg_dump`."""
    if engine.dialect.name != "sqlite":
        raise StoreError("digest backup copies SQLite databases; for PostgreSQL use pg_dump")
    target = target.expanduser()
    if target.exists():
        raise StoreError(f"{target} exists: choose a new file, a backup never overwrites one")
    partial = target.with_name(target.name + ".partial")
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        copy = sqlite3.connect(partial)
        try:
            # in one step, from one read snapshot: in WAL mode writers go on meanwhile, and a step-by-step copy
            # would start over each time one of them commits
            raw.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            copy.close()
    partial.rename(target)
    return target.stat().st_size
