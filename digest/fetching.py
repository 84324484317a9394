"""Fetching: poll every enabled source concurrently (one shared HTTP client), then store what each brought.

A failed source never blocks the others: it records a failed fetch run and nothing else, and what is
already stored stays as it was. HTTP validators (ETag / Last-Modified) are kept per source after a success.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Connection, Engine

from digest import store
from digest.config import Settings
from digest.logs import event
from digest.sources import SourceError, SourceResult, build_source
from digest.sources.base import FetchContext
from digest.sources.http import USER_AGENT

log = logging.getLogger("digest.pipeline")


@dataclass(slots=True)
class FetchReport:
    """What one source brought in one run: of the items it read, `counts.seen` were stored, `skipped` left out
    on purpose (replacements, outside the window, repeats) and `rejected` unusable; the three add up."""

    source: str
    status: str
    counts: store.UpsertCounts = field(default_factory=store.UpsertCounts)
    rejected: int = 0
    seconds: float = 0.0
    error: str | None = None
    skipped: int = 0


def http_client(transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0) -> httpx.AsyncClient:
    """The shared HTTP client; tests inject a transport (httpx.MockTransport) or point base_url at loopback."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    )


Validators = dict[str, tuple[str | None, str | None]]
SourceFetch = tuple[str, SourceResult | Exception, float, Validators]  # name, result, seconds, new validators


async def _fetch_all(
    settings: Settings,
    names: Sequence[str] | None,
    now: dt.datetime,
    client: httpx.AsyncClient | None,
    validators: dict[str, Validators],
    on_done: Callable[[str], None] | None,
) -> list[SourceFetch]:
    configs = [s for s in settings.sources if s.enabled and (names is None or s.name in names)]
    own_client = client is None
    http = client or http_client()

    async def one(config: object) -> SourceFetch:
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
        logging.DEBUG,
        source=name,
        seen=counts.seen,
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged,
        skipped=result.skipped,
        rejected=len(result.rejected),
    )
    return FetchReport(name, status, counts, len(result.rejected), seconds, skipped=result.skipped)


def _store_one(conn: Connection, fetched: SourceFetch, old: dict[str, Validators], now: dt.datetime) -> FetchReport:
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
