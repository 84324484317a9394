"""The operator's alert: one short email a day when sources fail or digests fail for good (`[delivery] operator`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr

from digest.compose import one_line

ALERT_KEY = "operator_alert_on"  # meta: the date the last alert went out


def alert_message(
    from_addr: str,
    operator: str,
    now: dt.datetime,
    failed_sources: Sequence[tuple[str, str]],
    failed_digests: int,
) -> bytes:
    """A plain-text alert naming what failed and what to run next; `failed_sources` are (name, error)."""
    problems = [f"- source {name} failed: {one_line(error)[:300]}" for name, error in failed_sources]
    if failed_digests:
        problems.append(f"- {failed_digests} digests failed for good (the SMTP server refused them)")
    msg = EmailMessage(policy=SMTP)
    msg["From"] = from_addr
    msg["To"] = operator
    msg["Subject"] = (
        f"digest needs attention: {len(problems)} problem{'s' if len(problems) != 1 else ''} on {now:%a %d %b}"
    )
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("digest-alert", parseaddr(from_addr)[1].rpartition("@")[2] or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        "The daily papers digest ran into trouble today:\n\n"
        + "\n".join(problems)
        + "\n\nReaders were told in their digest when a source was missing. `digest status` shows the state now,"
        "\n`digest history` the failed digests. This alert is sent at most once a day.\n"
    )
    return bytes(msg)
