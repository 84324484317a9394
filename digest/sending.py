"""Sending: drain the outbox over the transport, oldest first, recording each outcome (group commit).

`send_pending` is one pass over what is due; `drain` is `digest send --worker`, passes until stopped. Rows
are claimed in leased batches where several processes may send (PostgreSQL: `FOR UPDATE SKIP LOCKED`, see
`store.claim_pending`), so a killed sender's rows come free after its lease. A transport only says
accepted / temporary / permanent; the retry policy (backoff, attempts) is decided here.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parseaddr

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from digest import runlock, store
from digest.clock import utcnow
from digest.config import Settings
from digest.deliver import Envelope, SendResult, Transport
from digest.logs import event
from digest.memory import release_memory
from digest.models import DeliveryStatus

log = logging.getLogger("digest.pipeline")
worker_log = logging.getLogger("digest.worker")

SEND_BATCH = 200
COMMIT_INTERVAL = 0.02


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
            level = logging.DEBUG if o.status is DeliveryStatus.sent and not o.error else logging.WARNING
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
        event(log, "send_stopped", logging.INFO, sent=report.sent, reason="stop requested")
    return report


def take_sender_lock(settings: Settings, engine: Engine, purpose: str) -> runlock.RunLock:
    """The one-sender-per-database lock (`runlock.LockError` names its holder). Its sole holder frees every
    claim first: claims left by a sender that died are stale once nobody else may send."""
    lock = runlock.lock_for(settings.database_url, purpose, engine).acquire()
    if lock.exclusive:
        with engine.begin() as conn:
            store.release_claims(conn)
    return lock


async def drain(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    stop: threading.Event,
    *,
    until_empty: bool = False,
    poll_seconds: float = 5.0,
    clock: Callable[[], dt.datetime] = utcnow,
    owner: str | None = None,
) -> SendReport:
    """Send passes until `stop` (or, with `until_empty`, until nothing is due); the summed report."""
    owner = owner or worker_id()
    total = SendReport()
    event(worker_log, "worker_started", logging.INFO, owner=owner, until_empty=until_empty)
    while not stop.is_set():
        report = await send_pending(engine, settings, transport, clock(), stop=stop, owner=owner, clock=clock)
        total.add(report)
        if stop.is_set() or report.sent or report.failed or report.retrying:
            continue
        if until_empty:
            with engine.connect() as conn:
                if store.due_count(conn, clock()) == 0:
                    break
        await asyncio.to_thread(stop.wait, poll_seconds)
    event(
        worker_log,
        "worker_stopped",
        logging.INFO,
        owner=owner,
        sent=total.sent,
        retrying=total.retrying,
        failed=total.failed,
    )
    return total
