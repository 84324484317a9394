"""Fetch runs (one row per poll of a source) and each source's HTTP validators for conditional GET."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from digest.models import FetchRun
from digest.store._papers import UpsertCounts
from digest.store._sql import run_t, state_t


def start_fetch_run(conn: Connection, source: str, now: dt.datetime) -> int:
    result = conn.execute(insert(run_t).values(source=source, started_at=now, status="running"))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def finish_fetch_run(
    conn: Connection,
    run_id: int,
    now: dt.datetime,
    status: str,
    counts: UpsertCounts | None = None,
    rejected: int = 0,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {"finished_at": now, "status": status, "rejected": rejected, "error": error}
    if counts is not None:
        values.update(seen=counts.seen, new=counts.new, updated=counts.updated, unchanged=counts.unchanged)
    conn.execute(update(run_t).where(run_t.c.id == run_id).values(**values))


def fetch_runs(conn: Connection, limit: int = 50) -> list[FetchRun]:
    rows = conn.execute(select(run_t).order_by(run_t.c.id.desc()).limit(limit)).all()
    return [FetchRun.model_validate(dict(r._mapping)) for r in rows]


def load_validators(conn: Connection, source: str) -> dict[str, tuple[str | None, str | None]]:
    """ETag / Last-Modified per URL last fetched by this source."""
    rows = conn.execute(select(state_t).where(state_t.c.source == source)).all()
    return {r.url: (r.etag, r.last_modified) for r in rows}


def save_validators(
    conn: Connection, source: str, validators: dict[str, tuple[str | None, str | None]], now: dt.datetime
) -> None:
    conn.execute(delete(state_t).where(state_t.c.source == source))
    if validators:
        conn.execute(
            insert(state_t),
            [
                {"source": source, "url": u, "etag": e, "last_modified": m, "updated_at": now}
                for u, (e, m) in validators.items()
            ],
        )


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A source's latest fetch, and when it last worked (None: never)."""

    latest: FetchRun
    last_ok: dt.datetime | None


OK_STATUSES = ("ok", "not_modified")


def source_health(conn: Connection) -> dict[str, SourceHealth]:
    """Each source's latest fetch run and when it last succeeded."""
    latest_ids = select(func.max(run_t.c.id)).group_by(run_t.c.source)
    rows = conn.execute(select(run_t).where(run_t.c.id.in_(latest_ids)))
    latest = [FetchRun.model_validate(dict(r._mapping)) for r in rows]
    ok: dict[str, dt.datetime] = dict(
        conn.execute(
            select(run_t.c.source, func.max(run_t.c.finished_at))
            .where(run_t.c.status.in_(OK_STATUSES))
            .group_by(run_t.c.source)
        ).all()
    )
    return {run.source: SourceHealth(run, ok.get(run.source)) for run in latest}
