"""The daily job: fetch → upsert → for each due subscriber select, rank, compose → record → send.

Every function takes the current time as a value (never reads the clock), so tests freeze or move it
and `digest preview` can build exactly what `digest send` would, inside a transaction it rolls back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr

import httpx
from sqlalchemy import Connection, Engine

from digest import store
from digest.compose import Composer
from digest.config import Settings, SubscriberConfig
from digest.deliver import Envelope, SendResult, Transport, build_transport
from digest.logs import event
from digest.models import DeliveryStatus
from digest.planner import (
    Planned,
    digest_info,
    interests_of,
    is_due,
    local_now,
    plan,
    plan_and_record,
    record,
)
from digest.sources import SourceError, SourceResult, build_source
from digest.sources.base import FetchContext
from digest.sources.http import USER_AGENT

log = logging.getLogger("digest.pipeline")

SEND_BATCH = 200


def utcnow() -> dt.datetime:
    """Aware UTC now: the one place the pipeline's callers read the clock."""
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------- fetch


@dataclass(slots=True)
class FetchReport:
    """What one source brought in one run."""

    source: str
    status: str
    counts: store.UpsertCounts = field(default_factory=store.UpsertCounts)
    rejected: int = 0
    seconds: float = 0.0
    error: str | None = None


def http_client(
    transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0
) -> httpx.AsyncClient:
    """The shared HTTP client; tests inject a transport (httpx.MockTransport) or point base_url at loopback."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    )


async def _fetch_all(
    settings: Settings,
    names: Sequence[str] | None,
    now: dt.datetime,
    client: httpx.AsyncClient | None,
    validators: dict[str, dict[str, tuple[str | None, str | None]]],
    on_done: Callable[[str], None] | None,
) -> list[tuple[str, SourceResult | Exception, float, dict[str, tuple[str | None, str | None]]]]:
    configs = [s for s in settings.sources if s.enabled and (names is None or s.name in names)]
    own_client = client is None
    http = client or http_client()

    async def one(
        config: object,
    ) -> tuple[str, SourceResult | Exception, float, dict[str, tuple[str | None, str | None]]]:
        source = build_source(config)  # type: ignore[arg-type]
        ctx = FetchContext(now=now, client=http, validators=dict(validators.get(source.name, {})))
        started = time.perf_counter()
        try:
            result: SourceResult | Exception = await source.fetch(ctx)
        except SourceError as exc:
            result = exc
        except (httpx.HTTPError, OSError, ValueError) as exc:
            result = SourceError(f"{type(exc).__name__}: {exc}")
        if on_done:
            on_done(source.name)
        return source.name, result, time.perf_counter() - started, ctx.validators

    try:
        return list(await asyncio.gather(*(one(c) for c in configs)))
    finally:
        if own_client:
            await http.aclose()


def store_fetched(
    conn: Connection, name: str, result: SourceResult | Exception, seconds: float, now: dt.datetime
) -> FetchReport:
    """Upsert one source's records and record its fetch_run; a failure records a failed run and nothing else."""
    run_id = store.start_fetch_run(conn, name, now)
    if isinstance(result, Exception):
        store.finish_fetch_run(conn, run_id, now, "failed", error=str(result))
        event(log, "fetch_failed", logging.WARNING, source=name, error=str(result))
        return FetchReport(name, "failed", seconds=seconds, error=str(result))
    for rejection in result.rejected[:20]:
        event(log, "item_rejected", logging.INFO, source=name, where=rejection.where, reason=rejection.reason)
    counts = store.upsert_records(conn, result.records, now)
    status = "not_modified" if result.not_modified else "ok"
    store.finish_fetch_run(conn, run_id, now, status, counts, rejected=len(result.rejected))
    event(
        log,
        "fetched",
        source=name,
        seen=counts.seen,
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged,
        rejected=len(result.rejected),
    )
    return FetchReport(name, status, counts, len(result.rejected), seconds)


def fetch_into(
    conn: Connection,
    settings: Settings,
    now: dt.datetime,
    names: Sequence[str] | None = None,
    client: httpx.AsyncClient | None = None,
    on_done: Callable[[str], None] | None = None,
) -> list[FetchReport]:
    """Fetch sources and store what they bring through one connection (the caller owns the transaction)."""
    validators = {s.name: store.load_validators(conn, s.name) for s in settings.sources}
    fetched = asyncio.run(_fetch_all(settings, names, now, client, validators, on_done))
    reports = []
    for name, result, seconds, new_validators in fetched:
        reports.append(store_fetched(conn, name, result, seconds, now))
        if not isinstance(result, Exception) and new_validators != validators.get(name, {}):
            store.save_validators(conn, name, new_validators, now)
    return reports


def fetch(
    engine: Engine,
    settings: Settings,
    now: dt.datetime,
    names: Sequence[str] | None = None,
    client: httpx.AsyncClient | None = None,
    on_done: Callable[[str], None] | None = None,
) -> list[FetchReport]:
    """Fetch sources concurrently, then store each one in its own transaction."""
    with engine.connect() as conn:
        validators = {s.name: store.load_validators(conn, s.name) for s in settings.sources}
    fetched = asyncio.run(_fetch_all(settings, names, now, client, validators, on_done))
    reports = []
    for name, result, seconds, new_validators in fetched:
        with engine.begin() as conn:
            reports.append(store_fetched(conn, name, result, seconds, now))
            if not isinstance(result, Exception) and new_validators != validators.get(name, {}):
                store.save_validators(conn, name, new_validators, now)
    return reports


# ---------------------------------------------------------------- plan (select, rank, compose): digest/planner.py

__all__ = [
    "Planned",
    "digest_info",
    "interests_of",
    "is_due",
    "local_now",
    "plan",
    "plan_and_record",
    "record",
]


# ---------------------------------------------------------------- send


@dataclass(slots=True)
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed


def backoff(settings: Settings, attempts: int, now: dt.datetime) -> dt.datetime:
    """When to try again after `attempts` failures: exponential with ±20 % jitter."""
    base = settings.delivery.retry_base_seconds * (2 ** max(attempts - 1, 0))
    return now + dt.timedelta(seconds=base * random.uniform(0.8, 1.2))


def outcome_for(settings: Settings, result: SendResult, attempts: int, now: dt.datetime) -> store.SendOutcome:
    """Map a transport verdict to the delivery's next status (attempts counts this one)."""
    if result.ok:
        return store.SendOutcome(result.delivery_id, DeliveryStatus.sent)
    if result.permanent or attempts >= settings.delivery.max_attempts:
        return store.SendOutcome(result.delivery_id, DeliveryStatus.failed, result.error)
    return store.SendOutcome(
        result.delivery_id, DeliveryStatus.pending, result.error, backoff(settings, attempts, now)
    )


async def send_pending(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    now: dt.datetime,
    only: Sequence[str] | None = None,
) -> SendReport:
    """Send every due pending delivery, oldest first, recording each batch's outcomes in one transaction."""
    report = SendReport()
    sender = parseaddr(settings.delivery.from_)[1]
    attempted: set[int] = set()
    while True:
        with engine.connect() as conn:
            batch = [
                o
                for o in store.due_pending(conn, now, limit=SEND_BATCH + len(attempted), subscribers=only)
                if o.id not in attempted
            ][:SEND_BATCH]
        if not batch:
            return report
        attempted.update(o.id for o in batch)
        results = await transport.send([Envelope(o.id, sender, o.subscriber, o.message) for o in batch])
        by_id = {o.id: o for o in batch}
        outcomes = [outcome_for(settings, r, by_id[r.delivery_id].attempts + 1, now) for r in results]
        with engine.begin() as conn:
            store.record_outcomes(conn, outcomes, now)
        for o in outcomes:
            status = o.status.value if o.status is not DeliveryStatus.pending else "retry"
            level = logging.INFO if o.status is DeliveryStatus.sent else logging.WARNING
            event(
                log, "send", level, subscriber=by_id[o.delivery_id].subscriber, status=status, error=o.error
            )
            if o.status is DeliveryStatus.sent:
                report.sent += 1
            elif o.status is DeliveryStatus.failed:
                report.failed += 1
            else:
                report.retrying += 1


# ---------------------------------------------------------------- the whole job


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
) -> RunReport:
    """One pass of the daily job; safe to repeat: a subscriber never gets a second digest for a date."""
    report = RunReport()
    if do_fetch and settings.sources:
        report.fetched = fetch(engine, settings, now, client=client)
        failed = [r.source for r in report.fetched if r.status == "failed"]
        if failed:
            event(log, "building_with_failed_sources", logging.WARNING, sources=",".join(failed))
    planned = plan_and_record(engine, settings, composer or Composer(), now, only=only, digest_date=digest_date)
    report.planned, report.built, report.skipped = planned.planned, planned.built, planned.skipped
    transport = transport or build_transport(settings)

    async def _send() -> SendReport:
        try:
            return await send_pending(engine, settings, transport, now, only=only)
        finally:
            await transport.close()

    report.sent = asyncio.run(_send())
    return report


def preview(
    engine: Engine,
    settings: Settings,
    email: str,
    now: dt.datetime,
    *,
    digest_date: dt.date | None = None,
    do_fetch: bool = True,
    client: httpx.AsyncClient | None = None,
) -> Planned:
    """Build one subscriber's digest exactly as `send` would, then roll everything back: nothing is recorded."""
    sub = settings.subscriber(email)
    day = digest_date or local_now(settings, sub, now).date()
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            if do_fetch and settings.sources:
                fetch_into(conn, settings, now, client=client)
            planned = plan(conn, settings, Composer(), now, only=[sub.email], digest_date=day)
            if not planned:
                planned = _replan_existing(conn, settings, sub, day, now)
        finally:
            trans.rollback()
    return planned[0]


def _replan_existing(
    conn: Connection, settings: Settings, sub: SubscriberConfig, day: dt.date, now: dt.datetime
) -> list[Planned]:
    """A digest already exists for that day: preview what it would be without it (inside the rolled-back txn)."""
    from sqlalchemy import delete

    ids = [d.id for d in store.history(conn, day, sub.email) if d.digest_date == day]
    conn.execute(delete(store.item_t).where(store.item_t.c.delivery_id.in_(ids)))
    conn.execute(delete(store.delivery_t).where(store.delivery_t.c.id.in_(ids)))
    return plan(conn, settings, Composer(), now, only=[sub.email], digest_date=day)
