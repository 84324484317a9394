"""Opening a database: the engine for any SQLAlchemy URL, SQLite's pragmas, the schema and its version."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, event, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import SQLModel, create_engine

from digest.models import SCHEMA_VERSION
from digest.store._sql import delivery_t, message_t, meta_t


class StoreError(Exception):
    """The database cannot be used as asked (newer schema, locked, read-only, unreachable)."""


def database_error(exc: SQLAlchemyError, doing: str) -> StoreError:
    """A StoreError saying what we were doing and what the database answered (no SQL, no parameters)."""
    orig = getattr(exc, "orig", None)
    return StoreError(f"database error while {doing}: {orig if orig is not None else type(exc).__name__}")


def masked_database_url(url: str) -> str:
    """A database URL fit for messages: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database_url>"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if cur.execute("PRAGMA page_count").fetchone()[0] == 0:
            # a new database hands pages freed by retention back to the file system (`reclaim_space`); this
            # takes effect only before the first table exists
            cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cur.execute("PRAGMA journal_mode=WAL")
        # a big transaction (a day's digests, retention's page moves) grows the log; a checkpoint trims it back
        cur.execute("PRAGMA journal_size_limit=67108864")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # 2 MB a connection: 16 MB sped up neither upserts nor the daily job, and cost ~35 MB of RSS in sending
        cur.execute("PRAGMA cache_size=-2048")
        cur.close()


def open_engine(url: str, *, connections: int | None = None) -> Engine:
    """An engine for any SQLAlchemy URL, the schema created on first use and its version checked.
    `connections` keeps that many pooled connections open (a server's worker threads), instead of opening
    and closing one per request past the default pool of five."""
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {}
    if connections is not None and parsed.database not in (None, "", ":memory:"):
        kwargs.update(pool_size=connections, max_overflow=connections)
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open database {parsed.render_as_string(hide_password=True)}: {exc}") from None
    if is_sqlite:
        _configure_sqlite(engine)
    ensure_schema(engine)
    return engine


def ensure_schema(engine: Engine) -> None:
    """Create missing tables and indexes and record the schema version; refuse a database whose schema is
    newer than this code understands (checked before anything is created in it)."""
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            if _up_to_date(conn):  # the usual case, and a read-only database: no lock, no write
                return
        with _schema_lock(engine) as conn:
            version = _stored_version(conn)
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(
                    f"database {shown} has schema version {version}, newer than this digest understands "
                    f"({SCHEMA_VERSION}); upgrade digest or point database_url at another file"
                )
            SQLModel.metadata.create_all(conn)
            # create_all skips tables that exist: indexes added since a database was made come here
            for table in SQLModel.metadata.sorted_tables:
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
            if version is None:
                conn.execute(insert(meta_t).values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif version < SCHEMA_VERSION:
                _upgrade(conn, version)
                conn.execute(update(meta_t).where(meta_t.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
    except OperationalError as exc:
        raise StoreError(f"cannot use database {shown}: {exc.orig}") from None


SCHEMA_LOCK = 0x6469676573740001  # PostgreSQL advisory lock key: "digest" + 1


@contextlib.contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's schema lock while the schema is checked, created or upgraded,
    so processes starting together take turns: SQLite's write lock taken up front (`BEGIN IMMEDIATE`,
    waiting out the busy timeout), a PostgreSQL transaction-scoped advisory lock elsewhere."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            yield conn
        return
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        level = raw.isolation_level
        raw.isolation_level = None  # we say BEGIN ourselves
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        finally:
            raw.isolation_level = level


def _upgrade(conn: Connection, version: int) -> None:
    """Bring an older database's data to this schema (the tables themselves were just created)."""
    if version < 2 and "message" in {c["name"] for c in inspect(conn).get_columns(delivery_t.name)}:
        # message bytes move out of the outbox rows, compressed
        old = delivery_t.name
        moved = 0
        while True:
            rows = conn.exec_driver_sql(
                f"SELECT id, message FROM {old} WHERE message IS NOT NULL AND id > {moved} ORDER BY id LIMIT 500"
            ).all()
            if not rows:
                break
            conn.execute(insert(message_t), [{"delivery_id": i, "data": zlib.compress(m, 1)} for i, m in rows])
            moved = rows[-1][0]
        conn.exec_driver_sql(f"ALTER TABLE {old} DROP COLUMN message")


def _up_to_date(conn: Connection) -> bool:
    """Whether the database already holds this schema whole: its version, every table and every index."""
    if _stored_version(conn) != SCHEMA_VERSION:
        return False
    inspector = inspect(conn)
    have = set(inspector.get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in have:
            return False
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        if any(index.name not in indexes for index in table.indexes):
            return False
    return True


def _stored_version(conn: Connection) -> int | None:
    """The recorded schema version, or None for a database without one (new, or without the meta table)."""
    if not inspect(conn).has_table(meta_t.name):
        return None
    row = conn.execute(select(meta_t.c.value).where(meta_t.c.key == "schema_version")).first()
    return int(row[0]) if row is not None else None


def get_meta(conn: Connection, key: str) -> str | None:
    """A fact kept about the database (see the `meta` table), or None."""
    return conn.execute(select(meta_t.c.value).where(meta_t.c.key == key)).scalar()


def put_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(meta_t).where(meta_t.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(insert(meta_t).values(key=key, value=value))
