"""All storage in one module: engine and schema, paper upsert with identity merge, the delivery outbox.

Functions take a SQLAlchemy `Connection` so callers decide the transaction: `digest preview` runs the
whole job in one that it rolls back, `digest send` commits. Dialect-specific SQL lives in `_upsert_sighting`
and `_configure_sqlite` only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import SQLModel, create_engine

from digest.identity import key_strength, keys_for, normalize_doi, record_arxiv_id
from digest.models import (
    SCHEMA_VERSION,
    Delivery,
    DeliveryItem,
    DeliveryStatus,
    FetchRun,
    Meta,
    Paper,
    PaperKey,
    PaperRecord,
    Sighting,
    SourceState,
)

T = TypeVar("T")

paper_t = Paper.__table__  # type: ignore[attr-defined]
key_t = PaperKey.__table__  # type: ignore[attr-defined]
sighting_t = Sighting.__table__  # type: ignore[attr-defined]
delivery_t = Delivery.__table__  # type: ignore[attr-defined]
item_t = DeliveryItem.__table__  # type: ignore[attr-defined]
run_t = FetchRun.__table__  # type: ignore[attr-defined]
meta_t = Meta.__table__  # type: ignore[attr-defined]
state_t = SourceState.__table__  # type: ignore[attr-defined]

_IN_CHUNK = 500


class StoreError(Exception):
    """The database cannot be used as asked (newer schema, locked, read-only, unreachable)."""


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def database_error(exc: SQLAlchemyError, doing: str) -> StoreError:
    """A StoreError saying what we were doing and what the database answered (no SQL, no parameters)."""
    orig = getattr(exc, "orig", None)
    return StoreError(f"database error while {doing}: {orig if orig is not None else type(exc).__name__}")


def safe_url(url: str) -> str:
    """A database URL fit for messages: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database_url>"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # 2 MB a connection: 16 MB sped up neither upserts nor the daily job, and cost ~35 MB of RSS in sending
        cur.execute("PRAGMA cache_size=-2048")
        cur.close()


def open_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL, the schema created on first use and its version checked."""
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open database {parsed.render_as_string(hide_password=True)}: {exc}") from None
    if is_sqlite:
        _configure_sqlite(engine)
    ensure_schema(engine)
    return engine


def ensure_schema(engine: Engine) -> None:
    """Create missing tables; refuse a database whose schema is newer than this code understands."""
    safe_url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.begin() as conn:
            SQLModel.metadata.create_all(conn)
            # create_all skips tables that exist: indexes added since a database was made come here
            for table in SQLModel.metadata.sorted_tables:
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
            row = conn.execute(select(meta_t.c.value).where(meta_t.c.key == "schema_version")).first()
            if row is None:
                conn.execute(insert(meta_t).values(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            version = int(row[0])
    except OperationalError as exc:
        raise StoreError(f"cannot use database {safe_url}: {exc.orig}") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database {safe_url} has schema version {version}, newer than this digest understands "
            f"({SCHEMA_VERSION}); upgrade digest or point database_url at another file"
        )


# ---------------------------------------------------------------- papers


@dataclass(slots=True)
class UpsertCounts:
    """How a batch of records changed the store: `seen` records, of which `new` made a paper, `updated`
    changed a known paper's facts, and `unchanged` brought nothing new; `merged` counts papers folded away."""

    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0


def _url_rank(url: str | None) -> int:
    if not url:
        return 0
    if "/papers/" in url:
        return 3
    if "arxiv.org/abs/" in url:
        return 2
    return 1


def _title_rank(arxiv_id: str | None, version: int | None) -> int:
    """How authoritative a title/abstract is: a versioned arXiv record > an unversioned id > no id at all."""
    if version:
        return 2 + version
    return 1 if arxiv_id else 0


def _compatible(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


class _Union:
    """Union-find over record and paper nodes, each root remembering its cluster's arXiv id."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.arxiv: dict[str, str | None] = {}

    def add(self, node: str, arxiv: str | None) -> None:
        if node not in self.parent:
            self.parent[node] = node
            self.arxiv[node] = arxiv

    def find(self, node: str) -> str:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.arxiv[ra] = self.arxiv[ra] or self.arxiv[rb]


@dataclass(slots=True)
class _Cluster:
    """Records (by index) and stored papers (by id) found to be one paper, and the new keys it owns."""

    records: list[int] = field(default_factory=list)
    papers: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


def _cluster(
    rec_keys: list[list[str]],
    rec_arxiv: list[str | None],
    owner: dict[str, int],
    paper_arxiv: dict[int, str | None],
) -> list[_Cluster]:
    """Group records with each other and with stored papers through shared keys.

    A key joins two groups only if their arXiv ids do not conflict, so one paper never holds two arXiv ids.
    Records are visited in a canonical order (arXiv records first, by id) so a batch clusters the same way
    whatever order it arrives in. Each key belongs to the group that first claimed it (the stored owner, else
    the first record); `keys` lists the keys a cluster owns that the store does not know yet.
    """
    uf = _Union()
    node_of_key: dict[str, str] = {key: f"p{pid}" for key, pid in owner.items()}
    for pid, arxiv in paper_arxiv.items():
        uf.add(f"p{pid}", arxiv)
    order = sorted(range(len(rec_keys)), key=lambda i: (rec_arxiv[i] is None, rec_arxiv[i] or "", rec_keys[i]))
    for i in order:
        node = f"r{i}"
        uf.add(node, rec_arxiv[i])
        for key in rec_keys[i]:
            other = node_of_key.get(key)
            if other is None:
                node_of_key[key] = node
            elif _compatible(uf.arxiv[uf.find(node)], uf.arxiv[uf.find(other)]):
                uf.union(other, node)
    clusters: dict[str, _Cluster] = {}
    for i in range(len(rec_keys)):
        clusters.setdefault(uf.find(f"r{i}"), _Cluster()).records.append(i)
    for pid in paper_arxiv:
        root = uf.find(f"p{pid}")
        if root in clusters:
            clusters[root].papers.append(pid)
    for key, node in node_of_key.items():
        if key not in owner:
            clusters[uf.find(node)].keys.append(key)
    return list(clusters.values())


def _new_state(record: PaperRecord, key: str, now: dt.datetime) -> dict[str, Any]:
    arxiv = record_arxiv_id(record)
    return {
        "key": key,
        "arxiv_id": arxiv.id if arxiv else None,
        "arxiv_version": arxiv.version if arxiv else None,
        "doi": normalize_doi(record.doi),
        "title": record.title,
        "abstract": record.abstract,
        "authors": list(record.authors),
        "url": record.url,
        "thumbnail": record.thumbnail,
        "upvotes": record.upvotes or 0,
        "comments": record.comments or 0,
        "keywords": list(record.keywords),
        "ai_summary": record.ai_summary,
        "github_repo": record.github_repo,
        "project_page": record.project_page,
        "published_at": record.published_at,
        "featured_at": record.featured_at,
        "first_seen_at": now,
        "last_seen_at": now,
        "sources": [record.source],
    }


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def _apply(state: dict[str, Any], record: PaperRecord, now: dt.datetime) -> bool:
    """Fold a re-sighting into a paper's state; True when a fact a reader sees changed.

    Title, abstract and authors come from the most authoritative record (highest arXiv version, then any
    arXiv id, then none), so an older version never overwrites a newer one, whatever the arrival order.
    """
    before = dict(state)
    arxiv = record_arxiv_id(record)
    rank = _title_rank(arxiv.id if arxiv else None, arxiv.version if arxiv else None)
    if rank > _title_rank(state["arxiv_id"], state["arxiv_version"]):
        state["title"] = record.title
        if record.abstract:
            state["abstract"] = record.abstract
        if record.authors:
            state["authors"] = list(record.authors)
    else:
        if not state["abstract"] and record.abstract:
            state["abstract"] = record.abstract
        if not state["authors"] and record.authors:
            state["authors"] = list(record.authors)
    if arxiv:
        state["arxiv_id"] = state["arxiv_id"] or arxiv.id
        if arxiv.version and arxiv.version > (state["arxiv_version"] or 0):
            state["arxiv_version"] = arxiv.version
    if not state["doi"]:
        state["doi"] = normalize_doi(record.doi)
    if record.upvotes is not None:
        state["upvotes"] = record.upvotes
    if record.comments is not None:
        state["comments"] = record.comments
    if record.keywords:
        state["keywords"] = list(record.keywords)
    for name in ("ai_summary", "github_repo", "project_page", "thumbnail"):
        value = getattr(record, name)
        if value:
            state[name] = value
    if _url_rank(record.url) > _url_rank(state["url"]):
        state["url"] = record.url
    state["published_at"] = _earliest(state["published_at"], record.published_at)
    state["featured_at"] = _earliest(state["featured_at"], record.featured_at)
    if record.source not in state["sources"]:
        state["sources"] = [*state["sources"], record.source]
    state["last_seen_at"] = max(state["last_seen_at"], now)
    return _changed(before, state)


def _changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return any(after[k] != before.get(k) for k in after if k != "last_seen_at")


def _merge_states(states: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold several stored papers found to be one into the oldest (first seen first), keeping its id."""
    states = sorted(states, key=lambda s: (s["first_seen_at"], s["id"]))
    survivor = dict(states[0])
    best = max(states, key=lambda s: _title_rank(s["arxiv_id"], s["arxiv_version"]))
    for name in ("title", "abstract", "authors"):
        survivor[name] = best[name] or survivor[name]
    survivor["key"] = min((s["key"] for s in states), key=key_strength)
    for other in states[1:]:
        for name, value in other.items():
            if name in {"id", "key", "first_seen_at", "title", "abstract", "authors"}:
                continue
            if name == "sources":
                survivor["sources"] = survivor["sources"] + [s for s in value if s not in survivor["sources"]]
            elif name == "last_seen_at":
                survivor[name] = max(survivor[name], value)
            elif name in {"upvotes", "comments", "arxiv_version"}:
                survivor[name] = max(survivor[name] or 0, value or 0) or survivor[name]
            elif name in {"published_at", "featured_at"}:
                survivor[name] = _earliest(survivor[name], value)
            elif name == "url":
                if _url_rank(value) > _url_rank(survivor[name]):
                    survivor[name] = value
            elif not survivor.get(name) and value:
                survivor[name] = value
    return survivor


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


def _select_in(conn: Connection, column: Any, values: Iterable[Any], *cols: Any, size: int = _IN_CHUNK) -> list[Any]:
    rows: list[Any] = []
    for chunk in batched(sorted(set(values)), size):
        rows.extend(conn.execute(select(*cols).where(column.in_(chunk))).all())
    return rows


def _upsert_chunk(conn: Connection, records: list[PaperRecord], now: dt.datetime, counts: UpsertCounts) -> None:
    """One batch: look every key up at once, cluster, then write with one statement per kind of change."""
    rec_keys = [keys_for(r) for r in records]
    rec_arxiv = [k[0].removeprefix("arxiv:") if k[0].startswith("arxiv:") else None for k in rec_keys]
    wanted = {k for keys in rec_keys for k in keys}
    owner: dict[str, int] = {
        key: pid for key, pid in _select_in(conn, key_t.c.key, wanted, key_t.c.key, key_t.c.paper_id, size=_KEY_CHUNK)
    }
    stored: dict[int, dict[str, Any]] = {
        row.id: dict(row._mapping)
        for row in _select_in(conn, paper_t.c.id, owner.values(), *paper_t.columns, size=_KEY_CHUNK)
    }
    clusters = _cluster(rec_keys, rec_arxiv, owner, {pid: s["arxiv_id"] for pid, s in stored.items()})

    new_states: list[dict[str, Any]] = []
    new_clusters: list[_Cluster] = []
    updates: list[dict[str, Any]] = []
    touched: list[dict[str, Any]] = []
    add_keys: list[dict[str, Any]] = []
    sightings: list[tuple[int, PaperRecord]] = []
    for cluster in clusters:
        counts.seen += len(cluster.records)
        if not cluster.papers:
            first = records[cluster.records[0]]
            state = _new_state(first, min(cluster.keys, key=key_strength), now)
            for i in cluster.records[1:]:
                _apply(state, records[i], now)
            counts.new += 1
            counts.unchanged += len(cluster.records) - 1
            new_states.append(state)
            new_clusters.append(cluster)
            continue
        if len(cluster.papers) > 1:
            original = _merge_states([stored[p] for p in cluster.papers])
            _merge_papers(conn, original["id"], [p for p in cluster.papers if p != original["id"]])
            counts.merged += len(cluster.papers) - 1
        else:
            original = stored[cluster.papers[0]]
        state = dict(original)
        for i in cluster.records:
            _apply(state, records[i], now)
            sightings.append((state["id"], records[i]))
        state["key"] = min([state["key"], *cluster.keys], key=key_strength)
        changed = len(cluster.papers) > 1 or _changed(stored[state["id"]], state)
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
        ids = dict(_select_in(conn, paper_t.c.key, new_keys, paper_t.c.key, paper_t.c.id, size=_KEY_CHUNK))
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
        stmt = update(paper_t).where(paper_t.c.id == _bind("b_id")).values({c: _bind(f"b_{c}") for c in cols})
        conn.execute(stmt, [{"b_id": s["id"], **{f"b_{c}": s[c] for c in cols}} for s in states])
    if touched:
        stmt = update(paper_t).where(paper_t.c.id == _bind("t_id")).values(last_seen_at=_bind("t_last"))
        conn.execute(stmt, touched)
    if add_keys:
        conn.execute(insert(key_t), add_keys)
    _upsert_sightings(conn, sightings, now)


def _bind(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name)


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
            for r in _select_in(
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
                .where(sighting_t.c.paper_id == _bind("s_pid"), sighting_t.c.source == _bind("s_source"))
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


def sightings_of(conn: Connection, paper_id: int) -> list[Sighting]:
    rows = conn.execute(select(sighting_t).where(sighting_t.c.paper_id == paper_id).order_by(sighting_t.c.id)).all()
    return [Sighting.model_validate(dict(r._mapping)) for r in rows]


# ---------------------------------------------------------------- fetch runs and source state


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


# ---------------------------------------------------------------- deliveries (the outbox)


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


def deliveries_on(conn: Connection, digest_date: dt.date, subscribers: Iterable[str] | None = None) -> set[str]:
    """Addresses that already have a delivery (any status) for this local date."""
    stmt = select(delivery_t.c.subscriber).where(delivery_t.c.digest_date == digest_date)
    if subscribers is None:
        return {r[0] for r in conn.execute(stmt)}
    found: set[str] = set()
    for chunk in batched(sorted(set(subscribers)), _IN_CHUNK):
        found.update(r[0] for r in conn.execute(stmt.where(delivery_t.c.subscriber.in_(chunk))))
    return found


def last_sent_at(conn: Connection, subscribers: Iterable[str], since: dt.datetime) -> dict[str, dt.datetime]:
    """When each subscriber's latest sent (or skipped) digest created at or after `since` was composed.

    Status is checked here, not in SQL: a status condition lets the planner pick the status index and
    scan every sent digest ever for each chunk, instead of these subscribers' recent rows."""
    done = {DeliveryStatus.sent.value, DeliveryStatus.skipped.value}
    out: dict[str, dt.datetime] = {}
    for chunk in batched(sorted(set(subscribers)), _IN_CHUNK):
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
    for chunk in batched(sorted(set(subscribers)), _IN_CHUNK):
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


def insert_deliveries(conn: Connection, deliveries: Sequence[NewDelivery], now: dt.datetime) -> list[int]:
    """Store composed digests and their items; the unique (subscriber, date) makes a second one impossible."""
    if not deliveries:
        return []
    conn.execute(
        insert(delivery_t),
        [
            {
                "subscriber": d.subscriber,
                "digest_date": d.digest_date,
                "status": d.status.value,
                "attempts": 0,
                "message_id": d.message_id,
                "message": d.message,
                "created_at": now,
                "sent_at": None,
                "next_attempt_at": now if d.status is DeliveryStatus.pending else None,
            }
            for d in deliveries
        ],
    )
    ids = _delivery_ids(conn, [(d.subscriber, d.digest_date) for d in deliveries])
    as_json: dict[tuple[Any, ...], str] = {}
    items = [
        (did, it.paper_id, it.rank, it.score, _json_list(as_json, it.matched))
        for did, d in zip(ids, deliveries, strict=True)
        for it in d.items
    ]
    if items:
        # straight to the driver: per-row parameter processing cost more than the insert itself
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
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
        for chunk in batched(subscribers, _IN_CHUNK):
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
    database, guaranteed by the run lock) nothing is written: on SQLite an UPDATE rewrites the whole row,
    message bytes included, so a claim would double the writes.
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
    cols = (t.c.id, t.c.subscriber, t.c.digest_date, t.c.message_id, t.c.message, t.c.attempts, t.c.created_at)
    query = select(*cols).where(t.c.id.in_(ids)).order_by(t.c.created_at, t.c.id)
    if mark:
        query = query.where(t.c.claimed_by == owner)
    return [
        Outgoing(r.id, r.subscriber, r.digest_date, r.message_id, r.message or b"", r.attempts, r.created_at)
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
    """Extend the lease on every pending delivery `owner` still holds (its heartbeat while it sends)."""
    t = delivery_t
    stmt = (
        update(t).where(t.c.claimed_by == owner, t.c.status == DeliveryStatus.pending.value).values(claimed_until=until)
    )
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
    """Write a batch of send results (one executemany), releasing their claims."""
    if not outcomes:
        return
    stmt = (
        update(delivery_t)
        .where(delivery_t.c.id == _bind("o_id"))
        .values(
            status=_bind("o_status"),
            attempts=delivery_t.c.attempts + 1,
            last_error=_bind("o_error"),
            sent_at=_bind("o_sent_at"),
            next_attempt_at=_bind("o_next"),
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
            for o in outcomes
        ],
    )


def history(conn: Connection, since: dt.date, subscriber: str | None = None) -> list[Delivery]:
    stmt = (
        select(*[c for c in delivery_t.columns if c.name != "message"])
        .where(delivery_t.c.digest_date >= since)
        .order_by(delivery_t.c.digest_date.desc(), delivery_t.c.subscriber)
    )
    if subscriber:
        stmt = stmt.where(func.lower(delivery_t.c.subscriber) == subscriber.lower())
    return [Delivery.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]
