"""Transports that hand finished message bytes to the world: Maildir (default), stdout, SMTP.

A transport never decides retry policy: it reports for each envelope whether it was accepted, refused
for now (temporary) or refused for good (permanent), and the pipeline records what follows.
"""

from __future__ import annotations

import asyncio
import mailbox
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import aiosmtplib

from digest.config import Settings, SmtpConfig


@dataclass(frozen=True, slots=True)
class Envelope:
    """One stored message on its way out."""

    delivery_id: int
    sender: str
    recipient: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SendResult:
    """The transport's verdict on one envelope."""

    delivery_id: int
    ok: bool
    permanent: bool = False
    error: str | None = None


class Transport(Protocol):
    async def send(self, batch: Sequence[Envelope]) -> list[SendResult]: ...

    async def close(self) -> None: ...


class MaildirTransport:
    """Writes each message into a local Maildir (`new/`), created on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, batch: Sequence[Envelope]) -> list[SendResult]:
        results = []
        try:
            box = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            return [
                SendResult(e.delivery_id, False, False, f"maildir {self.path}: {exc.strerror}") for e in batch
            ]
        for env in batch:
            try:
                box.add(env.data)
                results.append(SendResult(env.delivery_id, True))
            except OSError as exc:
                results.append(
                    SendResult(env.delivery_id, False, False, f"maildir {self.path}: {exc.strerror}")
                )
        return results

    async def close(self) -> None:
        return None


class StdoutTransport:
    """Prints each message to standard output (useful for piping into another mailer or debugging)."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream = stream or sys.stdout.buffer

    async def send(self, batch: Sequence[Envelope]) -> list[SendResult]:
        for env in batch:
            self.stream.write(env.data)
            self.stream.write(b"\n")
        self.stream.flush()
        return [SendResult(env.delivery_id, True) for env in batch]

    async def close(self) -> None:
        return None


class SmtpTransport:
    """Sends over one aiosmtplib connection per batch; `security` is enforced, never silently downgraded."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, batch: Sequence[Envelope]) -> list[SendResult]:
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            timeout=cfg.timeout,
            use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls",
            validate_certs=cfg.validate_certs,
        )
        try:
            await client.connect()
            if cfg.username:
                await client.login(cfg.username, cfg.password.get_secret_value())
        except aiosmtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.code < 600
            return [SendResult(e.delivery_id, False, permanent, f"{exc.code} {exc.message}") for e in batch]
        except (aiosmtplib.SMTPException, OSError) as exc:
            return [
                SendResult(e.delivery_id, False, False, f"cannot reach {cfg.host}:{cfg.port}: {exc}")
                for e in batch
            ]
        results = []
        try:
            for env in batch:
                try:
                    await client.sendmail(env.sender, [env.recipient], env.data)
                    results.append(SendResult(env.delivery_id, True))
                except aiosmtplib.SMTPResponseException as exc:
                    results.append(
                        SendResult(env.delivery_id, False, 500 <= exc.code < 600, f"{exc.code} {exc.message}")
                    )
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    codes = [r.code for r in exc.recipients]
                    results.append(
                        SendResult(env.delivery_id, False, all(500 <= c < 600 for c in codes), str(exc))
                    )
                except (aiosmtplib.SMTPException, OSError) as exc:
                    results.append(SendResult(env.delivery_id, False, False, str(exc)))
                    break
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        done = {r.delivery_id for r in results}
        results.extend(
            SendResult(e.delivery_id, False, False, "not attempted: connection lost")
            for e in batch
            if e.delivery_id not in done
        )
        return results

    async def close(self) -> None:
        return None


def build_transport(settings: Settings) -> Transport:
    """The transport `[delivery] transport` names."""
    kind = settings.delivery.transport
    if kind == "maildir":
        return MaildirTransport(settings.delivery.maildir)
    if kind == "stdout":
        return StdoutTransport()
    return SmtpTransport(settings.smtp)


def check_smtp(config: SmtpConfig) -> str | None:
    """Connect, negotiate TLS, authenticate and QUIT without sending; the problem as a sentence, or None."""

    async def _check() -> str | None:
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            timeout=config.timeout,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            validate_certs=config.validate_certs,
        )
        try:
            await client.connect()
            if config.username:
                await client.login(config.username, config.password.get_secret_value())
            await client.quit()
        except aiosmtplib.SMTPResponseException as exc:
            return f"SMTP {config.host}:{config.port} answered {exc.code} {exc.message}"
        except (aiosmtplib.SMTPException, OSError) as exc:
            return f"cannot reach SMTP {config.host}:{config.port}: {type(exc).__name__}: {exc}"
        return None

    return asyncio.run(_check())
