"""The store on a real SQLite file: schema, WAL, round trip, idempotent upsert, newer-schema refusal."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text, update

from digest import store
from digest.models import DeliveryStatus, PaperRecord
from digest.sources.file import read_file
from tests.helpers import utc


def _engine(tmp_path: Path):
    return store.open_engine(f"sqlite:///{tmp_path / 'd.db'}")


def test_schema_created_in_wal_mode(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    assert {"paper", "paper_key", "delivery", "delivery_item", "fetch_run", "meta", "sighting"} <= tables


def test_round_trip_and_reopen(db_url: str) -> None:
    engine = store.open_engine(db_url)
    rec = PaperRecord(
        source="hf",
        title="Mamba: Linear-Time Sequence Modeling",
        abstract="SSMs.",
        arxiv_id="2312.00752",
        upvotes=5,
        authors=("Albert Gu", "Tri Dao"),
        keywords=("ssm",),
    )
    with engine.begin() as conn:
        counts = store.upsert_records(conn, [rec], utc(2026, 11, 20, 6))
    assert (counts.new, counts.updated, counts.unchanged) == (1, 0, 0)
    engine.dispose()
    engine = store.open_engine(db_url)
    with engine.connect() as conn:
        (paper,) = store.papers_seen_since(conn, utc(2026, 11, 1))
    assert paper.key == "arxiv:2312.00752"
    assert paper.authors == ["Albert Gu", "Tri Dao"]
    assert paper.keywords == ["ssm"]
    assert paper.first_seen_at == utc(2026, 11, 20, 6)


def test_reseen_updates_facts_never_first_seen(db_url: str) -> None:
    engine = store.open_engine(db_url)
    rec = PaperRecord(source="hf", title="T", arxiv_id="2401.00001", upvotes=1)
    with engine.begin() as conn:
        store.upsert_records(conn, [rec], utc(2026, 11, 20))
    with engine.begin() as conn:
        counts = store.upsert_records(conn, [rec.model_copy(update={"upvotes": 9})], utc(2026, 11, 21))
        again = store.upsert_records(conn, [rec.model_copy(update={"upvotes": 9})], utc(2026, 11, 22))
        (paper,) = store.papers_seen_since(conn, utc(2026, 1, 1))
    assert (counts.updated, again.unchanged) == (1, 1)
    assert paper.upvotes == 9
    assert paper.first_seen_at == utc(2026, 11, 20)
    assert paper.last_seen_at == utc(2026, 11, 22)


def test_corpus_ingest_is_idempotent(db_url: str, corpus: list[Path]) -> None:
    engine = store.open_engine(db_url)
    records = [r for path in corpus for r in read_file(path, "corpus").records]
    with engine.begin() as conn:
        first = store.upsert_records(conn, records, utc(2026, 11, 20))
    with engine.begin() as conn:
        second = store.upsert_records(conn, records, utc(2026, 11, 21))
        total = store.count_papers(conn)
    assert first.seen == len(records)
    assert first.new == total < len(records)
    assert (second.new, second.updated, second.unchanged) == (0, 0, len(records))


def test_newer_schema_is_refused(db_url: str) -> None:
    engine = store.open_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(store.meta_t).where(store.meta_t.c.key == "schema_version").values(value="99"))
    engine.dispose()
    with pytest.raises(store.StoreError, match="schema version 99, newer than this digest understands"):
        store.open_engine(db_url)


def test_outbox_rows_and_items_round_trip(db_url: str) -> None:
    """Deliveries come back with their ids in input order; items keep rank, score and matched terms; and
    `delivered_paper_ids` reports only the asked-for papers that a sent or pending digest holds."""
    engine = store.open_engine(db_url)
    recs = [PaperRecord(source="hf", title=f"Paper {i}", abstract="x", arxiv_id=f"2611.{i:05d}") for i in range(4)]
    with engine.begin() as conn:
        store.upsert_records(conn, recs, utc(2026, 11, 20, 6))
        seen_ids: list[int] = []
        for paper in store.papers_seen_since(conn, utc(2026, 11, 1)):
            assert paper.id is not None
            seen_ids.append(paper.id)
        ids = sorted(seen_ids)
    day = utc(2026, 11, 21).date()
    rows = [
        store.NewDelivery(
            subscriber=who,
            digest_date=day,
            status=DeliveryStatus.pending,
            message_id=f"<{who}>",
            message=b"x",
            items=[
                store.NewItem(pid, rank, 1.5 / rank, ["mamba", "state space model"])
                for rank, pid in enumerate(picks, 1)
            ],
        )
        for who, picks in (("b@example.org", ids[:3]), ("a@example.org", ids[1:2]))
    ]
    sent = pickle.loads(pickle.dumps(rows))  # as a compose worker hands them to the main process
    assert sent == rows and all(type(i) is store.NewItem for r in sent for i in r.items)
    with engine.begin() as conn:
        got = store.insert_deliveries(conn, sent, utc(2026, 11, 21, 7))
    with engine.connect() as conn:
        by_id = {d.id: d.subscriber for d in store.history(conn, day)}
        assert [by_id[i] for i in got] == ["b@example.org", "a@example.org"]
        items = conn.execute(
            text("SELECT paper_id, rank, score, matched FROM delivery_item WHERE delivery_id = :d ORDER BY rank"),
            {"d": got[0]},
        ).all()
        assert [(r[0], r[1]) for r in items] == [(ids[0], 1), (ids[1], 2), (ids[2], 3)]
        assert items[1][2] == pytest.approx(0.75)
        assert all(
            (r[3] if isinstance(r[3], list) else json.loads(r[3])) == ["mamba", "state space model"] for r in items
        )
        held = store.delivered_paper_ids(
            conn, ["a@example.org", "b@example.org"], [ids[0], ids[2], ids[3]], utc(2026, 11, 20)
        )
        later = store.delivered_paper_ids(
            conn, ["a@example.org", "b@example.org"], [ids[0], ids[2], ids[3]], utc(2026, 11, 21, 8)
        )
        last = store.last_sent_at(conn, ["a@example.org", "b@example.org"], utc(2026, 11, 20))
    assert held == {"b@example.org": {ids[0], ids[2]}}, "ids[1] is in range but was not asked about"
    assert later == {}, "deliveries created before `since` are not read"
    assert last == {}, "pending digests are not 'sent'"


def test_an_index_added_since_the_database_was_made_is_created_on_open(tmp_path: Path) -> None:
    """Upgrading digest brings its new indexes to an existing file, not only to new ones."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store.open_engine(url).dispose()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("DROP INDEX ix_delivery_subscriber_created")
    store.open_engine(url).dispose()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_delivery_subscriber_created" in names


def test_streaming_papers_leaves_the_connection_as_it_was(db_url: str) -> None:
    """`paper_batches` streams its own query only: the caller's later writes on the same connection work
    (on PostgreSQL a streaming connection would send an INSERT through a server-side cursor)."""
    engine = store.open_engine(db_url)
    recs = [PaperRecord(source="hf", title=f"Paper {i}", abstract="x", arxiv_id=f"2611.{i:05d}") for i in range(5)]
    with engine.begin() as conn:
        store.upsert_records(conn, recs[:3], utc(2026, 11, 20, 6))
        batches = list(store.paper_batches(conn, utc(2026, 11, 1), size=2))
        assert [len(b) for b in batches] == [2, 1]
        store.upsert_records(conn, recs[3:], utc(2026, 11, 20, 7))
        assert store.count_papers_seen_since(conn, utc(2026, 11, 1)) == 5


def test_an_older_database_is_upgraded_with_its_message_bytes_moved_and_compressed(db_url: str) -> None:
    """Schema 1 kept each digest's bytes in its outbox row; they move to delivery_message, exactly."""
    engine = store.open_engine(db_url)
    raw = b"Subject: hello\r\n\r\n" + b"body line\r\n" * 500
    with engine.begin() as conn:
        for table in ("delivery_message", "feedback", "subscriber_state"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(
            text(
                "ALTER TABLE delivery ADD COLUMN message BYTEA"
                if "postgres" in db_url
                else "ALTER TABLE delivery ADD COLUMN message BLOB"
            )
        )
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
        conn.execute(
            text(
                "INSERT INTO delivery (subscriber, digest_date, status, attempts, message_id, message, created_at)"
                " VALUES ('ada@example.org', '2026-11-23', 'pending', 0, '<m@x>', :m, '2026-11-23 07:00:00')"
            ),
            {"m": raw},
        )
    engine.dispose()
    upgraded = store.open_engine(db_url)
    with upgraded.connect() as conn:
        version = conn.execute(select(store.meta_t.c.value).where(store.meta_t.c.key == "schema_version")).scalar()
        claimed = store.claim_pending(
            conn, "me", dt.datetime(2026, 11, 24, tzinfo=dt.UTC), dt.timedelta(60), 10, mark=False
        )
        columns = {c["name"] for c in inspect(conn).get_columns("delivery")}
        stored = conn.execute(select(store.message_t.c.data)).scalar_one()
        online = store.stored_message(conn, "ada@example.org", dt.date(2026, 11, 23))
    assert version == "2" and "message" not in columns
    assert [c.message for c in claimed] == [raw] and online == raw
    assert len(stored) < len(raw) // 4 and store.message_bytes(stored) == raw


def test_reader_models_are_upserted_in_one_batch(db_url: str) -> None:
    """A chunk's models go in one statement: new readers inserted, a retrained one replaced, the last of two
    for one address (any case) kept; on SQLite and PostgreSQL."""
    engine = store.open_engine(db_url)
    first, later = utc(2026, 11, 20, 6), utc(2026, 11, 21, 6)
    with engine.begin() as conn:
        store.save_reader_models(conn, [("ada@example.org", "fp1", b"one"), ("bob@example.org", "fp1", b"b")], first)
    with engine.begin() as conn:
        store.save_reader_models(
            conn,
            [("Ada@Example.org", "fp2", b"two"), ("cy@example.org", "fp1", b"c"), ("ada@example.org", "fp3", b"3")],
            later,
        )
        store.save_reader_models(conn, [], later)
    with engine.connect() as conn:
        held = store.reader_models(conn, ["ada@example.org", "bob@example.org", "cy@example.org", "dan@example.org"])
    assert held == {"ada@example.org": ("fp3", b"3"), "bob@example.org": ("fp1", b"b"), "cy@example.org": ("fp1", b"c")}
