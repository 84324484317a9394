"""A real aiosmtpd server on loopback that records what it accepts and injects faults per recipient."""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# What a recipient address triggers (set in FaultHandler.faults):
#   "451"      DATA answered 451 (temporary)       "550"      DATA answered 550 (permanent)
#   "drop"     connection closed after the data, before any reply
#   "slow"     DATA answered only after `slow_seconds` (past the client's timeout)
#   "rcpt550"  RCPT refused with 550                "rcpt451"  RCPT refused with 451


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message_id(self) -> str:
        return str(email.message_from_bytes(self.data)["Message-ID"])


@dataclass
class FaultHandler:
    """aiosmtpd handler: records accepted messages; faults keyed by recipient address."""

    faults: dict[str, str] = field(default_factory=dict)
    slow_seconds: float = 3.0
    received: list[Received] = field(default_factory=list)
    data_commands: int = 0
    on_data: Callable[[int], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        kind = self.faults.get(address)
        if kind == "rcpt550":
            return f"550 5.1.1 <{address}>: no such user"
        if kind == "rcpt451":
            return f"451 4.2.1 <{address}>: mailbox busy"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data_commands += 1
        kinds = {self.faults.get(r) for r in envelope.rcpt_tos}
        if "451" in kinds:
            return "451 4.3.0 temporary local problem, try later"
        if "550" in kinds:
            return "550 5.7.1 message refused by policy"
        if "drop" in kinds:
            server.transport.abort()
            return "250 2.0.0 never seen by the client"
        if "slow" in kinds:
            await asyncio.sleep(self.slow_seconds)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
            count = len(self.received)
        if self.on_data:
            self.on_data(count)
        return "250 2.0.0 OK queued"

    def by_recipient(self) -> dict[str, list[Received]]:
        out: dict[str, list[Received]] = {}
        with self.lock:
            for msg in self.received:
                for rcpt in msg.recipients:
                    out.setdefault(rcpt, []).append(msg)
        return out


class PasswordCheck:
    """aiosmtpd authenticator accepting exactly one login."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.attempts: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        self.attempts.append(login)
        ok = login == self.username and auth_data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(
    handler: FaultHandler,
    *,
    tls_context: ssl.SSLContext | None = None,
    require_starttls: bool = False,
    implicit_tls: ssl.SSLContext | None = None,
    authenticator: PasswordCheck | None = None,
) -> Iterator[int]:
    """Run aiosmtpd on 127.0.0.1 at a free port for the duration; yields the port."""
    port = free_port()
    kwargs: dict[str, Any] = {}
    if tls_context is not None:
        kwargs.update(tls_context=tls_context, require_starttls=require_starttls)
    if authenticator is not None:
        # aiosmtpd only counts STARTTLS as TLS for AUTH; with implicit TLS the session is encrypted anyway.
        kwargs.update(authenticator=authenticator, auth_require_tls=implicit_tls is None)
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        ssl_context=implicit_tls,
        ready_timeout=10,
        **kwargs,
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
