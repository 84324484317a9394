"""What readers told us: their status (active, paused, unsubscribed) and their feedback on papers.

Both override the config file and are written from the web (`digest serve`) or by an operator's command,
in short transactions, so they can be written while `digest run` or `digest send` works on the database.
Addresses are stored lower-cased: one reader, however the config spells their address.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, select, update

from digest.identity import parse_arxiv_id
from digest.models import DeliveryStatus, Paper, SubscriberStatus
from digest.store._messages import message_bytes
from digest.store._sql import (
    IN_CHUNK,
    batched,
    delivery_t,
    dialect_insert,
    feedback_t,
    item_t,
    key_t,
    message_t,
    meta_t,
    model_t,
    paper_t,
    reader_t,
)

WEB_SECRET_KEY = "web_secret"


def _who(subscriber: str) -> str:
    return subscriber.strip().lower()


def subscriber_statuses(conn: Connection, subscribers: Iterable[str] | None = None) -> dict[str, SubscriberStatus]:
    """Each reader's status (lower-cased address → status) for these readers, or for all with a row;
    a reader without a row is active."""
    stmt = select(reader_t.c.subscriber, reader_t.c.status)
    if subscribers is None:
        return {s: SubscriberStatus(v) for s, v in conn.execute(stmt)}
    out: dict[str, SubscriberStatus] = {}
    for chunk in batched(sorted({_who(s) for s in subscribers}), IN_CHUNK):
        out.update({s: SubscriberStatus(v) for s, v in conn.execute(stmt.where(reader_t.c.subscriber.in_(chunk)))})
    return out


def inactive_subscribers(conn: Connection) -> set[str]:
    """Lower-cased addresses of readers who paused or unsubscribed: planning builds nothing for them."""
    stmt = select(reader_t.c.subscriber).where(reader_t.c.status != SubscriberStatus.active.value)
    return {r[0] for r in conn.execute(stmt)}


def set_status(
    conn: Connection, subscriber: str, status: SubscriberStatus, now: dt.datetime, via: str
) -> SubscriberStatus:
    """Record a reader's status and return the one it replaces. Pausing or unsubscribing also holds back
    their digests still waiting in the outbox (marked skipped, with the reason), so nothing more reaches them.
    `subscriber` is the address as configured (deliveries are stored under it)."""
    who = _who(subscriber)
    before = subscriber_statuses(conn, [who]).get(who, SubscriberStatus.active)
    stmt = dialect_insert(conn, reader_t).values(subscriber=who, status=status.value, updated_at=now, via=via)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["subscriber"], set_={"status": status.value, "updated_at": now, "via": via}
        )
    )
    if status is not SubscriberStatus.active:
        conn.execute(
            update(delivery_t)
            .where(delivery_t.c.subscriber == subscriber, delivery_t.c.status == DeliveryStatus.pending.value)
            .values(
                status=DeliveryStatus.skipped.value,
                last_error=f"not sent: the reader {status.value} at {now:%Y-%m-%d %H:%M} UTC",
                next_attempt_at=None,
                claimed_by=None,
                claimed_until=None,
            )
        )
    return before


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One recorded choice, with what a reader needs to recognise the paper."""

    paper_id: int
    key: str
    arxiv_id: str | None
    title: str
    value: int
    created_at: dt.datetime
    via: str


def record_feedback(conn: Connection, subscriber: str, paper_id: int, value: int, now: dt.datetime, via: str) -> None:
    """A reader's +1 ("more like this") or −1 ("less like this") on a paper; the last choice wins."""
    if value not in (1, -1):
        raise ValueError(f"feedback is +1 or -1, not {value!r}")
    stmt = dialect_insert(conn, feedback_t).values(
        subscriber=_who(subscriber), paper_id=paper_id, value=value, created_at=now, via=via
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["subscriber", "paper_id"], set_={"value": value, "created_at": now, "via": via}
        )
    )


def delete_feedback(conn: Connection, subscriber: str, paper_id: int) -> bool:
    """Undo a reader's choice on one paper; False when there was none."""
    t = feedback_t
    result = conn.execute(delete(t).where(t.c.subscriber == _who(subscriber), t.c.paper_id == paper_id))
    return bool(result.rowcount)


def reset_feedback(conn: Connection, subscriber: str) -> int:
    """Forget everything a reader told us about papers; how many choices went."""
    result = conn.execute(delete(feedback_t).where(feedback_t.c.subscriber == _who(subscriber)))
    return int(result.rowcount or 0)


def feedback_of(conn: Connection, subscriber: str) -> list[FeedbackRow]:
    """A reader's recorded choices, newest first, each with its paper's key and title."""
    f, p = feedback_t, paper_t
    stmt = (
        select(f.c.paper_id, p.c.key, p.c.arxiv_id, p.c.title, f.c.value, f.c.created_at, f.c.via)
        .join(p, p.c.id == f.c.paper_id)
        .where(f.c.subscriber == _who(subscriber))
        .order_by(f.c.created_at.desc(), f.c.id.desc())
    )
    return [FeedbackRow(*row) for row in conn.execute(stmt)]


def feedback_value(conn: Connection, subscriber: str, paper_id: int) -> int | None:
    """The reader's current choice on one paper (+1, −1), or None."""
    t = feedback_t
    stmt = select(t.c.value).where(t.c.subscriber == _who(subscriber), t.c.paper_id == paper_id)
    row = conn.execute(stmt).first()
    return int(row[0]) if row is not None else None


def find_paper(conn: Connection, ref: str) -> Paper | None:
    """The paper a reader or operator names: a key from `preview --format json` (`arxiv:2401.01234`,
    `doi:…`, `title:…`), or an arXiv id with or without its version."""
    ref = ref.strip()
    candidates = [ref]
    arxiv = parse_arxiv_id(ref)
    if arxiv is not None:
        candidates.append(f"arxiv:{arxiv.id}")
    for key in candidates:
        row = conn.execute(
            select(paper_t).join(key_t, key_t.c.paper_id == paper_t.c.id).where(key_t.c.key == key)
        ).first()
        if row is None:
            row = conn.execute(select(paper_t).where(paper_t.c.key == key)).first()
        if row is not None:
            return Paper.model_validate(dict(row._mapping))
    return None


@dataclass(frozen=True, slots=True)
class PaperCard:
    """What a page shows of a paper a reader acts on: enough to recognise it, and its links."""

    id: int
    title: str
    authors: list[str]
    arxiv_id: str | None
    url: str | None


def paper_card(conn: Connection, paper_id: int) -> PaperCard | None:
    p = paper_t
    stmt = select(p.c.id, p.c.title, p.c.authors, p.c.arxiv_id, p.c.url).where(p.c.id == paper_id)
    row = conn.execute(stmt).first()
    return PaperCard(*row) if row is not None else None


def stored_message(conn: Connection, subscriber: str, digest_date: dt.date) -> bytes | None:
    """The exact bytes of a reader's digest for a date, as sent (None when there is none, or it was skipped).
    `subscriber` is the address as configured: found through the (subscriber, date) key, never by a scan."""
    t, m = delivery_t, message_t
    stmt = (
        select(m.c.data)
        .join(t, t.c.id == m.c.delivery_id)
        .where(and_(t.c.subscriber == subscriber, t.c.digest_date == digest_date))
    )
    row = conn.execute(stmt).first()
    return message_bytes(row[0], conn) if row is not None else None


def web_secret(conn: Connection) -> str:
    """The key every link is signed with when none is configured: made on first use and kept in the
    database, so every process working on it agrees (whoever inserts first wins; the others read it)."""
    conn.execute(
        dialect_insert(conn, meta_t)
        .values(key=WEB_SECRET_KEY, value=secrets.token_urlsafe(32))
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return str(conn.execute(select(meta_t.c.value).where(meta_t.c.key == WEB_SECRET_KEY)).scalar_one())


@dataclass(frozen=True, slots=True)
class SentPaper:
    """A paper as a reader received it: in which digest, when, at which rank."""

    digest_date: dt.date
    sent_at: dt.datetime
    rank: int
    paper: Paper


def sent_papers(conn: Connection, subscriber: str, digests: int = 30) -> list[SentPaper]:
    """The papers of a reader's latest `digests` sent digests, newest digest first, in their order.
    `subscriber` is the address as configured (deliveries are stored under it)."""
    t, i, p = delivery_t, item_t, paper_t
    latest = (
        select(t.c.id)
        .where(t.c.subscriber == subscriber, t.c.status == DeliveryStatus.sent.value)
        .order_by(t.c.digest_date.desc())
        .limit(digests)
        .subquery()
    )
    stmt = (
        select(t.c.digest_date, t.c.sent_at, t.c.created_at, i.c.rank, p)
        .join(i, i.c.delivery_id == t.c.id)
        .join(p, p.c.id == i.c.paper_id)
        .where(t.c.id.in_(select(latest.c.id)))
        .order_by(t.c.digest_date.desc(), i.c.rank)
    )
    out = []
    for row in conn.execute(stmt):
        data = dict(row._mapping)
        day, sent, created, rank = (
            data.pop("digest_date"),
            data.pop("sent_at"),
            data.pop("created_at"),
            data.pop("rank"),
        )
        out.append(SentPaper(day, sent or created, rank, Paper.model_validate(data)))
    return out


def feedback_labels(conn: Connection, subscribers: Iterable[str]) -> dict[str, list[tuple[int, int, dt.datetime]]]:
    """Each reader's recorded feedback (lower-cased address → [(paper id, +1/−1, when)]), for learning."""
    t = feedback_t
    out: dict[str, list[tuple[int, int, dt.datetime]]] = {}
    for chunk in batched(sorted({_who(s) for s in subscribers}), IN_CHUNK):
        stmt = select(t.c.subscriber, t.c.paper_id, t.c.value, t.c.created_at).where(t.c.subscriber.in_(chunk))
        for who, paper_id, value, when in conn.execute(stmt.order_by(t.c.id)):
            out.setdefault(who, []).append((paper_id, value, when))
    return out


def paper_texts(conn: Connection, paper_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """id → (title, abstract) of these papers."""
    p = paper_t
    out: dict[int, tuple[str, str]] = {}
    for chunk in batched(sorted(set(paper_ids)), IN_CHUNK):
        for pid, title, abstract in conn.execute(select(p.c.id, p.c.title, p.c.abstract).where(p.c.id.in_(chunk))):
            out[pid] = (title, abstract or "")
    return out


def reader_models(conn: Connection, subscribers: Iterable[str]) -> dict[str, tuple[str, bytes]]:
    """Stored models: lower-cased address → (fingerprint, compressed model)."""
    m = model_t
    out: dict[str, tuple[str, bytes]] = {}
    for chunk in batched(sorted({_who(s) for s in subscribers}), IN_CHUNK):
        stmt = select(m.c.subscriber, m.c.fingerprint, m.c.data).where(m.c.subscriber.in_(chunk))
        out.update({who: (fp, bytes(data)) for who, fp, data in conn.execute(stmt)})
    return out


def save_reader_models(conn: Connection, models: Iterable[tuple[str, str, bytes]], now: dt.datetime) -> None:
    """Store freshly trained models: (address, fingerprint, compressed model), in one statement."""
    rows = {
        _who(who): {"subscriber": _who(who), "fingerprint": fp, "data": data, "built_at": now}
        for who, fp, data in models
    }
    if not rows:
        return
    stmt = dialect_insert(conn, model_t)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["subscriber"], set_={"fingerprint": new.fingerprint, "data": new.data, "built_at": new.built_at}
    )
    conn.execute(stmt, list(rows.values()))
