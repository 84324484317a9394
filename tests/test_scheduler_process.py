"""`digest run` as a real process: one per database (a second one refuses, so does `digest send`), and
SIGTERM lets the message in flight finish, records it, and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from digest import store
from tests.smtpd_helpers import FaultHandler, smtp_server

RECIPIENTS = [f"r{i}@example.org" for i in range(5)]


def write_config(tmp_path: Path, port: int) -> Path:
    subs = "".join(f'[[subscribers]]\nemail = "{r}"\n' for r in RECIPIENTS)
    config = tmp_path / "digest.toml"
    config.write_text(
        f"""
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
transport = "smtp"
send_empty = true
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = 20
max_connections = 1
{subs}"""
    )
    return config


def digest(config: Path, *args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[call-overload]
    )


def wait_for(what: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_sigterm_finishes_the_message_in_flight_and_exits_zero(tmp_path: Path) -> None:
    handler = FaultHandler(faults={r: "slow" for r in RECIPIENTS}, slow_seconds=1.0)
    with smtp_server(handler) as port:
        config = write_config(tmp_path, port)
        first = digest(config, "run", "--tick", "3600")
        try:
            wait_for(lambda: handler.data_commands >= 1 or first.poll() is not None)
            assert first.poll() is None, first.communicate()

            in_flight = handler.data_commands
            first.send_signal(signal.SIGTERM)
            _, err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode == 0, err
        assert "event=stopping signal=SIGTERM" in err
        engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
        t = store.delivery_t
        with engine.connect() as conn:
            rows = {r.subscriber: (r.status, r.attempts, r.claimed_by) for r in conn.execute(select(t))}
        sent = [s for s, (status, _, _) in rows.items() if status == "sent"]
        # The messages that had started were finished and recorded; none was cut off, nothing else started.
        assert len(sent) == len(handler.received) >= in_flight >= 1
        assert len(handler.received) < len(RECIPIENTS)
        for subscriber, (status, attempts, claimed_by) in rows.items():
            assert claimed_by is None
            assert (status, attempts) == (("sent", 1) if subscriber in sent else ("pending", 0))
        assert not (tmp_path / "digest.db.lock").read_text()  # released

        # After the stop, a new `digest send` may take the lock and finishes the rest.
        handler.faults.clear()
        again = digest(config, "send")
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        assert sorted(handler.by_recipient()) == RECIPIENTS
        assert all(len(v) == 1 for v in handler.by_recipient().values())


def test_a_second_process_is_refused_and_sigint_exits_zero(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('database_url = "sqlite:///digest.db"\n[[subscribers]]\nemail = "a@example.org"\n')
    proc = digest(config, "-v", "run", "--tick", "3600", env={**os.environ})
    try:
        wait_for(lambda: (tmp_path / "digest.db.lock").exists() and bool((tmp_path / "digest.db.lock").read_text()))
        second = digest(config, "run")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert "already sending for database" in err and "`digest run` (pid" in err
        sender = digest(config, "send")
        _, err = sender.communicate(timeout=60)
        assert sender.returncode == 1 and "already sending" in err
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "event=scheduler_stopped" in err
