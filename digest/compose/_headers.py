"""The headers of a digest, decided once (`headers_for`) and folded into bytes (`header_lines`).

Values are single lines (no CR/LF ever reaches a header); Message-ID and the MIME boundary derive from
the subscriber, date and sender, so a resend carries the same bytes. `List-Unsubscribe` keeps each URI
whole on its own folded line (RFC 2047 encoded words would break one-click unsubscribe in clients).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from urllib.parse import quote

from digest import mime
from digest.compose._views import DigestInfo, PaperView, one_line, subject_for


@dataclass(frozen=True, slots=True)
class Headers:
    """Every header of one digest, as plain values: what `header_lines` folds into the bytes we send (and
    what the tests' reference builder hands to the `email` package, byte for byte the same)."""

    from_addr: str
    to_name: str
    to_addr: str
    subject: str
    date: dt.datetime
    message_id: str
    list_id: str
    unsubscribe: tuple[str, ...]
    one_click: bool


def headers_for(info: DigestInfo, papers: Sequence[PaperView], now: dt.datetime) -> Headers:
    """The headers of the digest `info` showing `papers`, sent at `now`."""
    return Headers(
        from_addr=info.from_addr,
        to_name=info.subscriber_name,
        to_addr=info.subscriber_email,
        subject=subject_for(info.digest_date, papers),
        date=now if now.tzinfo else now.replace(tzinfo=dt.UTC),
        message_id=message_id(info.subscriber_email, info.digest_date, info.from_addr),
        list_id=list_id(info.from_addr),
        unsubscribe=tuple(u for u in (info.unsubscribe_mailto, info.unsubscribe_url) if u),
        one_click=bool(info.unsubscribe_url),
    )


def header_lines(h: Headers) -> list[str]:
    """The headers folded as the `email` package's SMTP policy would, each ending in CRLF."""
    lines = [
        _from_line(h.from_addr),
        _to_line(h.to_name, h.to_addr),
        mime.fold_unstructured("Subject", h.subject),
        _date_line(h.date),
        mime.fold_message_id(h.message_id),
        _list_id_line(h.list_id),
    ]
    if h.unsubscribe:
        lines.append(mime.fold_uri_list("List-Unsubscribe", h.unsubscribe))
    if h.one_click:
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    lines.append("Auto-Submitted: auto-generated\r\n")
    return lines


def message_id(subscriber: str, digest_date: dt.date, from_addr: str) -> str:
    """Deterministic per subscriber, date and sender domain, so a resend carries the same Message-ID."""
    domain = _domain(from_addr)
    digest = hashlib.sha256(subscriber.strip().lower().encode()).hexdigest()[:16]
    return f"<digest-{digest_date.isoformat()}.{digest}@{domain}>"


def unsubscribe_token(subscriber: str, secret: str) -> str:
    """HMAC-SHA256 of the lower-cased address: proves an unsubscribe link was issued by us."""
    return hmac.digest(secret.encode(), subscriber.strip().lower().encode(), "sha256").hex()[:32]


def address(name: str, addr_spec: str) -> Address | str:
    """A header address whose display name is quoted or RFC 2047-encoded as needed (`;`, `,`, non-ASCII…)."""
    name, addr_spec = one_line(name), one_line(addr_spec).replace(" ", "")
    try:
        return Address(display_name=name, addr_spec=addr_spec)
    except (ValueError, IndexError):
        return addr_spec


@lru_cache(maxsize=64)
def _domain(from_addr: str) -> str:
    return one_line(parseaddr(from_addr)[1].rpartition("@")[2]).replace(" ", "") or "localhost"


@lru_cache(maxsize=64)
def list_id(from_addr: str) -> str:
    """`Daily papers digest <digest.example.org>`: one list per sending domain."""
    return f"Daily papers digest <digest.{_domain(from_addr)}>"


def boundary_for(message_id: str) -> str:
    """The MIME boundary: derived from the Message-ID, so a message's bytes are the same every time."""
    return "==digest-" + hashlib.sha256(message_id.encode()).hexdigest()[:24]


@lru_cache(maxsize=64)
def _from_line(from_addr: str) -> str:
    name, addr = parseaddr(one_line(from_addr))
    return str(SMTP.header_factory("From", address(name, addr)).fold(policy=SMTP))


def _to_line(name: str, addr: str) -> str:
    return mime.fold_address("To", one_line(name), one_line(addr).replace(" ", ""))


@lru_cache(maxsize=64)
def _date_line(now: dt.datetime) -> str:
    return mime.fold_slow("Date", format_datetime(now))


@lru_cache(maxsize=64)
def _list_id_line(value: str) -> str:
    return mime.fold_unstructured("List-Id", value)


@lru_cache(maxsize=64)
def _sender(from_addr: str) -> str:
    return one_line(parseaddr(from_addr)[1]).replace(" ", "")


def unsubscribe_links(subscriber: str, from_addr: str, url_template: str, secret: str) -> tuple[str | None, str]:
    """(https one-click URL or None, mailto) for the List-Unsubscribe header and the footer."""
    sender = _sender(from_addr)
    mailto = f"mailto:{sender}?subject={quote('unsubscribe ' + subscriber)}"
    if not url_template:
        return None, mailto
    token = unsubscribe_token(subscriber, secret)
    url = url_template.replace("{email}", quote(subscriber, safe="")).replace("{token}", token)
    return url, mailto
