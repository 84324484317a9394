"""Papers: upsert of source records (identity merge through every key), sightings, and pool queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlmodel import SQLModel

from digest.identity import key_strength, keys_for
from digest.merge import Cluster, Ids, apply_record, cluster_records, facts_changed, merge_states, new_state
from digest.models import Paper, PaperRecord, Sighting
from digest.store._sql import batched, bind, feedback_t, key_t, paper_t, select_in, sighting_t


@dataclass(slots=True)
class UpsertCounts:
    """How a batch of records changed the store: `seen` records, of which `new` made a paper, `updated`
    changed a known paper's facts, and `unchanged` brought nothing new; `merged` counts papers folded away."""

    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0


_PAPER_COLUMNS = [c.name for c in paper_t.columns]
_KEY_CHUNK = 900


def upsert_records(
    conn: Connection, records: Sequence[PaperRecord], now: dt.datetime, batch: int = 1000
) -> UpsertCounts:
    """Insert new papers and fold re-sightings into known ones, matching on every identity key."""
    counts = UpsertCounts()
    for chunk in batched(records, batch):
        _upsert_chunk(conn, chunk, now, counts)
    return counts


def _upsert_chunk(conn: Connection, records: list[PaperRecord], now: dt.datetime, counts: UpsertCounts) -> None:
    """One batch: look every key up at once, cluster, then write with one statement per kind of change."""
    rec_keys = [keys_for(r) for r in records]
    rec_ids = [
        Ids.of(k[0].removeprefix("arxiv:") if k[0].startswith("arxiv:") else None, r.doi, r.url)
        for k, r in zip(rec_keys, records, strict=True)
    ]
    wanted = {k for keys in rec_keys for k in keys}
    owner: dict[str, int] = {
        key: pid for key, pid in select_in(conn, key_t.c.key, wanted, key_t.c.key, key_t.c.paper_id, size=_KEY_CHUNK)
    }
    stored: dict[int, dict[str, Any]] = {
        row.id: dict(row._mapping)
        for row in select_in(conn, paper_t.c.id, owner.values(), *paper_t.columns, size=_KEY_CHUNK)
    }
    paper_ids = {pid: Ids.of(s["arxiv_id"], s["doi"], s["url"]) for pid, s in stored.items()}
    clusters = cluster_records(rec_keys, rec_ids, owner, paper_ids)

    new_states: list[dict[str, Any]] = []
    new_clusters: list[Cluster] = []
    updates: list[dict[str, Any]] = []
    touched: list[dict[str, Any]] = []
    add_keys: list[dict[str, Any]] = []
    sightings: list[tuple[int, PaperRecord]] = []
    for cluster in clusters:
        counts.seen += len(cluster.records)
        if not cluster.papers:
            first = records[cluster.records[0]]
            state = new_state(first, min(cluster.keys, key=key_strength), now)
            for i in cluster.records[1:]:
                apply_record(state, records[i], now)
            counts.new += 1
            counts.unchanged += len(cluster.records) - 1
            new_states.append(state)
            new_clusters.append(cluster)
            continue
        if len(cluster.papers) > 1:
            original = merge_states([stored[p] for p in cluster.papers])
            _merge_papers(conn, original["id"], [p for p in cluster.papers if p != original["id"]])
            counts.merged += len(cluster.papers) - 1
        else:
            original = stored[cluster.papers[0]]
        state = dict(original)
        for i in cluster.records:
            apply_record(state, records[i], now)
            sightings.append((state["id"], records[i]))
        state["key"] = min([state["key"], *cluster.keys], key=key_strength)
        changed = len(cluster.papers) > 1 or facts_changed(stored[state["id"]], state)
        counts.updated += changed
        counts.unchanged += len(cluster.records) - changed
        if changed:
            updates.append(state)
        elif state["last_seen_at"] != original["last_seen_at"]:
            touched.append({"t_id": state["id"], "t_last": state["last_seen_at"]})
        add_keys.extend({"key": k, "paper_id": state["id"]} for k in cluster.keys)

    if new_states:
        conn.execute(insert(paper_t), [{k: v for k, v in s.items() if k != "id"} for s in new_states])
        new_keys = (s["key"] for s in new_states)
        ids = dict(select_in(conn, paper_t.c.key, new_keys, paper_t.c.key, paper_t.c.id, size=_KEY_CHUNK))
        for state, cluster in zip(new_states, new_clusters, strict=True):
            pid = ids[state["key"]]
            add_keys.extend({"key": k, "paper_id": pid} for k in cluster.keys)
            sightings.extend((pid, records[i]) for i in cluster.records)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for state in updates:
        before = stored[state["id"]]
        cols = tuple(c for c in _PAPER_COLUMNS if c not in {"id", "first_seen_at"} and state[c] != before[c])
        if cols:
            by_columns.setdefault(cols, []).append(state)
    for cols, states in by_columns.items():
        stmt = update(paper_t).where(paper_t.c.id == bind("b_id")).values({c: bind(f"b_{c}") for c in cols})
        conn.execute(stmt, [{"b_id": s["id"], **{f"b_{c}": s[c] for c in cols}} for s in states])
    if touched:
        stmt = update(paper_t).where(paper_t.c.id == bind("t_id")).values(last_seen_at=bind("t_last"))
        conn.execute(stmt, touched)
    if add_keys:
        conn.execute(insert(key_t), add_keys)
    _upsert_sightings(conn, sightings, now)


def _upsert_sightings(conn: Connection, sightings: list[tuple[int, PaperRecord]], now: dt.datetime) -> None:
    """One row per (paper, source): inserted the first time, `last_seen_at` moved on after."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for pid, record in sightings:
        rows.setdefault(
            (pid, record.source),
            {
                "paper_id": pid,
                "source": record.source,
                "external_id": record.external_id,
                "first_seen_at": now,
                "last_seen_at": now,
            },
        )
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert  # type: ignore[assignment]
    else:  # pragma: no cover - other backends: read then write
        existing = {
            (r.paper_id, r.source)
            for r in select_in(
                conn, sighting_t.c.paper_id, (k[0] for k in rows), sighting_t.c.paper_id, sighting_t.c.source
            )
        }
        fresh = [v for k, v in rows.items() if k not in existing]
        if fresh:
            conn.execute(insert(sighting_t), fresh)
        again = [{"s_pid": p, "s_source": s} for p, s in rows if (p, s) in existing]
        if again:
            conn.execute(
                update(sighting_t)
                .where(sighting_t.c.paper_id == bind("s_pid"), sighting_t.c.source == bind("s_source"))
                .values(last_seen_at=now),
                again,
            )
        return
    stmt = dialect_insert(sighting_t)
    stmt = stmt.on_conflict_do_update(
        index_elements=["paper_id", "source"],
        set_={"last_seen_at": stmt.excluded.last_seen_at},
    )
    for chunk in batched(sorted(rows.values(), key=lambda r: (r["paper_id"], r["source"])), 1000):
        conn.execute(stmt, chunk)


def _paper_references() -> list[Any]:
    """Every column of every table, but paper_key and sighting, that points at paper.id (delivery items, …)."""
    return [
        fk.parent
        for table in SQLModel.metadata.sorted_tables
        if table.name not in {key_t.name, sighting_t.name}
        for fk in table.foreign_keys
        if fk.column is paper_t.c.id
    ]


def _merge_papers(conn: Connection, survivor: int, others: list[int]) -> None:
    """Re-point keys, sightings and delivery history of duplicate papers to the survivor, then drop them.

    Every table referring to a paper is re-pointed, so no history is lost; two sightings of one source
    become one that spans both.
    """
    conn.execute(update(key_t).where(key_t.c.paper_id.in_(others)).values(paper_id=survivor))
    _fold_feedback(conn, [survivor, *others])
    for column in _paper_references():
        conn.execute(update(column.table).where(column.in_(others)).values({column.name: survivor}))
    rows = conn.execute(
        select(sighting_t).where(sighting_t.c.paper_id.in_([survivor, *others])).order_by(sighting_t.c.id)
    ).all()
    spans: dict[str, list[Any]] = {}
    drop: list[int] = []
    for row in sorted(rows, key=lambda r: (r.paper_id != survivor, r.id)):
        span = spans.get(row.source)
        if span is None:
            spans[row.source] = [row.id, row.first_seen_at, row.last_seen_at, row.paper_id != survivor]
            continue
        drop.append(row.id)
        span[1], span[2], span[3] = min(span[1], row.first_seen_at), max(span[2], row.last_seen_at), True
    if drop:
        conn.execute(delete(sighting_t).where(sighting_t.c.id.in_(drop)))
    for kept, first, last, dirty in spans.values():
        if dirty:
            conn.execute(
                update(sighting_t)
                .where(sighting_t.c.id == kept)
                .values(paper_id=survivor, first_seen_at=first, last_seen_at=last)
            )
    conn.execute(delete(paper_t).where(paper_t.c.id.in_(others)))


def _fold_feedback(conn: Connection, papers: list[int]) -> None:
    """A reader's feedback on papers found to be one: their newest choice stays (one row per reader and paper)."""
    rows = conn.execute(
        select(feedback_t.c.id, feedback_t.c.subscriber)
        .where(feedback_t.c.paper_id.in_(papers))
        .order_by(feedback_t.c.created_at.desc(), feedback_t.c.id.desc())
    ).all()
    kept: set[str] = set()
    drop: list[int] = []
    for row in rows:
        if row.subscriber in kept:
            drop.append(row.id)
        kept.add(row.subscriber)
    if drop:
        conn.execute(delete(feedback_t).where(feedback_t.c.id.in_(drop)))


def count_papers(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(paper_t)).scalar_one())


def papers_seen_since(conn: Connection, since: dt.datetime) -> list[Paper]:
    """Every paper first seen at or after `since`, oldest first: the day's candidate pool."""
    return [paper for batch in paper_batches(conn, since) for paper in batch]


def paper_batches(conn: Connection, since: dt.datetime, size: int = 2000) -> Iterator[list[Paper]]:
    """Every paper first seen at or after `since`, streamed in lists of at most `size`: for statistics over
    a window too large to hold at once."""
    # on the statement: `Connection.execution_options` would stream every later statement of the caller's
    # connection too (on PostgreSQL, an INSERT through a server-side cursor fails)
    stmt = (
        select(paper_t).where(paper_t.c.first_seen_at >= since).order_by(paper_t.c.id).execution_options(yield_per=size)
    )
    for rows in conn.execute(stmt).partitions():
        yield [Paper.model_validate(dict(row._mapping)) for row in rows]


def count_papers_seen_since(conn: Connection, since: dt.datetime) -> int:
    return int(
        conn.execute(select(func.count()).select_from(paper_t).where(paper_t.c.first_seen_at >= since)).scalar_one()
    )


def papers_known_as(conn: Connection, arxiv_ids: Iterable[str], dois: Iterable[str]) -> dict[str, int]:
    """Stored papers by any of these arXiv ids (through their index) or DOIs (any case): identifier, lower-cased →
    paper id."""
    out: dict[str, int] = {}
    p = paper_t
    for column, values in (
        (p.c.arxiv_id, {a.lower() for a in arxiv_ids}),
        (func.lower(p.c.doi), {d.lower() for d in dois}),
    ):
        for chunk in batched(sorted(values), _KEY_CHUNK):
            out.update(
                {
                    str(value).lower(): pid
                    for pid, value in conn.execute(select(p.c.id, column).where(column.in_(chunk)))
                }
            )
    return out


def sightings_of(conn: Connection, paper_id: int) -> list[Sighting]:
    rows = conn.execute(select(sighting_t).where(sighting_t.c.paper_id == paper_id).order_by(sighting_t.c.id)).all()
    return [Sighting.model_validate(dict(r._mapping)) for r in rows]
