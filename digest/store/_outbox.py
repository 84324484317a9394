"""The outbox: composed digests stored before sending, claimed in leased batches, and their outcomes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from digest.models import Delivery, DeliveryStatus
from digest.store._messages import Packer, message_bytes, message_packer
from digest.store._sql import IN_CHUNK, batched, bind, delivery_t, item_t, message_t


@dataclass(slots=True)
class NewItem:
    paper_id: int
    rank: int
    score: float
    matched: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class NewDelivery:
    """A composed digest ready for the outbox."""

    subscriber: str
    digest_date: dt.date
    status: DeliveryStatus
    message_id: str | None
    message: bytes | None
    items: list[NewItem]
    model: tuple[str, str, bytes] | None = None  # a reader model trained with it, stored alongside
    packed: bool = False  # `message` is already compressed as stored (by a compose worker's `Packer`)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its items as plain tuples: compose workers send every digest to the main process,
        and a slotted dataclass per item took 3x as long to pickle and unpickle as the rest of the row."""
        items = [(i.paper_id, i.rank, i.score, i.matched) for i in self.items]
        return _unpickle_delivery, (
            self.subscriber,
            self.digest_date,
            self.status,
            self.message_id,
            self.message,
            items,
            self.model,
            self.packed,
        )


def _unpickle_delivery(
    subscriber: str,
    digest_date: dt.date,
    status: DeliveryStatus,
    message_id: str | None,
    message: bytes | None,
    items: list[tuple[int, int, float, list[Any]]],
    model: tuple[str, str, bytes] | None,
    packed: bool,
) -> NewDelivery:
    return NewDelivery(
        subscriber, digest_date, status, message_id, message, [NewItem(*i) for i in items], model, packed
    )


def deliveries_on(conn: Connection, digest_date: dt.date, subscribers: Iterable[str] | None = None) -> set[str]:
    """Addresses that already have a delivery (any status) for this local date."""
    stmt = select(delivery_t.c.subscriber).where(delivery_t.c.digest_date == digest_date)
    if subscribers is None:
        return {r[0] for r in conn.execute(stmt)}
    found: set[str] = set()
    for chunk in batched(sorted(set(subscribers)), IN_CHUNK):
        found.update(r[0] for r in conn.execute(stmt.where(delivery_t.c.subscriber.in_(chunk))))
    return found


def last_sent_at(conn: Connection, subscribers: Iterable[str], since: dt.datetime) -> dict[str, dt.datetime]:
    """When each subscriber's latest sent (or skipped) digest created at or after `since` was composed.

    Status is checked here, not in SQL: a status condition lets the planner pick the status index and
    scan every sent digest ever for each chunk, instead of these subscribers' recent rows."""
    done = {DeliveryStatus.sent.value, DeliveryStatus.skipped.value}
    out: dict[str, dt.datetime] = {}
    for chunk in batched(sorted(set(subscribers)), IN_CHUNK):
        stmt = select(delivery_t.c.subscriber, delivery_t.c.status, delivery_t.c.created_at).where(
            delivery_t.c.subscriber.in_(chunk), delivery_t.c.created_at >= since
        )
        for sub, status, created in conn.execute(stmt):
            if status in done and (sub not in out or created > out[sub]):
                out[sub] = created
    return out


def delivered_paper_ids(
    conn: Connection, subscribers: Iterable[str], paper_ids: Iterable[int], since: dt.datetime
) -> dict[str, set[int]]:
    """For each subscriber, which of these papers a sent or pending delivery already holds. Only
    deliveries created at or after `since` are read: pass a time no later than the papers' earliest
    `first_seen_at`, such as the lookback window's start (a digest cannot hold a paper before it was seen)."""
    ids = set(paper_ids)
    out: dict[str, set[int]] = {}
    if not ids:
        return out
    live = {DeliveryStatus.sent.value, DeliveryStatus.pending.value}
    for chunk in batched(sorted(set(subscribers)), IN_CHUNK):
        # by subscriber and creation time only (see `last_sent_at`); status and paper ids are checked
        # here, which is cheaper than an `IN` list of every pool id per chunk
        stmt = (
            select(delivery_t.c.subscriber, delivery_t.c.status, item_t.c.paper_id)
            .join(item_t, item_t.c.delivery_id == delivery_t.c.id)
            .where(delivery_t.c.subscriber.in_(chunk), delivery_t.c.created_at >= since)
        )
        for sub, status, pid in conn.execute(stmt):
            if pid in ids and status in live:
                out.setdefault(sub, set()).add(pid)
    return out


def insert_deliveries(
    conn: Connection, deliveries: Sequence[NewDelivery], now: dt.datetime, packer: Packer | None = None
) -> list[int]:
    """Store composed digests and their items; the unique (subscriber, date) makes a second one impossible.
    Message bytes are compressed by `packer` (a run that stores in batches passes one; else one is made
    from these digests, see `message_packer`)."""
    if not deliveries:
        return []
    raw = [d.message for d in deliveries if d.message is not None and not d.packed]
    if packer is None:
        packer = message_packer(conn, now, raw) if raw else Packer(None)
    conn.execute(
        insert(delivery_t),
        [
            {
                "subscriber": d.subscriber,
                "digest_date": d.digest_date,
                "status": d.status.value,
                "attempts": 0,
                "message_id": d.message_id,
                "created_at": now,
                "sent_at": None,
                "next_attempt_at": now if d.status is DeliveryStatus.pending else None,
            }
            for d in deliveries
        ],
    )
    ids = _delivery_ids(conn, [(d.subscriber, d.digest_date) for d in deliveries])
    messages = [
        (did, d.message if d.packed else packer.pack(d.message))
        for did, d in zip(ids, deliveries, strict=True)
        if d.message is not None
    ]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    if messages:
        conn.exec_driver_sql(f"INSERT INTO {message_t.name} (delivery_id, data) VALUES ({mark}, {mark})", messages)
    as_json: dict[tuple[Any, ...], str] = {}
    items = [
        (did, it.paper_id, it.rank, it.score, _json_list(as_json, it.matched))
        for did, d in zip(ids, deliveries, strict=True)
        for it in d.items
    ]
    if items:
        # straight to the driver: per-row parameter processing cost more than the insert itself
        conn.exec_driver_sql(
            f"INSERT INTO {item_t.name} (delivery_id, paper_id, rank, score, matched) VALUES ({', '.join([mark] * 5)})",
            items,
        )
    return ids


def _json_list(cache: dict[tuple[Any, ...], str], values: list[Any]) -> str:
    """`values` as the JSON column stores it; digests share their matched-term lists, so encode each once."""
    key = tuple(values)
    text = cache.get(key)
    if text is None:
        text = cache[key] = json.dumps(values)
    return text


def _delivery_ids(conn: Connection, keys: Sequence[tuple[str, dt.date]]) -> list[int]:
    """Ids of the deliveries with these (subscriber, date) keys, in order. Looked up by the unique key after
    a plain executemany: `INSERT … RETURNING` in parameter order runs row by row on SQLite, 3x slower."""
    by_date: dict[dt.date, list[str]] = {}
    for subscriber, day in keys:
        by_date.setdefault(day, []).append(subscriber)
    found: dict[tuple[str, dt.date], int] = {}
    for day, subscribers in by_date.items():
        for chunk in batched(subscribers, IN_CHUNK):
            stmt = select(delivery_t.c.id, delivery_t.c.subscriber).where(
                delivery_t.c.digest_date == day, delivery_t.c.subscriber.in_(chunk)
            )
            found.update({(sub, day): did for did, sub in conn.execute(stmt)})
    return [found[key] for key in keys]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A pending delivery as the sender sees it."""

    id: int
    subscriber: str
    digest_date: dt.date
    message_id: str | None
    message: bytes
    attempts: int
    created_at: dt.datetime | None = None


def claim_pending(
    conn: Connection,
    owner: str,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int,
    subscribers: Iterable[str] | None = None,
    after: tuple[dt.datetime, int] | None = None,
    mark: bool = True,
    claim_time: dt.datetime | None = None,
) -> list[Outgoing]:
    """Up to `limit` due pending deliveries, oldest first (after the `(created_at, id)` key `after`).

    With `mark`, they are claimed for `owner` until `now + lease`, and only unclaimed rows or rows whose
    lease ran out qualify: the rows are picked with `SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL), so
    concurrent workers take disjoint batches without waiting on each other, and the conditional UPDATE
    gives a row to exactly one even where the clause is not supported. Without it (one sender per
    database, guaranteed by the run lock) nothing is written.
    Leases are read and written at `claim_time` (the wall clock; default `now`, which decides what is due).
    """
    t = delivery_t
    held = claim_time or now
    stmt = (
        select(t.c.id)
        .where(t.c.status == DeliveryStatus.pending.value)
        .where(or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now))
        .order_by(t.c.created_at, t.c.id)
        .limit(limit)
    )
    free = or_(t.c.claimed_until.is_(None), t.c.claimed_until < held)
    if mark:
        stmt = stmt.where(free).with_for_update(skip_locked=True)
    if after is not None:
        stmt = stmt.where(or_(t.c.created_at > after[0], and_(t.c.created_at == after[0], t.c.id > after[1])))
    if subscribers is not None:
        stmt = stmt.where(t.c.subscriber.in_(sorted(set(subscribers))))
    ids = [r[0] for r in conn.execute(stmt)]
    if not ids:
        return []
    if mark:
        conn.execute(
            update(t)
            .where(t.c.id.in_(ids), t.c.status == DeliveryStatus.pending.value, free)
            .values(claimed_by=owner, claimed_until=held + lease)
        )
    m = message_t
    cols = (t.c.id, t.c.subscriber, t.c.digest_date, t.c.message_id, m.c.data, t.c.attempts, t.c.created_at)
    query = (
        select(*cols)
        .select_from(t.outerjoin(m, m.c.delivery_id == t.c.id))
        .where(t.c.id.in_(ids))
        .order_by(t.c.created_at, t.c.id)
    )
    if mark:
        query = query.where(t.c.claimed_by == owner)
    return [
        Outgoing(r.id, r.subscriber, r.digest_date, r.message_id, message_bytes(r.data, conn), r.attempts, r.created_at)
        for r in conn.execute(query)
    ]


def release_claims(conn: Connection, ids: Iterable[int] | None = None) -> int:
    """Give claimed deliveries back (these ids, or all of them when the caller alone owns the database)."""
    stmt = update(delivery_t).where(delivery_t.c.claimed_by.is_not(None))
    if ids is not None:
        chosen = sorted(set(ids))
        if not chosen:
            return 0
        stmt = stmt.where(delivery_t.c.id.in_(chosen))
    return int(conn.execute(stmt.values(claimed_by=None, claimed_until=None)).rowcount or 0)


def renew_claims(conn: Connection, owner: str, until: dt.datetime) -> int:
    """Extend the lease on every pending delivery `owner` still holds (its heartbeat while it sends).

    Rows another transaction has locked are skipped (`FOR UPDATE SKIP LOCKED` on PostgreSQL): they are the
    sender's own outcomes being written, which release the claim anyway. Waiting on them instead let the
    heartbeat and the outcome writer lock the same rows in opposite orders and deadlock.
    """
    t = delivery_t
    mine = (
        select(t.c.id)
        .where(t.c.claimed_by == owner, t.c.status == DeliveryStatus.pending.value)
        .with_for_update(skip_locked=True)
    )
    stmt = update(t).where(t.c.id.in_(mine.scalar_subquery()), t.c.claimed_by == owner).values(claimed_until=until)
    return int(conn.execute(stmt).rowcount or 0)


def due_count(conn: Connection, now: dt.datetime) -> int:
    """Pending deliveries due by `now`, claimed or not: what a draining worker still waits for."""
    t = delivery_t
    stmt = (
        select(func.count())
        .select_from(t)
        .where(t.c.status == DeliveryStatus.pending.value)
        .where(or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now))
    )
    return int(conn.execute(stmt).scalar_one())


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What happened to one attempt: the new status, and when to retry if it stays pending."""

    delivery_id: int
    status: DeliveryStatus
    error: str | None = None
    next_attempt_at: dt.datetime | None = None


def record_outcomes(conn: Connection, outcomes: Sequence[SendOutcome], now: dt.datetime) -> None:
    """Write a batch of send results (one executemany), releasing their claims.

    Rows are updated in id order, so two writers whose batches overlap lock them in the same order.
    """
    if not outcomes:
        return
    stmt = (
        update(delivery_t)
        .where(delivery_t.c.id == bind("o_id"))
        .values(
            status=bind("o_status"),
            attempts=delivery_t.c.attempts + 1,
            last_error=bind("o_error"),
            sent_at=bind("o_sent_at"),
            next_attempt_at=bind("o_next"),
            claimed_by=None,
            claimed_until=None,
        )
    )
    conn.execute(
        stmt,
        [
            {
                "o_id": o.delivery_id,
                "o_status": o.status.value,
                "o_error": o.error,
                "o_sent_at": now if o.status is DeliveryStatus.sent else None,
                "o_next": o.next_attempt_at,
            }
            for o in sorted(outcomes, key=lambda o: o.delivery_id)
        ],
    )


def history(conn: Connection, since: dt.date, subscriber: str | None = None) -> list[Delivery]:
    stmt = (
        select(delivery_t)
        .where(delivery_t.c.digest_date >= since)
        .order_by(delivery_t.c.digest_date.desc(), delivery_t.c.subscriber)
    )
    if subscriber:
        stmt = stmt.where(func.lower(delivery_t.c.subscriber) == subscriber.lower())
    return [Delivery.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]


def delete_deliveries(conn: Connection, subscriber: str, digest_date: dt.date) -> int:
    """Drop a subscriber's delivery (and its items) for one date; previews do it inside a rolled-back
    transaction to show what that day's digest would be now."""
    t = delivery_t
    ids = [
        r[0]
        for r in conn.execute(
            select(t.c.id).where(func.lower(t.c.subscriber) == subscriber.lower(), t.c.digest_date == digest_date)
        )
    ]
    if ids:
        conn.execute(delete(item_t).where(item_t.c.delivery_id.in_(ids)))
        conn.execute(delete(message_t).where(message_t.c.delivery_id.in_(ids)))
        conn.execute(delete(t).where(t.c.id.in_(ids)))
    return len(ids)


def prune_messages(conn: Connection, before: dt.datetime, batch: int = 2000) -> int:
    """Drop the message bytes of digests created before `before` that are done with (sent, failed or skipped);
    the rows and their items stay, so who got which paper when (and "never the same paper twice") holds.
    Pending digests keep their bytes whatever their age. Returns how many messages went."""
    t, m = delivery_t, message_t
    done = [DeliveryStatus.sent.value, DeliveryStatus.failed.value, DeliveryStatus.skipped.value]
    dropped = 0
    while True:
        ids = [
            r[0]
            for r in conn.execute(
                select(m.c.delivery_id)
                .join(t, t.c.id == m.c.delivery_id)
                .where(t.c.created_at < before, t.c.status.in_(done))
                .limit(batch)
            )
        ]
        if not ids:
            return dropped
        conn.execute(delete(m).where(m.c.delivery_id.in_(ids)))
        dropped += len(ids)


@dataclass(frozen=True, slots=True)
class OutboxState:
    """The outbox at a glance: what waits to be sent, what keeps failing, the latest planning pass."""

    due: int
    retrying: int
    failed_last_day: int
    oldest_due: dt.datetime | None
    last_planned_at: dt.datetime | None
    last_built: int
    last_skipped: int


def outbox_state(conn: Connection, now: dt.datetime) -> OutboxState:
    """Counts for `digest status`. A planning pass stores all its digests with one `created_at`, so the
    latest pass is the latest `created_at` and what it made."""
    t = delivery_t
    pending = t.c.status == DeliveryStatus.pending.value
    due_now = and_(pending, or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now))
    due, oldest = conn.execute(select(func.count(), func.min(t.c.created_at)).where(due_now)).one()
    retrying = conn.execute(select(func.count()).where(pending, t.c.attempts > 0)).scalar_one()
    failed = conn.execute(
        select(func.count()).where(
            t.c.status == DeliveryStatus.failed.value, t.c.created_at >= now - dt.timedelta(days=1)
        )
    ).scalar_one()
    last = conn.execute(select(func.max(t.c.created_at))).scalar_one()
    built = skipped = 0
    if last is not None:
        for status, count in conn.execute(
            select(t.c.status, func.count()).where(t.c.created_at == last).group_by(t.c.status)
        ):
            if status == DeliveryStatus.skipped.value:
                skipped += count
            else:
                built += count
    return OutboxState(due, retrying, failed, oldest, last, built, skipped)
