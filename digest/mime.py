"""Serialise a text + HTML multipart/alternative message straight to bytes, as the `email` package would.

Building an `EmailMessage` and flattening it costs milliseconds (header objects are parsed and refolded);
a digest run does that a hundred thousand times. Here the common header shapes (plain ASCII words, simple
addresses) are folded directly, everything else goes through the `email` package's own folding (cached
where values repeat), and bodies are encoded once with the package's own rules. Tests check the output
byte for byte against `EmailMessage` on hostile inputs.
"""

from __future__ import annotations

import quopri
import re
from collections.abc import Sequence
from email import quoprimime
from email.headerregistry import Address
from email.policy import SMTP
from functools import lru_cache
from urllib.parse import quote

CRLF = "\r\n"
MAX_LINE: int = SMTP.max_line_length or 78
_PLAIN_WORDS = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*\Z")
_SIMPLE_NAME = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*\Z")
_SIMPLE_ADDR = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\Z")
_MSG_ID = re.compile(r"<[A-Za-z0-9._-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>\Z")
_BOUNDARY_STANDIN = "0" * 24
_QP_SAFE = re.compile(rb"[\x20-\x3c\x3e-\x7e]*")


@lru_cache(maxsize=32768)
def fold_slow(name: str, value: str) -> str:
    """One header line (CRLF-terminated) exactly as `EmailMessage` with the SMTP policy writes it."""
    return str(SMTP.header_factory(name, value).fold(policy=SMTP))


def fold_unstructured(name: str, value: str) -> str:
    """A free-text header, folded like the email package does for plain ASCII words (the whole value on the
    next line when it fits there, else greedily at spaces); anything else goes to the email package."""
    if "=?" not in value and _PLAIN_WORDS.match(value):
        if len(name) + 2 + len(value) <= MAX_LINE:
            return f"{name}: {value}{CRLF}"
        if len(value) + 1 <= MAX_LINE:
            return f"{name}:{CRLF} {value}{CRLF}"
        words = value.split(" ")
        if max(map(len, words)) < MAX_LINE:
            lines: list[str] = []
            line = name + ":"
            for word in words:
                if len(line) + 1 + len(word) <= MAX_LINE:
                    line += " " + word
                else:
                    lines.append(line)
                    line = " " + word
            lines.append(line)
            return CRLF.join(lines) + CRLF
    return fold_slow(name, value)


def fold_address(name: str, display_name: str, addr_spec: str) -> str:
    """An address header for one mailbox (display name quoted or RFC 2047-encoded by the email package).

    A plain name and address are written directly; for any other name with a plain address, the email
    package folds the name once with a stand-in address of the same length, which is then swapped in.
    """
    if _SIMPLE_ADDR.match(addr_spec):
        if not display_name or _SIMPLE_NAME.match(display_name):
            line = f"{name}: {display_name} <{addr_spec}>" if display_name else f"{name}: {addr_spec}"
            if len(line) <= MAX_LINE:
                return line + CRLF
        local, _, domain = addr_spec.partition("@")
        standin = "a" * len(local) + "@" + domain
        before, found, after = _fold_mailbox(name, display_name, standin).rpartition(standin)
        if found:
            return before + addr_spec + after
    return _fold_mailbox(name, display_name, addr_spec)


@lru_cache(maxsize=4096)
def _fold_mailbox(name: str, display_name: str, addr_spec: str) -> str:
    try:
        value: Address | str = Address(display_name=display_name, addr_spec=addr_spec)
    except (ValueError, IndexError):
        value = addr_spec
    return str(SMTP.header_factory(name, value).fold(policy=SMTP))


MAX_HEADER_LINE = 998
_URI_SAFE = "!#$%&'()*+,-./:;=?@[]~_"


def fold_uri_list(name: str, uris: Sequence[str]) -> str:
    """A header of angle-bracketed URIs (RFC 2369 `List-Unsubscribe`), each kept whole on its own line.

    The email package would fold a URI longer than a line into RFC 2047 encoded words, which mail
    clients do not decode inside a URI: one-click unsubscribe then breaks. Non-ASCII and spaces are
    percent-encoded; only a URI over 998 octets is split, at whitespace the RFC tells clients to ignore.
    """
    parts = [f"<{quote(uri, safe=_URI_SAFE)}>" for uri in uris]
    line = f"{name}: {', '.join(parts)}"
    if len(line) <= MAX_LINE:
        return line + CRLF
    width = MAX_HEADER_LINE - 2
    pieces = [CRLF.join(" " + part[at : at + width] for at in range(0, len(part), width)) for part in parts]
    return f"{name}:{CRLF}" + f",{CRLF}".join(pieces) + CRLF


def fold_message_id(value: str) -> str:
    line = f"Message-ID: {value}"
    if len(line) <= MAX_LINE and _MSG_ID.match(value):
        return line + CRLF
    return fold_slow("Message-ID", value)


def multipart_content_type(boundary: str) -> str:
    """`Content-Type: multipart/alternative; boundary=…` for a 24-hex-digit boundary suffix (one fold, reused)."""
    prefix, _, digits = boundary.rpartition("-")
    if len(digits) == 24 and all(c in "0123456789abcdef" for c in digits):
        template = fold_slow("Content-Type", f'multipart/alternative; boundary="{prefix}-{_BOUNDARY_STANDIN}"')
        return template.replace(_BOUNDARY_STANDIN, digits)
    return fold_slow("Content-Type", f'multipart/alternative; boundary="{boundary}"')


def transfer_encoding(body: str) -> str:
    """7bit when the body is ASCII with lines within RFC 5322's 998 octets (no encoding overhead), else QP.
    Lines are what `encode_body` ends with CRLF: split at CR, LF or CRLF only (a form feed breaks no line)."""
    if not body.isascii():
        return "quoted-printable"
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    return "7bit" if max(map(len, body.split("\n"))) <= 998 else "quoted-printable"


def encode_body(body: str, cte: str) -> bytes:
    """A text body as the email package's `set_content(..., cte=cte)` stores it, with CRLF line ends."""
    data = body.encode("utf-8")
    if cte == "7bit":
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not data.endswith(b"\n"):
            data += b"\n"
        return data.replace(b"\n", b"\r\n")
    lines = data.splitlines()
    if cte == "quoted-printable":
        if not lines:
            return b"\r\n"
        cache = _QP_LINES
        if len(cache) > _QP_LINES_MAX:
            cache.clear()
        out = []
        for line in lines:
            encoded = cache.get(line)
            if encoded is None:
                encoded = _qp_line(line)
                if len(line) <= _SHARED_LINE:
                    cache[line] = encoded
            out.append(encoded)
        return b"".join(out)
    raise ValueError(f"unsupported transfer encoding {cte!r}")


_QP_LINES: dict[bytes, bytes] = {}  # digests share most lines (papers' blocks): encode each line once
_QP_LINES_MAX = 50_000
# wrapped text is at most 78 columns (two more than quoted-printable's lines, so those are soft-broken every time
# unless cached); longer lines are mostly one reader's own links, left out to keep the cache for shared ones
_SHARED_LINE = 80


def _qp_line(line: bytes) -> bytes:
    """One body line quoted-printable encoded with its CRLF, as `quoprimime.body_encode` does per line:
    a line of safe ASCII (no `=`, no trailing blank) is its own encoding, soft-broken when it is long (a
    reader's own link, say), every piece but the last one character short of the limit."""
    if _QP_SAFE.fullmatch(line) and not line.endswith(b" "):
        if len(line) <= MAX_LINE:
            return line + b"\r\n"
        step, pieces, start = MAX_LINE - 1, [], 0
        while len(line) - start > MAX_LINE:
            pieces.append(line[start : start + step])
            start += step
        pieces.append(line[start:])
        return b"=\r\n".join(pieces) + b"\r\n"
    return _qp_encoded(line)


@lru_cache(maxsize=8192)
def _qp_encoded(line: bytes) -> bytes:
    return quoprimime.body_encode(line.decode("latin-1") + "\n", MAX_LINE).replace("\n", CRLF).encode("ascii")


def _plain_7bit(body: str) -> bytes | None:
    """`encode_body(body, "7bit")` when that is `body`'s transfer encoding and it has no CR, else None: one
    split serves both the line-length check and the CRLF line ends."""
    if not body.isascii() or "\r" in body:
        return None
    lines = body.encode("ascii").split(b"\n")
    if max(map(len, lines)) > MAX_HEADER_LINE:
        return None
    if not lines[-1]:
        lines.pop()
    return b"\r\n".join(lines) + b"\r\n"


def alternative(headers: Sequence[str], boundary: str, text: str, html: str) -> bytes:
    """headers (folded lines) + multipart/alternative of the text and HTML bodies, byte-identical to
    `EmailMessage.set_content(text, cte=…)`, `add_alternative(html, subtype="html", cte=…)`, `set_boundary`."""
    text_cte = transfer_encoding(text)
    html_body = _plain_7bit(html)  # the usual HTML part (non-ASCII was written as character references)
    html_cte = "7bit" if html_body is not None else transfer_encoding(html)
    head = "".join(headers) + "MIME-Version: 1.0\r\n" + multipart_content_type(boundary) + CRLF
    delimiter = f"--{boundary}\r\n".encode()
    return b"".join(
        (
            head.encode("ascii", "surrogateescape"),
            delimiter,
            f'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: {text_cte}\r\n\r\n'.encode(),
            encode_body(text, text_cte),
            b"\r\n",
            delimiter,
            f'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: {html_cte}\r\n'.encode(),
            b"MIME-Version: 1.0\r\n\r\n",
            html_body if html_body is not None else encode_body(html, html_cte),
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )


def html_part(data: bytes) -> str | None:
    """The HTML body of a message `alternative` wrote, decoded; None when the bytes are not of that shape
    (then parse them with the `email` package). A stored digest is shown online without a full MIME parse."""
    marker = b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: '
    start = data.find(marker)
    if start < 0:
        return None
    cte_end = data.find(b"\r\n", start + len(marker))
    cte = data[start + len(marker) : cte_end]
    body_start = data.find(b"\r\n\r\n", cte_end)
    close = data.rfind(b"\r\n--")
    if body_start < 0 or close <= body_start:
        return None
    body = data[body_start + 4 : close]
    if cte == b"7bit":
        return body.decode("utf-8")
    if cte == b"quoted-printable":
        return quopri.decodestring(body.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n").decode("utf-8")
    return None
