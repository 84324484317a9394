"""Benchmark: upsert 10,000 records into SQLite stores already holding N papers, and how the time grows with N.

    .venv/bin/python benchmarks/upsert.py                          # N = 10k and 100k (modest default)
    .venv/bin/python benchmarks/upsert.py --sizes 100000,1000000   # the issue's figures (1M builds once, ~1 min)

Big stores are built with raw `executemany` bulk inserts (same schema, same key format as the real upsert) and
cached under the temp dir, so later runs only copy the file. Each measurement copies the cached store and
times `upsert_records` plus the commit, for 10k new papers and for 10k re-sightings of stored ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from digest import store
from digest.identity import title_fingerprint, title_key
from digest.models import PaperRecord

FORMAT = 3  # bump when the schema or the generated data changes, so stale cached stores are rebuilt
WORDS = [
    "sparse",
    "linear",
    "attention",
    "state",
    "space",
    "model",
    "mixture",
    "experts",
    "routing",
    "diffusion",
    "transformer",
    "quantization",
    "bound",
    "regret",
    "bandit",
    "kernel",
    "graph",
    "neural",
    "network",
    "convex",
    "optimal",
    "transport",
    "language",
    "retrieval",
    "scaling",
    "law",
    "token",
    "cache",
    "speculative",
    "decoding",
    "reinforcement",
    "learning",
    "policy",
    "gradient",
    "variance",
    "reduction",
    "robust",
    "private",
    "federated",
    "contrastive",
    "representation",
    "equivariant",
    "operator",
    "spectral",
    "manifold",
    "stochastic",
    "approximation",
    "sampling",
    "sketch",
    "coreset",
    "pruning",
    "distillation",
    "lottery",
    "ticket",
    "memory",
    "recurrent",
    "parallel",
]
NOW = dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)
STAMP = "2026-11-01 06:00:00.000000"


def arxiv_id(n: int, year: int) -> str:
    """A distinct valid new-style id: 90,000 numbers a month from `year`."""
    month, number = divmod(n, 90_000)
    return f"{year + month // 12:02d}{month % 12 + 1:02d}.{number + 1:05d}"


def title(n: int, tag: str) -> str:
    """A distinct, reproducible title for paper `n` (so re-sightings can spell it again)."""
    mixed = (n * 2654435761) & 0xFFFFFFFF
    words = (WORDS[(mixed >> (5 * j)) % len(WORDS)] for j in range(6))
    return f"{' '.join(words).title()} {tag}{n}"


def build_store(path: Path, size: int) -> None:
    """A store holding `size` papers (80% with an arXiv id, 20% title-only), written with bulk inserts."""
    engine = store.open_engine(f"sqlite:///{path}")
    engine.dispose()
    rng = random.Random(size)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-400000")
    chunk = 50_000
    with db:
        for start in range(0, size, chunk):
            papers, keys, sightings = [], [], []
            for pid in range(start + 1, min(start + chunk, size) + 1):
                text = title(pid, "S")
                tkey = title_key(title_fingerprint(text))
                aid = arxiv_id(pid, 18) if pid % 5 else None
                key = f"arxiv:{aid}" if aid else tkey
                abstract = " ".join(rng.choice(WORDS) for _ in range(40))
                source = "hf" if aid else "pages"
                papers.append(
                    (
                        pid,
                        key,
                        aid,
                        1 if aid else None,
                        text,
                        abstract,
                        '["A. Author", "B. Author"]',
                        3,
                        STAMP,
                        STAMP,
                        json.dumps([source]),
                    )
                )
                keys.append((tkey, pid))
                if aid:
                    keys.append((key, pid))
                sightings.append((pid, pid, source, aid, STAMP, STAMP))
            db.executemany(
                "INSERT INTO paper (id, key, arxiv_id, arxiv_version, title, abstract, authors, upvotes, comments,"
                " keywords, first_seen_at, last_seen_at, sources) VALUES (?,?,?,?,?,?,?,?,0,'[]',?,?,?)",
                papers,
            )
            db.executemany("INSERT INTO paper_key (key, paper_id) VALUES (?, ?)", keys)
            db.executemany(
                "INSERT INTO sighting (id, paper_id, source, external_id, first_seen_at, last_seen_at)"
                " VALUES (?,?,?,?,?,?)",
                sightings,
            )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def new_records(count: int) -> list[PaperRecord]:
    """Fresh papers as the sources bring them: 60% HF items, 25% arXiv entries (versioned), 15% title-only."""
    rng = random.Random(7)
    out = []
    for n in range(count):
        text = title(n, "N")
        abstract = " ".join(rng.choice(WORDS) for _ in range(40))
        aid = arxiv_id(n, 26)
        kind = n % 20
        if kind < 12:
            out.append(
                PaperRecord(
                    source="hf",
                    title=text,
                    abstract=abstract,
                    arxiv_id=aid,
                    upvotes=rng.randint(0, 300),
                    comments=rng.randint(0, 9),
                    authors=("A. Author",),
                    keywords=("sparse", "routing"),
                    url=f"https://huggingface.co/papers/{aid}",
                    external_id=aid,
                )
            )
        elif kind < 17:
            out.append(
                PaperRecord(
                    source="arxiv",
                    title=text,
                    abstract=abstract,
                    arxiv_id=f"{aid}v2",
                    authors=("A. Author",),
                    url=f"https://arxiv.org/abs/{aid}",
                    external_id=f"http://arxiv.org/abs/{aid}v2",
                )
            )
        else:
            out.append(PaperRecord(source="pages", title=text, abstract=abstract))
    return out


def reseen_records(count: int, size: int) -> list[PaperRecord]:
    """Re-sightings of stored papers: HF items with new upvotes (by arXiv id) and page lines (by title)."""
    pick = random.Random(11).sample(range(1, size + 1), count)
    out = []
    for pid in pick:
        if pid % 5:
            aid = arxiv_id(pid, 18)
            out.append(PaperRecord(source="hf", title=f"Retitled {pid}", arxiv_id=aid, upvotes=pid % 97 + 1))
        else:
            out.append(PaperRecord(source="pages-2", title=title(pid, "S").upper()))
    return out


def timed_upsert(path: Path, records: list[PaperRecord]) -> tuple[float, store.UpsertCounts]:
    os.sync()  # the fresh copy's dirty pages are flushed before the clock starts, not during the upsert
    engine = store.open_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        store.count_papers(conn)
    started = time.perf_counter()
    with engine.begin() as conn:
        counts = store.upsert_records(conn, records, NOW)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, counts


def cached_store(cache: Path, size: int, rebuild: bool) -> Path:
    path = cache / f"store-{size}-f{FORMAT}.db"
    if rebuild or not path.exists():
        for stale in cache.glob(f"store-{size}-*"):
            stale.unlink()
        started = time.perf_counter()
        build_store(path, size)
        seconds, megabytes = time.perf_counter() - started, path.stat().st_size / 1e6
        print(f"built {size:,}-paper store in {seconds:.1f}s ({megabytes:.0f} MB)")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="stored paper counts, comma-separated")
    parser.add_argument("--records", type=int, default=10_000, help="records per upsert")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best is reported")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "digest-bench")
    parser.add_argument("--rebuild", action="store_true", help="rebuild cached stores")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    fresh = new_records(args.records)
    rows = []
    for size in sizes:
        source = cached_store(args.cache, size, args.rebuild)
        reseen = reseen_records(args.records, size)
        best_new, best_seen = float("inf"), float("inf")
        for _ in range(args.repeat):
            work = args.cache / f"work-{size}.db"
            shutil.copyfile(source, work)
            seconds, counts = timed_upsert(work, fresh)
            assert counts.new == args.records, counts
            best_new = min(best_new, seconds)
            shutil.copyfile(source, work)
            seconds, counts = timed_upsert(work, reseen)
            assert counts.new == 0 and counts.seen == args.records, counts
            best_seen = min(best_seen, seconds)
            for leftover in args.cache.glob(f"work-{size}.db*"):
                leftover.unlink()
        rows.append((size, best_new, best_seen))
    base_new, base_seen = rows[0][1], rows[0][2]
    print(f"\nupsert of {args.records:,} records, best of {args.repeat} (SQLite, WAL, one transaction)")
    head = ("stored papers", "new rec/s", "new s", "x", "re-seen rec/s", "re-seen s", "x")
    print("{:>14} {:>11} {:>7} {:>5} {:>14} {:>10} {:>5}".format(*head))
    for size, new_s, seen_s in rows:
        print(
            f"{size:>14,} {args.records / new_s:>11,.0f} {new_s:>7.3f} {new_s / base_new:>5.2f}"
            f" {args.records / seen_s:>14,.0f} {seen_s:>10.3f} {seen_s / base_seen:>5.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
