"""The upsert on a real SQLite file and a real PostgreSQL database: one paper is one row, whatever source,
version, spelling or order."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, func, select

from digest import fetching, store
from digest.identity import parse_arxiv_id, title_fingerprint, title_key
from digest.models import DeliveryStatus, Paper, PaperRecord
from digest.sources.base import clean_text
from digest.sources.file import parse_page_dump, read_file
from digest.sources.hf_daily import parse_hf_item
from tests.helpers import utc

T0 = utc(2026, 11, 20, 6)


def _engine(tmp_path: Path, name: str = "d.db") -> Engine:
    return store.open_engine(f"sqlite:///{tmp_path / name}")


def _papers(conn: Connection) -> list[Paper]:
    return store.papers_seen_since(conn, utc(2000, 1, 1))


def _count(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _ingest(engine: Engine, batches: Sequence[Sequence[PaperRecord]], now: dt.datetime = T0) -> store.UpsertCounts:
    total = store.UpsertCounts()
    for batch in batches:
        with engine.begin() as conn:
            counts = store.upsert_records(conn, batch, now)
        for name in ("seen", "new", "updated", "unchanged", "merged"):
            setattr(total, name, getattr(total, name) + getattr(counts, name))
    return total


# ---------------------------------------------------------------- the corpus


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_corpus_in_any_file_order_is_361_papers_then_all_unchanged(
    db_url: str, corpus: list[Path], order: tuple[int, ...]
) -> None:
    files = [corpus[i] for i in order]
    engine = store.open_engine(db_url)
    for day, now in enumerate((T0, T0 + dt.timedelta(days=1))):
        with engine.begin() as conn:
            reports = [fetching.store_fetched(conn, path.stem, read_file(path, path.stem), 0.0, now) for path in files]
            runs = store.fetch_runs(conn)[: len(files)]
            papers = _papers(conn)
            sightings = _count(conn, store.sighting_t)
        seen = [r.counts.seen for r in reports]
        assert sum(seen) == 382
        assert len(papers) == 361
        assert sightings == 382
        for report, run in zip(reversed(reports), runs, strict=True):
            assert (run.source, run.seen, run.new, run.updated, run.unchanged) == (
                report.source,
                report.counts.seen,
                report.counts.new,
                report.counts.updated,
                report.counts.unchanged,
            )
        if day == 0:
            assert sum(r.counts.new for r in reports) == 361
            assert all(r.counts.seen == r.counts.new + r.counts.updated + r.counts.unchanged for r in reports)
        else:
            assert [(r.counts.new, r.counts.updated, r.counts.unchanged) for r in reports] == [(0, 0, n) for n in seen]
    ell_p = [p for p in papers if "Sensitivity Sampling" in p.title]
    assert len(ell_p) == 1
    assert sorted(ell_p[0].sources) == sorted(path.stem for path in corpus)
    assert ell_p[0].first_seen_at == T0 and ell_p[0].last_seen_at == T0 + dt.timedelta(days=1)


# ---------------------------------------------------------------- one paper, four sources

TITLE_TEX = "Sparse $\\ell_1$ Routing for Mixture-of-Experts"
TITLE_DUMP = "Sparse ell_1 Routing for Mixture-of-Experts"
ABSTRACT = "We route tokens sparsely. " * 8


def hf_record() -> PaperRecord:
    item = {
        "paper": {
            "id": "2401.01234",
            "title": TITLE_TEX,
            "summary": ABSTRACT,
            "authors": [{"name": "Ada Lovelace", "hidden": False}],
            "upvotes": 42,
            "publishedAt": "2024-01-03T18:00:00.000Z",
            "submittedOnDailyAt": "2024-01-04T08:00:00.000Z",
            "ai_keywords": ["mixture of experts", "routing"],
        },
        "title": TITLE_TEX,
        "numComments": 3,
        "thumbnail": "https://cdn.example.org/t.png",
    }
    return parse_hf_item(item, "hf")


def atom_record() -> PaperRecord:
    entry_id = "http://arxiv.org/abs/2401.01234v2"
    aid = parse_arxiv_id(entry_id)
    assert aid is not None
    return PaperRecord(
        source="arxiv",
        title=clean_text("Sparse $\\ell_1$ Routing for\n  Mixture-of-Experts"),
        abstract="v2 abstract. " + ABSTRACT,
        authors=("Ada Lovelace", "Charles Babbage"),
        arxiv_id=f"{aid.id}v{aid.version}",
        url=f"https://arxiv.org/abs/{aid.id}",
        published_at=utc(2024, 1, 3, 18),
        external_id=entry_id,
    )


def rss_record() -> PaperRecord:
    guid = "oai:arXiv.org:2401.01234v3"
    aid = parse_arxiv_id(guid)
    assert aid is not None
    return PaperRecord(
        source="rss",
        title="Sparse $\\ell_1$ Routing for Mixture of Experts (v3)",
        abstract="v3 abstract. " + ABSTRACT,
        authors=tuple(a.strip() for a in ["Ada Lovelace", " Charles Babbage", " Mary Somerville"]),
        arxiv_id=f"{aid.id}v{aid.version}",
        url=f"https://arxiv.org/abs/{aid.id}",
        external_id=guid,
    )


def dump_record() -> PaperRecord:
    (record,) = parse_page_dump(f"new\nSubscribe\nDaily Papers\nJan 4\n{TITLE_DUMP}\n", "pages").records
    return record


def four_records() -> list[PaperRecord]:
    return [hf_record(), atom_record(), rss_record(), dump_record()]


def _assert_one_paper_four_sightings(engine: Engine) -> None:
    with engine.connect() as conn:
        (paper,) = _papers(conn)
        sightings = store.sightings_of(conn, paper.id or 0)
        keys = {r.key for r in conn.execute(select(store.key_t)).all()}
    assert paper.key == "arxiv:2401.01234"
    assert (paper.arxiv_id, paper.arxiv_version) == ("2401.01234", 3)
    assert paper.title.endswith("(v3)") and paper.abstract.startswith("v3 abstract.")
    assert paper.authors == ["Ada Lovelace", "Charles Babbage", "Mary Somerville"]
    assert (paper.upvotes, paper.comments, paper.keywords) == (42, 3, ["mixture of experts", "routing"])
    assert paper.url == "https://huggingface.co/papers/2401.01234"
    assert paper.published_at == utc(2024, 1, 3, 18)
    assert paper.first_seen_at == T0
    assert sorted(paper.sources) == ["arxiv", "hf", "pages", "rss"]
    assert {(s.source, s.external_id) for s in sightings} == {
        ("hf", "2401.01234"),
        ("arxiv", "http://arxiv.org/abs/2401.01234v2"),
        ("rss", "oai:arXiv.org:2401.01234v3"),
        ("pages", None),
    }
    assert keys == {
        "arxiv:2401.01234",
        title_key(title_fingerprint(TITLE_DUMP)),
        "title:sparseell1routingformixtureofexpertsv3",
    }


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_four_sources_one_row_in_any_arrival_order(db_url: str, order: tuple[int, ...]) -> None:
    records = [four_records()[i] for i in order]
    engine = store.open_engine(db_url)
    counts = _ingest(engine, [[r] for r in records])
    # v3 retitled the paper, so a title-only line seen before the HF/Atom records is a second paper until they link it
    assert counts.seen == 4 and counts.new - counts.merged == 1 and counts.merged <= 1
    _assert_one_paper_four_sightings(engine)
    again = _ingest(engine, [records], T0 + dt.timedelta(hours=1))
    assert (again.new, again.updated, again.unchanged) == (0, 0, 4)


def test_four_sources_one_row_in_one_batch(db_url: str) -> None:
    engine = store.open_engine(db_url)
    counts = _ingest(engine, [list(reversed(four_records()))])
    assert (counts.seen, counts.new, counts.updated, counts.unchanged) == (4, 1, 0, 3)
    _assert_one_paper_four_sightings(engine)


# ---------------------------------------------------------------- versions


@pytest.mark.parametrize("batches", [[["v3"], ["v1"]], [["v1", "v3"]], [["v3", "v1"]], [["v1"], ["v3"]]])
def test_older_version_never_overwrites_newer(db_url: str, batches: list[list[str]]) -> None:
    def version(v: str) -> PaperRecord:
        return PaperRecord(
            source=f"arxiv-{v}",
            title=f"Title as of {v}",
            abstract=f"Abstract {v}.",
            authors=(f"Author {v}",),
            arxiv_id=f"2401.00001{v}",
        )

    engine = store.open_engine(db_url)
    _ingest(engine, [[version(v) for v in batch] for batch in batches])
    hf = PaperRecord(source="hf", title="HF spelling", abstract="HF abstract.", arxiv_id="2401.00001", upvotes=7)
    _ingest(engine, [[hf]])
    with engine.connect() as conn:
        (paper,) = _papers(conn)
    assert (paper.title, paper.abstract, paper.authors) == ("Title as of v3", "Abstract v3.", ["Author v3"])
    assert (paper.arxiv_version, paper.upvotes) == (3, 7)


def test_title_only_sighting_takes_the_better_title_later(db_url: str) -> None:
    engine = store.open_engine(db_url)
    _ingest(engine, [[PaperRecord(source="pages", title="sharper bounds for ell_p sensitivity sampling")]])
    hf = PaperRecord(source="hf", title="Sharper Bounds for $\\ell_p$ Sensitivity Sampling", arxiv_id="2303.00001")
    counts = _ingest(engine, [[hf]])
    with engine.connect() as conn:
        (paper,) = _papers(conn)
    assert (counts.new, counts.updated) == (0, 1)
    assert (paper.title, paper.key) == (hf.title, "arxiv:2303.00001")


# ---------------------------------------------------------------- merging stored papers


def _deliver(conn: Connection, subscriber: str, paper_id: int, day: dt.date) -> None:
    (did,) = store.insert_deliveries(
        conn,
        [
            store.NewDelivery(
                subscriber,
                day,
                DeliveryStatus.pending,
                f"<{day}@x>",
                b"msg",
                [store.NewItem(paper_id, 1, 1.0, ["moe"])],
            )
        ],
        T0,
    )
    store.record_outcomes(conn, [store.SendOutcome(did, DeliveryStatus.sent)], T0)


def test_two_stored_papers_found_to_be_one_are_merged_with_their_history(db_url: str) -> None:
    engine = store.open_engine(db_url)
    day1, day2, day3 = T0, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)
    old_title, new_title = "Tiny Experts Route Tokens", "Tiny Experts Route Tokens Sparsely at Scale"
    with engine.begin() as conn:
        store.upsert_records(conn, [PaperRecord(source="pages", title=old_title, abstract="A.")], day1)
        (a,) = _papers(conn)
        _deliver(conn, "ada@example.org", a.id or 0, day1.date())
    with engine.begin() as conn:
        store.upsert_records(
            conn,
            [
                PaperRecord(source="arxiv", title=new_title, abstract="B v2.", arxiv_id="2402.00002v2"),
                PaperRecord(source="pages", title=new_title),
            ],
            day2,
        )
        b = next(p for p in _papers(conn) if p.id != a.id)
        _deliver(conn, "bob@example.org", b.id or 0, day2.date())
    assert b.key == "arxiv:2402.00002"

    hf = PaperRecord(source="hf", title=old_title, arxiv_id="2402.00002", upvotes=11)
    with engine.begin() as conn:
        counts = store.upsert_records(conn, [hf], day3)
    assert (counts.new, counts.updated, counts.merged) == (0, 1, 1)
    with engine.connect() as conn:
        (paper,) = _papers(conn)
        sightings = {s.source: s for s in store.sightings_of(conn, paper.id or 0)}
        key_owners = {r.paper_id for r in conn.execute(select(store.key_t)).all()}
        sent = store.delivered_paper_ids(conn, ["ada@example.org", "bob@example.org"], [paper.id or 0], day1)
        items = conn.execute(select(store.item_t.c.paper_id)).scalars().all()
    assert paper.id == a.id
    assert (paper.first_seen_at, paper.last_seen_at) == (day1, day3)
    assert (paper.key, paper.arxiv_id, paper.arxiv_version) == ("arxiv:2402.00002", "2402.00002", 2)
    assert (paper.title, paper.abstract, paper.upvotes) == (new_title, "B v2.", 11)
    assert sorted(paper.sources) == ["arxiv", "hf", "pages"]
    assert (sightings["pages"].first_seen_at, sightings["pages"].last_seen_at) == (day1, day2)
    assert set(sightings) == {"pages", "arxiv", "hf"}
    assert key_owners == {a.id}
    assert items == [a.id, a.id]
    assert sent == {"ada@example.org": {a.id}, "bob@example.org": {a.id}}


# ---------------------------------------------------------------- different papers stay apart


def test_same_title_different_arxiv_ids_stay_two_papers(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    x = PaperRecord(source="arxiv", title="A Survey of Mamba", arxiv_id="2408.01129", doi="10.1000/shared")
    y = PaperRecord(source="arxiv", title="A Survey of Mamba", arxiv_id="2404.18861", doi="10.1000/shared")
    plain = PaperRecord(source="pages", title="A survey of Mamba")
    for batches in ([[plain, x, y]], [[y], [x, plain]]):
        with tempfile.TemporaryDirectory() as tmp:
            engine = _engine(Path(tmp))
            counts = _ingest(engine, batches)
            with engine.connect() as conn:
                papers = _papers(conn)
            assert (counts.new, len(papers)) == (2, 2)
            assert sorted(p.arxiv_id or "" for p in papers) == ["2404.18861", "2408.01129"]
            assert sorted(len(p.sources) for p in papers) == [1, 2]


def test_reseen_paper_updates_mutable_facts_but_never_first_seen(db_url: str) -> None:
    engine = store.open_engine(db_url)
    rec = PaperRecord(source="hf", title="T", arxiv_id="2401.00009", upvotes=1, comments=0, keywords=("a",))
    _ingest(engine, [[rec]], T0)
    later = rec.model_copy(update={"upvotes": 5, "comments": 2, "keywords": ("a", "b")})
    counts = _ingest(
        engine, [[later, PaperRecord(source="rss", title="T", arxiv_id="2401.00009v1")]], T0 + dt.timedelta(days=1)
    )
    with engine.connect() as conn:
        (paper,) = _papers(conn)
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 1)
    assert (paper.upvotes, paper.comments, paper.keywords, paper.sources) == (5, 2, ["a", "b"], ["hf", "rss"])
    assert (paper.first_seen_at, paper.last_seen_at) == (T0, T0 + dt.timedelta(days=1))


def test_unchanged_paper_only_moves_last_seen(db_url: str) -> None:
    engine = store.open_engine(db_url)
    rec = PaperRecord(source="hf", title="T", arxiv_id="2401.00009", upvotes=1)
    _ingest(engine, [[rec]], T0)
    counts = _ingest(engine, [[rec, rec]], T0 + dt.timedelta(days=2))
    with engine.connect() as conn:
        (paper,) = _papers(conn)
        (sighting,) = store.sightings_of(conn, paper.id or 0)
    assert (counts.seen, counts.updated, counts.unchanged) == (2, 0, 2)
    assert paper.last_seen_at == sighting.last_seen_at == T0 + dt.timedelta(days=2)
    assert sighting.first_seen_at == T0


# ---------------------------------------------------------------- properties: idempotent, order-independent

_SOURCES = ("hf", "arxiv", "rss", "pages")


@st.composite
def paper_universe(draw: st.DrawFn) -> list[PaperRecord]:
    """Sightings of a handful of distinct papers from several sources, with versions and spellings varied.

    A paper with an arXiv id was retitled in v2 (the RSS record); a page dump may carry either title, so some
    arrival orders first make two papers that a later record shows to be one.
    """
    records: list[PaperRecord] = []
    for i in range(draw(st.integers(1, 8))):
        has_id = draw(st.booleans())
        title = f"Paper {i}: On $\\ell_{i}$ Routing for Mixture-of-Experts"
        spellings = [title, title.upper(), f"paper {i}: on ell_{i} routing for mixture of experts"]
        pool = _SOURCES if has_id else ("pages", "files")
        sources = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
        retitled = f"Paper {i} Revised: Sparse Routing at Scale"
        for source in sources:
            spelling = draw(st.sampled_from(spellings))
            arxiv_id = None
            if has_id and source == "hf":
                arxiv_id = f"2401.{10000 + i}"
            elif has_id and source == "arxiv":
                arxiv_id = f"2401.{10000 + i}v1"
            elif has_id and source == "rss":
                arxiv_id, spelling = f"2401.{10000 + i}v2", retitled
            elif has_id and "rss" in sources:
                linked = {"hf", "arxiv"} & set(sources)
                spelling = draw(st.sampled_from([*spellings, retitled])) if linked else retitled
            upvotes = i if source == "hf" else None
            abstract = f"Abstract of paper {i}."
            records.append(
                PaperRecord(source=source, title=spelling, abstract=abstract, arxiv_id=arxiv_id, upvotes=upvotes)
            )
    return records


def _snapshot(engine: Engine) -> set[tuple[Any, ...]]:
    with engine.connect() as conn:
        papers = _papers(conn)
        sightings = conn.execute(select(store.sighting_t.c.paper_id, store.sighting_t.c.source)).all()
    by_paper: dict[int, set[str]] = {}
    for pid, source in sightings:
        by_paper.setdefault(pid, set()).add(source)
    return {
        (
            p.key,
            p.arxiv_id,
            p.arxiv_version,
            title_key(title_fingerprint(p.title)),
            p.abstract,
            p.upvotes,
            frozenset(p.sources),
            frozenset(by_paper[p.id or 0]),
        )
        for p in papers
    }


def _split(records: list[PaperRecord], cuts: list[int]) -> list[list[PaperRecord]]:
    bounds = [0, *sorted(c % (len(records) + 1) for c in cuts), len(records)]
    return [records[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=paper_universe(), seed=st.randoms(use_true_random=False), cuts=st.lists(st.integers(0, 32), max_size=10))
def test_ingestion_is_idempotent_and_order_independent(
    records: list[PaperRecord], seed: random.Random, cuts: list[int]
) -> None:
    shuffled = list(records)
    seed.shuffle(shuffled)
    with tempfile.TemporaryDirectory() as tmp:
        one, two = _engine(Path(tmp), "one.db"), _engine(Path(tmp), "two.db")
        first = _ingest(one, [records])
        event(f"merges while ingesting in batches: {_ingest(two, _split(shuffled, cuts)).merged > 0}")
        snapshot = _snapshot(one)
        assert _snapshot(two) == snapshot
        assert first.new - first.merged == len(snapshot) == len({r.abstract for r in records})
        for engine in (one, two):
            again = _ingest(engine, _split(list(reversed(shuffled)), cuts), T0 + dt.timedelta(days=1))
            assert (again.new, again.updated, again.unchanged) == (0, 0, len(records))
            assert _snapshot(engine) == snapshot
        one.dispose()
        two.dispose()
