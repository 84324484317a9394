"""The daily job, orchestrated: fetch → plan (select, rank, compose, record) → send, and its previews.

Every function takes the current time as a value (never reads the clock), so tests freeze or move it
and `digest preview` can build exactly what `digest send` would, inside a transaction it rolls back.
The steps live in `fetching`, `planner` and `sending`; this module only runs them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr

import httpx
from sqlalchemy import Connection, Engine

from digest import runlock, store
from digest.alerts import ALERT_KEY, alert_message
from digest.clock import utcnow
from digest.compose import Composer
from digest.config import Settings
from digest.deliver import Envelope, Transport, build_transport
from digest.fetching import FetchReport, fetch, fetch_into
from digest.health import outage_notices
from digest.links import signer_of
from digest.logs import event
from digest.planner import Planned, plan, plan_and_record
from digest.selection import digest_info, local_now
from digest.sending import SendReport, send_pending

log = logging.getLogger("digest.pipeline")

__all__ = ["Preview", "PruneReport", "RunReport", "dry_run", "preview", "prune", "rolled_back", "run_once", "utcnow"]


@dataclass(slots=True)
class RunReport:
    fetched: list[FetchReport] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)  # the first planner.KEEP_PLANNED; counts cover all
    sent: SendReport = field(default_factory=SendReport)
    built: int = 0
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return self.sent.failed == 0 and self.sent.retrying == 0


def run_once(
    engine: Engine,
    settings: Settings,
    now: dt.datetime,
    *,
    do_fetch: bool = True,
    only: Sequence[str] | None = None,
    digest_date: dt.date | None = None,
    transport: Transport | None = None,
    client: httpx.AsyncClient | None = None,
    composer: Composer | None = None,
    stop: threading.Event | None = None,
    plan_wait: bool = True,
) -> RunReport:
    """One pass of the daily job; safe to repeat: a subscriber never gets a second digest for a date.

    A set `stop` (SIGINT/SIGTERM) skips what has not started and lets the messages in flight finish.
    Fetch and plan hold `runlock.planning_lock` (PostgreSQL: one planner at a time); with `plan_wait`
    false, a pass that finds another process planning skips straight to sending.
    """
    report = RunReport()
    if stop and stop.is_set():
        return report
    with runlock.planning_lock(engine, wait=plan_wait) as planning:
        if not planning:
            event(log, "planning_skipped", reason="another process is fetching and planning now")
        if planning and do_fetch and settings.sources:
            report.fetched = fetch(engine, settings, now, client=client)
            failed = [r.source for r in report.fetched if r.status == "failed"]
            if failed:
                event(log, "building_with_failed_sources", logging.WARNING, sources=",".join(failed))
        if planning:
            planned = plan_and_record(engine, settings, composer or Composer(), now, only=only, digest_date=digest_date)
            report.planned, report.built, report.skipped = planned.planned, planned.built, planned.skipped
    if stop and stop.is_set():
        return report
    transport = transport or build_transport(settings)

    async def _send() -> SendReport:
        try:
            sent = await send_pending(engine, settings, transport, now, only=only, stop=stop, clock=utcnow)
            await _alert_operator(engine, settings, transport, now, report.fetched, sent.failed)
            return sent
        finally:
            await transport.close()

    report.sent = asyncio.run(_send())
    _log_run(report)
    return report


async def _alert_operator(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    now: dt.datetime,
    fetched: Sequence[FetchReport],
    failed_digests: int,
) -> None:
    """`[delivery] operator`: one alert a day when sources failed or digests failed for good in this run."""
    operator = settings.delivery.operator
    failed_sources = [(r.source, r.error or "failed") for r in fetched if r.status == "failed"]
    if not operator or not (failed_sources or failed_digests):
        return
    today = now.date().isoformat()
    with engine.connect() as conn:
        if store.get_meta(conn, ALERT_KEY) == today:
            return
    data = alert_message(settings.delivery.from_, operator, now, failed_sources, failed_digests)
    sender = parseaddr(settings.delivery.from_)[1]
    (result,) = await transport.send([Envelope(0, sender, operator, data)])
    if result.ok:
        with engine.begin() as conn:
            store.put_meta(conn, ALERT_KEY, today)
    event(log, "operator_alerted", logging.WARNING, ok=result.ok, error=result.error)


def _log_run(report: RunReport) -> None:
    """The operator's line per run: what was fetched, built and sent (DEBUG when the run did nothing)."""
    sent = report.sent
    busy = report.fetched or report.built or report.skipped or sent.sent or sent.retrying or sent.failed
    level = logging.WARNING if not report.ok else logging.INFO if busy else logging.DEBUG
    failed_sources = [r.source for r in report.fetched if r.status == "failed"]
    event(
        log,
        "run",
        level,
        sources=len(report.fetched),
        sources_failed=",".join(failed_sources) or None,
        built=report.built,
        skipped=report.skipped,
        sent=sent.sent,
        retrying=sent.retrying,
        failed=sent.failed,
    )


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What retention dropped: message bodies, and the bytes handed back to the file system."""

    messages: int
    freed_bytes: int
    before: dt.datetime


def prune(engine: Engine, settings: Settings, now: dt.datetime, *, full_vacuum: bool = False) -> PruneReport:
    """Apply `[delivery] keep_message_days`: drop the bytes of digests done with for that long (rows stay) and
    the compression dictionaries no stored message needs any more, then hand the space back (SQLite:
    incremental vacuum, or a whole `VACUUM` when asked)."""
    before = now - dt.timedelta(days=settings.delivery.keep_message_days)
    with engine.begin() as conn:
        dropped = store.prune_messages(conn, before)
        store.drop_unused_dictionaries(conn, before)
    if full_vacuum:
        size = store.database_size(engine) or 0
        store.vacuum(engine)
        freed = max(size - (store.database_size(engine) or 0), 0)
    else:
        freed = store.reclaim_space(engine)
    event(log, "pruned", messages=dropped, freed_mb=round(freed / 1e6, 1), before=before.date().isoformat())
    return PruneReport(dropped, freed, before)


@contextlib.contextmanager
def rolled_back(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is always rolled back: previews run the real job in it."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


@dataclass(slots=True)
class Preview:
    """One subscriber's digest as `send` would build it: the exact message bytes, and whether `send` would
    skip it (nothing matched and `send_empty` is off; `data` is then the "nothing matched" note)."""

    planned: Planned
    data: bytes
    skipped: bool


def preview(
    engine: Engine,
    settings: Settings,
    email: str,
    now: dt.datetime,
    *,
    digest_date: dt.date | None = None,
    do_fetch: bool = True,
    client: httpx.AsyncClient | None = None,
    composer: Composer | None = None,
) -> Preview:
    """Build one subscriber's digest exactly as `send` would, then roll everything back: nothing is recorded.

    A digest already stored for that day is previewed as it would be built now, without it."""
    sub = settings.subscriber(email)
    day = digest_date or local_now(settings, sub, now).date()
    composer = composer or Composer()
    signer = signer_of(settings, engine)
    with rolled_back(engine) as conn:
        if do_fetch and settings.sources:
            fetch_into(conn, settings, now, client=client)
        planned: list[Planned] = []
        for attempt in range(2):
            if attempt:  # a digest is stored for that day: show what it would be now, without it
                store.delete_deliveries(conn, sub.email, day)
            planned = plan(
                conn, settings, composer, now, only=[sub.email], digest_date=day, signer=signer, include_inactive=True
            )
            if planned:
                break
        notices = outage_notices(settings, store.source_health(conn))
    first = planned[0]
    if first.data is not None:
        return Preview(first, first.data, skipped=False)
    info = digest_info(settings, first.subscriber, first.digest_date, signer, notices)
    return Preview(first, composer.fit(info, [], now).data, skipped=True)


def dry_run(
    engine: Engine,
    settings: Settings,
    now: dt.datetime,
    *,
    do_fetch: bool = True,
    only: Sequence[str] | None = None,
    digest_date: dt.date | None = None,
    client: httpx.AsyncClient | None = None,
) -> list[Planned]:
    """`send --dry-run`: every digest `send` would build now, built then rolled back; nothing is sent."""
    signer = signer_of(settings, engine)
    with rolled_back(engine) as conn:
        if do_fetch and settings.sources:
            fetch_into(conn, settings, now, client=client)
        return plan(conn, settings, Composer(), now, only=only, digest_date=digest_date, signer=signer)
