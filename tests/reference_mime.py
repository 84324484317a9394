"""The reference message: a digest built with the `email` package from the same decided headers and bodies.

`Composer.build_bytes` writes MIME directly for speed; these tests hold it to this, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr
from typing import Any

from digest import mime
from digest.compose import Composer, DigestInfo, PaperView, address, boundary_for, headers_for, one_line


class _DigestPolicy(EmailPolicy):
    """The SMTP policy, except that URI-list headers keep each URI whole (see `mime.fold_uri_list`)."""

    def fold(self, name: str, value: Any) -> str:
        if name.lower() == "list-unsubscribe":
            return mime.fold_uri_list(name, re.findall(r"<([^<>]*)>", str(value)))
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() == "list-unsubscribe":
            return self.fold(name, value).encode("ascii")
        return bytes(super().fold_binary(name, value))


DIGEST_POLICY = _DigestPolicy(linesep="\r\n")


def reference_message(
    composer: Composer, info: DigestInfo, papers: list[PaperView], now: dt.datetime, omitted: int = 0
) -> EmailMessage:
    """The message for exactly these paper views, built with the `email` package."""
    text, html = composer.render(info, papers, omitted)
    h = headers_for(info, papers, now)
    msg = EmailMessage(policy=DIGEST_POLICY)
    from_name, from_email = parseaddr(one_line(h.from_addr))
    msg["From"] = address(from_name, from_email)
    msg["To"] = address(h.to_name, h.to_addr)
    msg["Subject"] = h.subject
    msg["Date"] = format_datetime(h.date)
    msg["Message-ID"] = h.message_id
    msg["List-Id"] = h.list_id
    if h.unsubscribe:
        msg["List-Unsubscribe"] = ", ".join(f"<{u}>" for u in h.unsubscribe)
    if h.one_click:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, cte=mime.transfer_encoding(text))
    msg.add_alternative(html, subtype="html", cte=mime.transfer_encoding(html))
    msg.set_boundary(boundary_for(h.message_id))
    return msg
