"""`digest send --worker`: a process that only drains the outbox, so sending scales out to several of them.

It never fetches or plans. Each pass claims due pending deliveries in leased batches (PostgreSQL:
`FOR UPDATE SKIP LOCKED`, see `store.claim_pending`) and sends them; between passes with nothing to do it
sleeps `poll_seconds`. It stops on SIGINT/SIGTERM, or, with `until_empty`, once no pending delivery is
due any more, including rows other workers hold (a dead worker's rows come free when their lease ends,
and this worker then sends them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from digest import pipeline, store
from digest.config import Settings
from digest.deliver import Transport
from digest.logs import event

log = logging.getLogger("digest.worker")


async def drain(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    stop: threading.Event,
    *,
    until_empty: bool = False,
    poll_seconds: float = 5.0,
    clock: Callable[[], dt.datetime] = pipeline.utcnow,
    owner: str | None = None,
) -> pipeline.SendReport:
    """Send passes until `stop` (or, with `until_empty`, until nothing is due); the summed report."""
    owner = owner or pipeline.worker_id()
    total = pipeline.SendReport()
    event(log, "worker_started", logging.WARNING, owner=owner, until_empty=until_empty)
    while not stop.is_set():
        report = await pipeline.send_pending(engine, settings, transport, clock(), stop=stop, owner=owner, clock=clock)
        total.add(report)
        if stop.is_set() or report.sent or report.failed or report.retrying:
            continue
        if until_empty:
            with engine.connect() as conn:
                if store.due_count(conn, clock()) == 0:
                    break
        await asyncio.to_thread(stop.wait, poll_seconds)
    event(
        log,
        "worker_stopped",
        logging.WARNING,
        owner=owner,
        sent=total.sent,
        retrying=total.retrying,
        failed=total.failed,
    )
    return total
