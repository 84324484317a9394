"""The daily job: fetch → upsert → for each due subscriber select, rank, compose → record → send.

Every function takes the current time as a value (never reads the clock), so tests freeze or move it
and `digest preview` can build exactly what `digest send` would, inside a transaction it rolls back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr

import httpx
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from digest import runlock, store
from digest.compose import Composer
from digest.config import Settings, SubscriberConfig
from digest.deliver import Envelope, SendResult, Transport, build_transport
from digest.logs import event
from digest.memory import limit_arenas, release_memory
from digest.models import DeliveryStatus
from digest.planner import (
    Planned,
    digest_info,
    interests_of,
    is_due,
    local_now,
    plan,
    plan_and_record,
    ranking_params,
    record,
)
from digest.sources import SourceError, SourceResult, build_source
from digest.sources.base import FetchContext
from digest.sources.http import USER_AGENT

log = logging.getLogger("digest.pipeline")

SEND_BATCH = 200
COMMIT_INTERVAL = 0.02


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


def http_client(transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0) -> httpx.AsyncClient:
    """The shared HTTP client; tests inject a transport (httpx.MockTransport) or point base_url at loopback."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    )


Validators = dict[str, tuple[str | None, str | None]]
Fetched = tuple[str, SourceResult | Exception, float, Validators]


async def _fetch_all(
    settings: Settings,
    names: Sequence[str] | None,
    now: dt.datetime,
    client: httpx.AsyncClient | None,
    validators: dict[str, Validators],
    on_done: Callable[[str], None] | None,
) -> list[Fetched]:
    configs = [s for s in settings.sources if s.enabled and (names is None or s.name in names)]
    own_client = client is None
    http = client or http_client()

    async def one(config: object) -> Fetched:
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


def _store_one(conn: Connection, fetched: Fetched, old: dict[str, Validators], now: dt.datetime) -> FetchReport:
    """Store one source's fetch and, after a success, its new HTTP validators."""
    name, result, seconds, validators = fetched
    report = store_fetched(conn, name, result, seconds, now)
    if not isinstance(result, Exception) and validators != old.get(name, {}):
        store.save_validators(conn, name, validators, now)
    return report


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
    return [_store_one(conn, item, validators, now) for item in fetched]


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
    for item in fetched:
        with engine.begin() as conn:
            reports.append(_store_one(conn, item, validators, now))
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
    "ranking_params",
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
    return store.SendOutcome(result.delivery_id, DeliveryStatus.pending, result.error, backoff(settings, attempts, now))


def worker_id() -> str:
    """This process's name in delivery claims: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class OutcomeWriter:
    """Group commit: results arrive one by one while sending goes on; each commit (in a worker thread)
    takes all that waited, and commits are at least `min_interval` apart.

    A crash can thus lose the outcomes of at most the last `min_interval` plus the messages in flight
    (they are resent with the same bytes and Message-ID), while the database never paces the sending.
    """

    def __init__(
        self, engine: Engine, settings: Settings, now: dt.datetime, min_interval: float = COMMIT_INTERVAL
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.now = now
        self.min_interval = min_interval
        self.report = SendReport()
        self.error: store.StoreError | None = None
        self.outgoing: dict[int, tuple[str, int]] = {}  # delivery id → (subscriber, attempts so far)
        self._waiting: list[SendResult] = []
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    def add(self, result: SendResult) -> None:
        self._waiting.append(result)
        self._wake.set()

    async def close(self) -> SendReport:
        """Wait for the last commit; raise StoreError if results could not be recorded (they stay pending)."""
        self._closing.set()
        self._wake.set()
        await self._task
        if self.error is not None:
            raise self.error
        return self.report

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                if self._closing.is_set():
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            results, self._waiting = self._waiting, []
            await asyncio.to_thread(self._write, results)
            if not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.min_interval)

    def _write(self, results: list[SendResult]) -> None:
        outcomes = [outcome_for(self.settings, r, self.outgoing[r.delivery_id][1] + 1, self.now) for r in results]
        try:
            with self.engine.begin() as conn:
                store.record_outcomes(conn, outcomes, self.now)
        except SQLAlchemyError as exc:
            if self.error is None:
                self.error = store.StoreError(
                    f"{store.database_error(exc, 'recording send results')}; cannot record what was sent, "
                    "so those deliveries stay pending (a retry resends them with the same Message-ID)"
                )
                event(log, "record_failed", logging.ERROR, error=str(self.error))
            return
        for o in outcomes:
            status = o.status.value if o.status is not DeliveryStatus.pending else "retry"
            level = logging.INFO if o.status is DeliveryStatus.sent and not o.error else logging.WARNING
            subscriber, _ = self.outgoing.pop(o.delivery_id)
            event(log, "send", level, subscriber=subscriber, status=status, error=o.error)
            if o.status is DeliveryStatus.sent:
                self.report.sent += 1
            elif o.status is DeliveryStatus.failed:
                self.report.failed += 1
            else:
                self.report.retrying += 1


async def send_pending(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    now: dt.datetime,
    only: Sequence[str] | None = None,
    stop: threading.Event | None = None,
    owner: str | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> SendReport:
    """Send every due pending delivery, oldest first, committing outcomes as they arrive (group commit).

    A set `stop` lets the messages in flight finish, records them, and leaves the rest pending. Where
    several processes may send (not SQLite), rows are claimed with a lease of `claim_lease_seconds`,
    timed by the wall `clock` (default: `now`; `now` alone decides what is due) and, given a clock,
    renewed while this sender lives, so a killed one's rows come free after the lease.
    """
    limit_arenas()  # before the claim and writer threads allocate message bytes
    owner = owner or worker_id()
    sender = parseaddr(settings.delivery.from_)[1]
    writer = OutcomeWriter(engine, settings, now)
    mark = engine.dialect.name != "sqlite"  # SQLite: one sender per database, enforced by the run lock
    after: list[tuple[dt.datetime, int] | None] = [None]
    lease = dt.timedelta(seconds=settings.delivery.claim_lease_seconds)
    timer = clock or (lambda: now)

    def claim() -> list[store.Outgoing]:
        with engine.begin() as conn:
            batch = store.claim_pending(
                conn, owner, now, lease, SEND_BATCH, subscribers=only, after=after[0], mark=mark, claim_time=timer()
            )
        if batch and batch[-1].created_at is not None:
            after[0] = (batch[-1].created_at, batch[-1].id)
        return batch

    def release(ids: list[int]) -> None:
        with engine.begin() as conn:
            store.release_claims(conn, ids)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            await asyncio.to_thread(renew)

    def renew() -> None:
        with engine.begin() as conn:
            store.renew_claims(conn, owner, timer() + lease)

    beat = asyncio.create_task(heartbeat()) if mark and clock is not None else None
    next_batch: asyncio.Task[list[store.Outgoing]] | None = asyncio.create_task(asyncio.to_thread(claim))
    try:
        while next_batch is not None:
            batch = await next_batch
            next_batch = None
            if not batch:
                break
            if (stop and stop.is_set()) or writer.error is not None:
                with contextlib.suppress(SQLAlchemyError):
                    await asyncio.to_thread(release, [o.id for o in batch])
                break
            next_batch = asyncio.create_task(asyncio.to_thread(claim))  # claimed while this batch sends
            writer.outgoing.update((o.id, (o.subscriber, o.attempts)) for o in batch)
            envelopes = [Envelope(o.id, sender, o.subscriber, o.message) for o in batch]
            results = await transport.send(envelopes, on_result=writer.add, stop=stop)
            answered = {r.delivery_id for r in results}
            left = [o.id for o in batch if o.id not in answered]
            if left:
                await asyncio.to_thread(release, left)
            del batch, envelopes, results
            release_memory()
    finally:
        if next_batch is not None:
            unsent = await next_batch
            if unsent:
                await asyncio.to_thread(release, [o.id for o in unsent])
        report = await writer.close()
        if beat is not None:
            beat.cancel()
    if stop and stop.is_set():
        event(log, "send_stopped", logging.WARNING, sent=report.sent, reason="stop requested")
    return report


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
            return await send_pending(engine, settings, transport, now, only=only, stop=stop, clock=utcnow)
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
