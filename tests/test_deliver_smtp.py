"""The SMTP outbox (SQLite and PostgreSQL) against a real aiosmtpd on loopback: every fault ends in the right status and attempt count."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import Engine, select

from digest import sending, store
from digest.config import Settings, parse_config
from digest.deliver import Envelope, SmtpTransport
from digest.models import DeliveryStatus
from tests.helpers import utc
from tests.smtpd_helpers import FaultHandler, smtp_server


@pytest.fixture(autouse=True)
def _own_log_handlers() -> Iterator[None]:
    """A CLI test elsewhere may have bound the `digest` logger to a now-closed stream: detach it here."""
    logger = logging.getLogger("digest")
    saved = logger.handlers[:]
    logger.handlers.clear()
    yield
    logger.handlers[:] = saved


NOW = utc(2026, 3, 2, 8, 0)


def settings_for(
    tmp_path: Path, port: int, *, timeout: float = 0.5, max_connections: int = 2, db: str = "sqlite:///digest.db"
) -> Settings:
    text = f"""
database_url = "{db}"
[delivery]
transport = "smtp"
from = "Papers <papers@example.org>"
max_attempts = 2
retry_base_seconds = 60
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = {timeout}
max_connections = {max_connections}
[[subscribers]]
email = "nobody@example.org"
"""
    return parse_config(text, tmp_path / "digest.toml")


def message(rcpt: str) -> tuple[str, bytes]:
    mid = f"<2026-03-02.{rcpt.split('@')[0]}@example.org>"
    body = f"From: papers@example.org\r\nTo: {rcpt}\r\nSubject: Daily papers\r\nMessage-ID: {mid}\r\n\r\nHello.\r\n"
    return mid, body.encode()


def add_pending(engine: Engine, recipients: list[str], now: dt.datetime = NOW) -> None:
    rows = []
    for rcpt in recipients:
        mid, data = message(rcpt)
        rows.append(store.NewDelivery(rcpt, now.date(), DeliveryStatus.pending, mid, data, []))
    with engine.begin() as conn:
        store.insert_deliveries(conn, rows, now)


def send(engine: Engine, settings: Settings, now: dt.datetime) -> sending.SendReport:
    async def go() -> sending.SendReport:
        transport = SmtpTransport(settings.smtp)
        try:
            return await sending.send_pending(engine, settings, transport, now)
        finally:
            await transport.close()

    return asyncio.run(go())


def rows(engine: Engine) -> dict[str, tuple[str, int, str | None]]:
    t = store.delivery_t
    with engine.connect() as conn:
        result = conn.execute(select(t.c.subscriber, t.c.status, t.c.attempts, t.c.last_error, t.c.claimed_by))
        out = {}
        for r in result:
            assert r.claimed_by is None
            out[r.subscriber] = (r.status, r.attempts, r.last_error)
    return out


FAULTS = {
    "t451@example.org": "451",
    "p550@example.org": "550",
    "drop@example.org": "drop",
    "slow@example.org": "slow",
    "nouser@example.org": "rcpt550",
    "busy@example.org": "rcpt451",
}


def test_each_fault_ends_in_the_right_status_with_the_right_attempts(tmp_path: Path, db_url: str) -> None:
    handler = FaultHandler(faults=dict(FAULTS), slow_seconds=2.0)
    with smtp_server(handler) as port:
        settings = settings_for(tmp_path, port, db=db_url)
        engine = store.open_engine(settings.database_url)
        add_pending(engine, ["ok@example.org", "ok2@example.org", *FAULTS])

        first = send(engine, settings, NOW)
        after1 = rows(engine)
        assert after1["ok@example.org"] == ("sent", 1, None)
        assert after1["ok2@example.org"] == ("sent", 1, None)
        assert after1["t451@example.org"][:2] == ("pending", 1)
        assert "451 4.3.0" in (after1["t451@example.org"][2] or "")
        assert after1["p550@example.org"] == ("failed", 1, "550 5.7.1 message refused by policy")
        assert after1["drop@example.org"][:2] == ("pending", 1)
        assert "connection lost" in (after1["drop@example.org"][2] or "")
        assert after1["slow@example.org"][:2] == ("pending", 1)
        assert "no answer within 0.5s" in (after1["slow@example.org"][2] or "")
        assert after1["nouser@example.org"][:2] == ("failed", 1)
        assert "550 5.1.1" in (after1["nouser@example.org"][2] or "")
        assert after1["busy@example.org"][:2] == ("pending", 1)
        assert (first.sent, first.failed, first.retrying) == (2, 2, 4)

        # Not yet due: backoff puts the retries about a minute out.
        assert send(engine, settings, NOW + dt.timedelta(seconds=10)) == sending.SendReport()

        # Second (last) attempt: the still-failing ones give up, with the server's reply kept.
        handler.faults.pop("busy@example.org")
        second = send(engine, settings, NOW + dt.timedelta(hours=1))
        after2 = rows(engine)
        assert after2["busy@example.org"] == ("sent", 2, None)
        for rcpt in ("t451@example.org", "drop@example.org", "slow@example.org"):
            assert after2[rcpt][:2] == ("failed", 2), rcpt
        assert "451 4.3.0" in (after2["t451@example.org"][2] or "")
        assert after2["p550@example.org"] == ("failed", 1, "550 5.7.1 message refused by policy")
        assert after2["ok@example.org"] == ("sent", 1, None)
        assert (second.sent, second.failed, second.retrying) == (1, 3, 0)

        got = handler.by_recipient()
        assert sorted(got) == ["busy@example.org", "ok2@example.org", "ok@example.org"]
        assert all(len(v) == 1 for v in got.values())


def test_a_pool_of_reused_connections_sends_concurrently(tmp_path: Path, db_url: str) -> None:
    handler = FaultHandler()
    peers: set[object] = set()
    with smtp_server(handler) as port:
        settings = settings_for(tmp_path, port, timeout=5, max_connections=3, db=db_url)
        engine = store.open_engine(settings.database_url)
        recipients = [f"r{i:03d}@example.org" for i in range(60)]
        add_pending(engine, recipients)

        async def go() -> None:
            transport = SmtpTransport(settings.smtp)
            original = transport.connect

            async def counting_connect() -> aiosmtplib.SMTP:
                client = await original()
                peers.add(id(client))
                return client

            transport.connect = counting_connect  # type: ignore[method-assign]
            await sending.send_pending(engine, settings, transport, NOW)
            assert len(transport._idle) == 3
            await transport.close()

        asyncio.run(go())
    assert len(peers) == 3
    assert sorted(handler.by_recipient()) == recipients
    assert {s for s, _, _ in rows(engine).values()} == {"sent"}
    # The exact stored bytes went out (line endings as stored, Message-ID intact).
    first = handler.by_recipient()["r000@example.org"][0]
    assert first.message_id == "<2026-03-02.r000@example.org>"
    assert message("r000@example.org")[1].replace(b"\r\n", b"\n") in first.data.replace(b"\r\n", b"\n")


def test_partial_recipient_refusal_is_reported(tmp_path: Path) -> None:
    handler = FaultHandler(faults={"nouser@example.org": "rcpt550"})
    with smtp_server(handler) as port:
        settings = settings_for(tmp_path, port)

        async def go() -> list[object]:
            transport = SmtpTransport(settings.smtp)
            env = Envelope(1, "papers@example.org", "ok@example.org", message("ok@example.org")[1])
            both = Envelope(2, "papers@example.org", "ok@example.org", env.data, also_to=("nouser@example.org",))
            none = Envelope(3, "papers@example.org", "nouser@example.org", env.data)
            try:
                return list(await transport.send([env, both, none]))
            finally:
                await transport.close()

        single, partial, refused = asyncio.run(go())
    assert single.ok and not single.refused  # type: ignore[attr-defined]
    assert partial.ok and partial.refused == ("nouser@example.org",)  # type: ignore[attr-defined]
    assert "refused for nouser@example.org: 550 5.1.1" in partial.error  # type: ignore[attr-defined]
    assert not refused.ok and refused.permanent  # type: ignore[attr-defined]
    assert len(handler.received) == 2
    assert handler.received[1].recipients == ["ok@example.org"]


def test_unreachable_server_keeps_everything_pending(tmp_path: Path, db_url: str) -> None:
    from tests.smtpd_helpers import free_port

    settings = settings_for(tmp_path, free_port(), db=db_url)
    engine = store.open_engine(settings.database_url)
    add_pending(engine, ["a@example.org", "b@example.org"])
    report = send(engine, settings, NOW)
    assert report.retrying == 2
    for status, attempts, error in rows(engine).values():
        assert (status, attempts) == ("pending", 1)
        assert "cannot reach SMTP 127.0.0.1" in (error or "")


def test_oldest_pending_goes_first_across_days(tmp_path: Path, db_url: str) -> None:
    handler = FaultHandler()
    with smtp_server(handler) as port:
        settings = settings_for(tmp_path, port, max_connections=1, db=db_url)
        engine = store.open_engine(settings.database_url)
        add_pending(engine, ["new@example.org"], NOW)
        add_pending(engine, ["old@example.org"], NOW - dt.timedelta(days=1))
        send(engine, settings, NOW)
    assert [m.recipients[0] for m in handler.received] == ["old@example.org", "new@example.org"]


def test_history_shows_status_attempts_and_the_servers_reply(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from digest.cli import app

    handler = FaultHandler(faults={"p550@example.org": "550", "t451@example.org": "451"})
    with smtp_server(handler) as port:
        settings = settings_for(tmp_path, port)
        engine = store.open_engine(settings.database_url)
        today = dt.datetime.now(dt.UTC).replace(microsecond=0)
        add_pending(engine, ["ok@example.org", "p550@example.org", "t451@example.org"], today)
        send(engine, settings, today)
    config = tmp_path / "digest.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "digest.db"}"\n[[subscribers]]\nemail = "a@example.org"\n'
    )
    result = CliRunner().invoke(app, ["--config", str(config), "history"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[2].strip(): line for line in result.output.splitlines() if "@example.org" in line}
    assert "sent" in lines["ok@example.org"]
    assert "failed" in lines["p550@example.org"] and "550 5.7.1 message refused by policy" in lines["p550@example.org"]
    assert "pending" in lines["t451@example.org"] and "451 4.3.0" in lines["t451@example.org"]
    assert all(line.split("│")[4].strip() == "1" for line in lines.values())
