"""One sending process per database: `digest run` and `digest send` hold this lock while they work.

SQLite: an advisory `flock` on `<database>.lock` next to the file (the kernel drops it when the process
dies, even by SIGKILL). PostgreSQL: no process-wide lock; any number of `digest run`, `digest send` and
`digest send --worker` processes share the database: senders take disjoint batches through leased row
claims (`delivery.claimed_by`/`claimed_until`), and fetch + plan run under `planning_lock`, a session
advisory lock, so two schedulers never plan the same day twice.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import make_url


class LockError(Exception):
    """The one-process lock cannot be taken; the message says why and what to do."""


class LockHeld(LockError):
    """Another process already sends for this database."""


class RunLock:
    """A lock held while sending; use as `with lock_for(...).acquire():` or `with lock_for(...):`.

    `exclusive` says whether its holder is the database's only sender (and may free every claim).
    """

    exclusive = True

    def acquire(self) -> RunLock:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> RunLock:
        return self if self.held else self.acquire()

    @property
    def held(self) -> bool:
        return False

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class FileLock(RunLock):
    """flock on a file beside the SQLite database; the holder's pid and purpose are written into it."""

    def __init__(self, path: Path, purpose: str, database: str) -> None:
        self.path = path
        self.purpose = purpose
        self.database = database
        self._file: IO[str] | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the lock's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LockHeld(
                f"{holder} is already sending for database {self.database} (lock {self.path}); "
                "only one `digest run` or `digest send` may work on a database at a time; "
                "stop it first, or let it do the sending"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        handle.write(f"`{self.purpose}` (pid {os.getpid()}, since {started})")
        handle.flush()
        self._file = handle
        return self

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class NoLock(RunLock):
    """For an in-memory database, which no other process can see."""

    def acquire(self) -> NoLock:
        return self

    def release(self) -> None:
        return None


class SharedLock(NoLock):
    """PostgreSQL: many processes may send at once; row claims and `planning_lock` keep them apart."""

    exclusive = False


def _advisory_key(purpose: str) -> int:
    """A fixed 64-bit key; PostgreSQL advisory locks are already per database."""
    return int.from_bytes(hashlib.sha256(purpose.encode()).digest()[:8], "big", signed=True)


@contextmanager
def planning_lock(engine: Any, wait: bool = True) -> Iterator[bool]:
    """Hold the right to fetch and plan: yields True when held, False when another process plans now.

    PostgreSQL: a session advisory lock on a connection kept open meanwhile (the server drops it if the
    process dies); `wait` blocks until it is free, else the caller skips planning this time. Other
    backends: always True (the SQLite file lock already makes the holder the only process).
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = _advisory_key("digest-plan")
    with engine.connect() as conn:
        if wait:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            got = True
        else:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


def lock_for(database_url: str, purpose: str, engine: Any = None) -> RunLock:
    """The right lock for this database URL (`engine` is needed for PostgreSQL only)."""
    url = make_url(database_url)
    shown = url.render_as_string(hide_password=True)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            return NoLock()
        return FileLock(Path(url.database + ".lock"), purpose, shown)
    if backend == "postgresql":
        return SharedLock()
    raise LockError(f"cannot take the one-process lock for {shown}: only SQLite and PostgreSQL are supported")
