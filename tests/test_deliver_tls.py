"""TLS and AUTH against aiosmtpd with a trustme test certificate: STARTTLS is required when chosen, implicit
TLS works, the password is used but never shown, and `digest check --smtp` reports what went wrong."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings, parse_config
from digest.deliver import Envelope, SendResult, SmtpTransport, check_smtp
from tests.smtpd_helpers import FaultHandler, PasswordCheck, smtp_server

PASSWORD = "s3cret-Pa55word!"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Trust the test CA the way an operator would: SSL_CERT_FILE (read by ssl.create_default_context)."""
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    yield


def config_text(port: int, security: str, password: str = PASSWORD) -> str:
    return f"""
database_url = "sqlite:///digest.db"
[delivery]
transport = "smtp"
from = "Papers <papers@example.org>"
[smtp]
host = "127.0.0.1"
port = {port}
security = "{security}"
username = "digest"
password = "{password}"
timeout = 5
[[subscribers]]
email = "ada@example.org"
"""


def settings(tmp_path: Path, port: int, security: str, password: str = PASSWORD) -> Settings:
    return parse_config(config_text(port, security, password), tmp_path / "digest.toml")


def send_one(s: Settings) -> SendResult:
    async def go() -> SendResult:
        transport = SmtpTransport(s.smtp)
        try:
            data = b"From: papers@example.org\r\nTo: ada@example.org\r\nSubject: x\r\nMessage-ID: <1@x>\r\n\r\nhi\r\n"
            return (await transport.send([Envelope(1, "papers@example.org", "ada@example.org", data)]))[0]
        finally:
            await transport.close()

    return asyncio.run(go())


def test_auth_over_starttls_with_a_test_certificate(tmp_path: Path, server_tls: ssl.SSLContext, trusted: None) -> None:
    handler = FaultHandler()
    auth = PasswordCheck("digest", PASSWORD)
    with smtp_server(handler, tls_context=server_tls, require_starttls=True, authenticator=auth) as port:
        result = send_one(settings(tmp_path, port, "starttls"))
        assert check_smtp(settings(tmp_path, port, "starttls").smtp) is None
    assert result.ok, result.error
    assert auth.attempts == ["digest", "digest"]
    assert len(handler.received) == 1


def test_implicit_tls(tmp_path: Path, server_tls: ssl.SSLContext, trusted: None) -> None:
    handler = FaultHandler()
    auth = PasswordCheck("digest", PASSWORD)
    with smtp_server(handler, implicit_tls=server_tls, authenticator=auth) as port:
        result = send_one(settings(tmp_path, port, "tls"))
    assert result.ok, result.error
    assert len(handler.received) == 1


def test_starttls_is_required_never_downgraded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    handler = FaultHandler()
    with smtp_server(handler) as port:  # a server that offers no STARTTLS at all
        result = send_one(settings(tmp_path, port, "starttls"))
        problem = check_smtp(settings(tmp_path, port, "starttls").smtp)
    assert not result.ok and not result.permanent
    assert "does not offer STARTTLS" in (result.error or "")
    assert problem is not None and "does not offer STARTTLS" in problem
    assert handler.data_commands == 0 and not handler.received


def test_untrusted_certificate_is_refused(tmp_path: Path, server_tls: ssl.SSLContext) -> None:
    handler = FaultHandler()
    with smtp_server(handler, tls_context=server_tls, require_starttls=True) as port:
        result = send_one(settings(tmp_path, port, "starttls"))
    assert not result.ok
    assert "TLS failed" in (result.error or "") and "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
    assert not handler.received


def test_wrong_password_is_reported_without_the_password(
    tmp_path: Path, server_tls: ssl.SSLContext, trusted: None, caplog: pytest.LogCaptureFixture
) -> None:
    handler = FaultHandler()
    auth = PasswordCheck("digest", "the-right-one")
    caplog.set_level(logging.DEBUG)
    with smtp_server(handler, tls_context=server_tls, require_starttls=True, authenticator=auth) as port:
        result = send_one(settings(tmp_path, port, "starttls"))
        config = tmp_path / "digest.toml"
        config.write_text(config_text(port, "starttls", PASSWORD))
        cli = CliRunner().invoke(app, ["--config", str(config), "-v", "check", "--smtp"])
    assert not result.ok and not result.permanent  # a login problem is not the message's fault
    assert "refused the login for 'digest': 535" in (result.error or "")
    assert cli.exit_code == 1
    assert "refused the login" in cli.output
    for text in (result.error or "", cli.output, cli.stderr, caplog.text):
        assert PASSWORD not in text
    assert not handler.received


def test_check_smtp_cli_ok(tmp_path: Path, server_tls: ssl.SSLContext, trusted: None) -> None:
    handler = FaultHandler()
    auth = PasswordCheck("digest", PASSWORD)
    with smtp_server(handler, tls_context=server_tls, require_starttls=True, authenticator=auth) as port:
        config = tmp_path / "digest.toml"
        config.write_text(config_text(port, "starttls"))
        cli = CliRunner().invoke(app, ["--config", str(config), "check", "--smtp"])
    assert cli.exit_code == 0, cli.output
    assert f"smtp: 127.0.0.1:{port} ok (starttls, logged in as digest)" in cli.output
    assert PASSWORD not in cli.output
    assert handler.data_commands == 0
