"""Is the digest healthy? What `digest status` shows, and what needs an operator's attention.

Attention means: a source failing for more than a day, digests that failed for good in the last day, or a
due digest waiting for more than an hour. Plain values in, a plain report out; the store is read by the
caller (`read_health`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from digest import store
from digest.config import WEEKDAYS, Settings
from digest.selection import is_due, local_now

SOURCE_GRACE = dt.timedelta(days=1)
PENDING_GRACE = dt.timedelta(hours=1)
SOURCE_LABELS = {"hf_daily": "Hugging Face Daily Papers", "arxiv": "arXiv"}


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    label: str
    status: str  # the latest fetch's: ok, not_modified, failed, running; "never" when never fetched
    fetched_at: dt.datetime | None
    last_ok: dt.datetime | None
    seen: int = 0
    new: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class NextDue:
    """The next moment readers become due (UTC), and how many; `now` counts readers due and not planned."""

    due_now: int
    next_at: dt.datetime | None
    next_count: int


@dataclass(slots=True)
class Health:
    checked_at: dt.datetime
    sources: list[SourceStatus]
    outbox: store.OutboxState
    next_due: NextDue
    database_bytes: int | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def source_label(settings: Settings, name: str) -> str:
    """How a reader knows a source: Hugging Face and arXiv by those names, others by their config name."""
    for source in settings.sources:
        if source.name == name:
            return SOURCE_LABELS.get(source.type, name)
    return name


def short_error(error: str | None) -> str:
    """`HTTP 429`, `timed out`…: what a reader or an operator needs of an error, in a few words."""
    if not error:
        return "unknown error"
    match = re.search(r"HTTP (\d{3})", error) or re.search(r"\b([45]\d\d)\b", error)
    if match:
        return f"HTTP {match.group(1)}"
    for words, short in (("timed out", "timed out"), ("timeout", "timed out"), ("connect", "no connection")):
        if words in error.lower():
            return short
    return error if len(error) <= 60 else error[:57].rstrip() + "…"


def outage_notices(settings: Settings, runs: dict[str, store.SourceHealth]) -> tuple[str, ...]:
    """One line for each enabled source whose latest fetch failed, for the digests built now: readers are
    told why a source is missing, and that its papers come in the next digest (they are first seen then)."""
    notices = []
    for config in settings.sources:
        seen = runs.get(config.name)
        if config.enabled and seen is not None and seen.latest.status == "failed":
            notices.append(
                f"{source_label(settings, config.name)} could not be reached today "
                f"({short_error(seen.latest.error)}); its papers will come in the next digest."
            )
    return tuple(notices)


def next_due(settings: Settings, now: dt.datetime, planned_today: set[str]) -> NextDue:
    """Readers due now without today's digest, and the next send time within a day and how many share it."""
    due_now = 0
    upcoming: dict[dt.datetime, int] = {}
    for sub in settings.subscribers:
        if is_due(settings, sub, now) and sub.email not in planned_today:
            due_now += 1
        local = local_now(settings, sub, now)
        for days in (0, 1):
            day = local.date() + dt.timedelta(days=days)
            if sub.days and WEEKDAYS[day.weekday()] not in sub.days:
                continue
            at = dt.datetime.combine(day, settings.send_time(sub), local.tzinfo).astimezone(dt.UTC)
            if now < at <= now + dt.timedelta(days=1):
                upcoming[at] = upcoming.get(at, 0) + 1
                break
    first = min(upcoming, default=None)
    return NextDue(due_now, first, upcoming.get(first, 0) if first else 0)


def assess(
    settings: Settings,
    now: dt.datetime,
    runs: dict[str, store.SourceHealth],
    outbox: store.OutboxState,
    due: NextDue,
    size: int | None,
) -> Health:
    """The health report, with a sentence for each thing that needs attention."""
    sources: list[SourceStatus] = []
    problems: list[str] = []
    for config in settings.sources:
        if not config.enabled:
            continue
        seen = runs.get(config.name)
        label = source_label(settings, config.name)
        if seen is None:
            sources.append(SourceStatus(config.name, label, "never", None, None))
            continue
        run = seen.latest
        sources.append(
            SourceStatus(config.name, label, run.status, run.started_at, seen.last_ok, run.seen, run.new, run.error)
        )
        since = seen.last_ok or run.started_at
        if run.status == "failed" and now - since > SOURCE_GRACE:
            problems.append(
                f"source {config.name} has failed since {since:%Y-%m-%d %H:%M} UTC ({short_error(run.error)})"
            )
    if outbox.failed_last_day:
        problems.append(f"{outbox.failed_last_day} digests failed for good in the last day (see digest history)")
    if outbox.oldest_due is not None and now - outbox.oldest_due > PENDING_GRACE:
        waited = now - outbox.oldest_due
        problems.append(
            f"{outbox.due} digests wait to be sent, the oldest for {waited.total_seconds() / 3600:.1f} h "
            "(is a sender running, and the SMTP server reachable?)"
        )
    return Health(now, sources, outbox, due, size, problems)


def read_health(engine: Engine, settings: Settings, now: dt.datetime) -> Health:
    """Read what `assess` needs from the database, in one short transaction."""
    with engine.connect() as conn:
        runs = store.source_health(conn)
        outbox = store.outbox_state(conn, now)
        planned = _planned_today(conn, settings, now)
    return assess(settings, now, runs, outbox, next_due(settings, now, planned), store.database_size(engine))


def _planned_today(conn: Connection, settings: Settings, now: dt.datetime) -> set[str]:
    days = {local_now(settings, sub, now).date() for sub in settings.subscribers}
    return {email for day in days for email in store.deliveries_on(conn, day)}
