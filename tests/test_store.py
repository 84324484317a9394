"""The store on a real SQLite file: schema, WAL, round trip, idempotent upsert, newer-schema refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text, update

from digest import store
from digest.models import PaperRecord
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
