"""Opening a database: the engine for any SQLAlchemy URL, SQLite's pragmas, the schema and its version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import SQLModel, create_engine

from digest.models import SCHEMA_VERSION
from digest.store._sql import meta_t


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
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # 2 MB a connection: 16 MB sped up neither upserts nor the daily job, and cost ~35 MB of RSS in sending
        cur.execute("PRAGMA cache_size=-2048")
        cur.close()


def open_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL, the schema created on first use and its version checked."""
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {}
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
    """Create missing tables; refuse a database whose schema is newer than this code understands."""
    redacted_url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.begin() as conn:
            SQLModel.metadata.create_all(conn)
            # create_all skips tables that exist: indexes added since a database was made come here
            for table in SQLModel.metadata.sorted_tables:
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
            row = conn.execute(select(meta_t.c.value).where(meta_t.c.key == "schema_version")).first()
            if row is None:
                conn.execute(insert(meta_t).values(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            version = int(row[0])
    except OperationalError as exc:
        raise StoreError(f"cannot use database {redacted_url}: {exc.orig}") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database {redacted_url} has schema version {version}, newer than this digest understands "
            f"({SCHEMA_VERSION}); upgrade digest or point database_url at another file"
        )
