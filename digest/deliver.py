"""Transports that hand finished message bytes to the world: Maildir (default), stdout, SMTP.

A transport never decides retry policy: it reports for each envelope whether it was accepted, refused
for now (temporary) or refused for good (permanent), and the pipeline records what follows. Results are
also streamed through `on_result` as they happen, so the caller can commit them while sending goes on,
and a set `stop` event means "finish the messages in flight, start no new one".
"""

from __future__ import annotations

import asyncio
import mailbox
import shutil
import ssl
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import aiosmtplib

from digest.config import Settings, SmtpConfig

ResultSink = Callable[["SendResult"], None]

IDLE_CHECK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Envelope:
    """One stored message on its way out (`also_to`: further envelope recipients, normally none)."""

    delivery_id: int
    sender: str
    recipient: str
    data: bytes
    also_to: tuple[str, ...] = ()

    @property
    def recipients(self) -> tuple[str, ...]:
        return (self.recipient, *self.also_to)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The transport's verdict on one envelope; `refused` lists recipients refused while others accepted."""

    delivery_id: int
    ok: bool
    permanent: bool = False
    error: str | None = None
    refused: tuple[str, ...] = ()


class Transport(Protocol):
    async def send(
        self,
        batch: Sequence[Envelope],
        on_result: ResultSink | None = None,
        stop: threading.Event | None = None,
    ) -> list[SendResult]: ...

    async def close(self) -> None: ...


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _open_maildir(path: Path) -> mailbox.Maildir:
    """Open the Maildir at `path`, creating it whole: a reader polling the folder never sees it without `cur/`."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        for sub in ("tmp", "new", "cur"):
            (staging / sub).mkdir()
        try:
            staging.rename(path)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not path.is_dir():
                raise
    return mailbox.Maildir(path, create=True)


class MaildirTransport:
    """Writes each message into a local Maildir (`new/`), created on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(
        self,
        batch: Sequence[Envelope],
        on_result: ResultSink | None = None,
        stop: threading.Event | None = None,
    ) -> list[SendResult]:
        results = []
        try:
            box = _open_maildir(self.path)
        except OSError as exc:
            box = None
            problem = f"maildir {self.path}: {exc.strerror}"
        for env in batch:
            if _stopped(stop):
                break
            if box is None:
                result = SendResult(env.delivery_id, False, False, problem)
            else:
                try:
                    box.add(env.data)
                    result = SendResult(env.delivery_id, True)
                except OSError as exc:
                    result = SendResult(env.delivery_id, False, False, f"maildir {self.path}: {exc.strerror}")
            results.append(result)
            if on_result:
                on_result(result)
        return results

    async def close(self) -> None:
        return None


class StdoutTransport:
    """Prints each message to standard output (useful for piping into another mailer or debugging)."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream = stream or sys.stdout.buffer

    async def send(
        self,
        batch: Sequence[Envelope],
        on_result: ResultSink | None = None,
        stop: threading.Event | None = None,
    ) -> list[SendResult]:
        results = []
        for env in batch:
            if _stopped(stop):
                break
            self.stream.write(env.data)
            self.stream.write(b"\n")
            self.stream.flush()
            result = SendResult(env.delivery_id, True)
            results.append(result)
            if on_result:
                on_result(result)
        return results

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------- SMTP


class SmtpSetupError(Exception):
    """The session could not be set up (connect, TLS, login); the message is safe to log."""


def classify(code: int) -> bool:
    """True when an SMTP reply code refuses for good (5xx); 4xx and anything odd are worth a retry."""
    return 500 <= code < 600


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def describe_setup_error(config: SmtpConfig, exc: BaseException) -> str:
    """One sentence on why an SMTP session could not be set up; never contains the password."""
    where = f"SMTP {config.host}:{config.port}"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        text = f"{where} refused the login for {config.username!r}: {_reply(exc.code, exc.message)}"
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{where} answered {_reply(exc.code, exc.message)}"
    elif isinstance(exc, aiosmtplib.SMTPException) and "STARTTLS" in str(exc):
        text = f'{where} does not offer STARTTLS, and security = "starttls" requires it; nothing was sent in the clear'
    elif isinstance(exc, ssl.SSLError):
        text = f"{where}: TLS failed: {exc}"
    elif isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        text = f"{where} did not answer within {config.timeout:g}s"
    elif isinstance(exc, SmtpSetupError):
        text = str(exc)
    elif isinstance(exc, aiosmtplib.SMTPException) and not isinstance(exc, ConnectionError):
        text = f"{where}: {exc}"
    else:
        text = f"cannot reach {where}: {type(exc).__name__}: {exc}"
    return _redact(text, config.password.get_secret_value())


class SmtpTransport:
    """A pool of up to `max_connections` reused aiosmtplib sessions, sending a batch concurrently.

    `security = "starttls"` or `"tls"` is enforced: a session without TLS in force is closed before any
    command that carries a password or a message. Each SMTP command is bounded by `timeout`.
    """

    def __init__(self, config: SmtpConfig, tls_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.tls_context = tls_context
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def connect(self) -> aiosmtplib.SMTP:
        """A fresh session: connected, TLS negotiated as configured, logged in; or SmtpSetupError."""
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            timeout=cfg.timeout,
            use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls",
            validate_certs=cfg.validate_certs,
            tls_context=self.tls_context,
        )
        try:
            await client.connect()
            if cfg.security != "none" and client.get_transport_info("sslcontext") is None:
                raise SmtpSetupError(f"SMTP {cfg.host}:{cfg.port}: TLS is not in force; refusing to continue")
            if cfg.username:
                await client.login(cfg.username, cfg.password.get_secret_value())
        except (aiosmtplib.SMTPException, OSError, SmtpSetupError) as exc:
            client.close()
            raise SmtpSetupError(describe_setup_error(cfg, exc)) from None
        return client

    async def _checkout(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, since = self._idle.pop()
            if not client.is_connected:
                continue
            if time.monotonic() - since < IDLE_CHECK_SECONDS:
                return client
            try:
                await client.noop()
                return client
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        return await self.connect()

    def _checkin(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected:
            self._idle.append((client, time.monotonic()))

    async def send(
        self,
        batch: Sequence[Envelope],
        on_result: ResultSink | None = None,
        stop: threading.Event | None = None,
    ) -> list[SendResult]:
        queue = deque(batch)
        results: dict[int, SendResult] = {}
        setup_errors: list[str] = []

        def done(result: SendResult) -> None:
            results[result.delivery_id] = result
            if on_result:
                on_result(result)

        async def worker() -> None:
            client: aiosmtplib.SMTP | None = None
            try:
                while queue and not _stopped(stop):
                    if client is None:
                        try:
                            client = await self._checkout()
                        except SmtpSetupError as exc:
                            setup_errors.append(str(exc))
                            return
                        if not queue or _stopped(stop):
                            break
                    env = queue.popleft()
                    result, healthy = await self._send_one(client, env)
                    done(result)
                    if not healthy:
                        client.close()
                        client = None
            finally:
                if client is not None:
                    self._checkin(client)

        workers = min(self.config.max_connections, len(batch))
        await asyncio.gather(*(worker() for _ in range(workers)))
        if queue and not _stopped(stop):
            problem = setup_errors[-1] if setup_errors else "not attempted: no SMTP session available"
            for env in queue:
                done(SendResult(env.delivery_id, False, False, problem))
        return [results[e.delivery_id] for e in batch if e.delivery_id in results]

    async def _send_one(self, client: aiosmtplib.SMTP, env: Envelope) -> tuple[SendResult, bool]:
        """Send one envelope on a session; the verdict and whether the session is still usable."""
        options = ["BODY=8BITMIME"] if _has_8bit(env.data) and client.supports_extension("8bitmime") else None
        rid = env.delivery_id
        try:
            errors, _ = await client.sendmail(env.sender, list(env.recipients), env.data, mail_options=options)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = "; ".join(f"{r.recipient}: {_reply(r.code, r.message)}" for r in exc.recipients)
            permanent = all(classify(r.code) for r in exc.recipients)
            return SendResult(rid, False, permanent, f"recipient refused: {refusals}"), True
        except aiosmtplib.SMTPResponseException as exc:
            return SendResult(rid, False, classify(exc.code), _reply(exc.code, exc.message)), exc.code != 421
        except aiosmtplib.SMTPTimeoutError:
            error = f"no answer within {self.config.timeout:g}s; will retry (the server may have taken it)"
            return SendResult(rid, False, False, error), False
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, OSError) as exc:
            return SendResult(rid, False, False, f"connection lost: {exc}"), False
        except (ValueError, UnicodeError, aiosmtplib.SMTPNotSupported) as exc:
            return SendResult(rid, False, True, f"cannot send to {env.recipient}: {exc}"), True
        except aiosmtplib.SMTPException as exc:
            return SendResult(rid, False, False, f"SMTP error: {exc}"), False
        if errors:
            refused = tuple(errors)
            detail = "; ".join(f"{r}: {_reply(resp.code, resp.message)}" for r, resp in errors.items())
            return SendResult(rid, True, False, f"accepted, but refused for {detail}", refused), True
        return SendResult(rid, True), True

    async def close(self) -> None:
        """QUIT every pooled session (bounded by the timeout), dropping any that do not answer."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def _has_8bit(data: bytes) -> bool:
    return not data.isascii()


def build_transport(settings: Settings) -> Transport:
    """The transport `[delivery] transport` names."""
    kind = settings.delivery.transport
    if kind == "maildir":
        return MaildirTransport(settings.delivery.maildir)
    if kind == "stdout":
        return StdoutTransport()
    return SmtpTransport(settings.smtp)


def check_smtp(config: SmtpConfig, tls_context: ssl.SSLContext | None = None) -> str | None:
    """Connect, negotiate TLS, authenticate and QUIT without sending; the problem as a sentence, or None."""

    async def _check() -> str | None:
        transport = SmtpTransport(config, tls_context)
        try:
            client = await transport.connect()
        except SmtpSetupError as exc:
            return str(exc)
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
        return None

    return asyncio.run(_check())
