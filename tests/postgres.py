"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, a free loopback port, torn down after.

Uses Debian's server binaries (/usr/lib/postgresql/*/bin, installed by .ci/system-deps). When they or
psycopg are missing, `PostgresUnavailable` says why and the tests that need it are skipped, never passed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be started here; the message says why."""


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresUnavailable("no PostgreSQL server binaries (apt-get install postgresql)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as(user: str | None, args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = ["runuser", "-u", user, "--", *args] if user else args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


class PostgresServer:
    """A running throwaway cluster; `database()` makes a fresh empty database and returns its URL."""

    def __init__(self) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise PostgresUnavailable("psycopg is not installed (pip install 'digest[postgres]')") from None
        self.bin = _bin_dir()
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no 'postgres' user for initdb") from None
            self.user = "postgres"
        self.root = Path(tempfile.mkdtemp(prefix="digest-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        if self.user:
            shutil.chown(self.root, self.user)
        os.chmod(self.root, 0o755)
        init = _run_as(
            self.user,
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "digest", "--auth=trust", "--no-sync", "-E", "UTF8"],
        )
        if init.returncode:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-300:]}")
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        start = _run_as(
            self.user,
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"],
        )
        if start.returncode:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else start.stderr
            raise PostgresUnavailable(f"pg_ctl start failed: {log.strip()[-300:]}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://digest@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database on this server; its SQLAlchemy URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=digest dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        _run_as(self.user, [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()
