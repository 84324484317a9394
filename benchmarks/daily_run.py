"""The daily job at scale: a realistic world in a temp dir, run through the real code path, timed per phase.

Run from the repository root:
    .venv/bin/python -m benchmarks.daily_run --subscribers 1000 [--papers 2000] [--transport smtp|null]
Prints one JSON line per phase (world, config, fetch, compose, send and, with smtp, raw_smtp for comparison):
items, seconds, items/s and the peak RSS so far (MB) of this process; compose adds the compose workers' peak.
(Not `RUSAGE_CHILDREN`: a spawned child's `ru_maxrss` starts at its parent's size at the fork.)
`--days N` runs N consecutive days, each with a new batch of papers: day 2 on is the steady state, where
every subscriber has a history (last digest, papers already sent) and the outbox holds earlier days.
`--transport smtp` sends to a local sink: Debian's `smtp-sink` (postfix) when installed, else aiosmtpd.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import aiosmtplib
from sqlalchemy import Engine

from benchmarks.sink import sink
from benchmarks.world import build_world, later_papers, write_papers, write_world
from digest import fetching, pipeline, planner, sending, store
from digest.compose import Composer
from digest.config import Settings, load_config
from digest.deliver import Envelope, ResultSink, SendResult, SmtpTransport, Transport
from digest.memory import limit_arenas, peak_rss_mb
from digest.planner import default_workers

SECRET = "benchmark-unsubscribe-secret"


class NullTransport:
    """Accepts every message without sending it: isolates composing and storing from the network."""

    async def send(
        self, batch: Sequence[Envelope], on_result: ResultSink | None = None, stop: object = None
    ) -> list[SendResult]:
        results = [SendResult(env.delivery_id, True) for env in batch]
        if on_result is not None:
            for result in results:
                on_result(result)
        return results

    async def close(self) -> None:
        return None


def report(phase: str, items: int, seconds: float, **extra: object) -> None:
    line = {
        "phase": phase,
        "items": items,
        "seconds": round(seconds, 3),
        "items_per_s": round(items / seconds, 1) if seconds > 0 else None,
        "peak_rss_mb": peak_rss_mb(),
        **extra,
    }
    print(json.dumps(line), flush=True)


async def raw_smtp(port: int, messages: Iterable[tuple[str, bytes]], sender: str) -> int:
    """The floor for the send phase: one connection, one sendmail after another, nothing recorded."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, use_tls=False)
    await client.connect()
    sent = 0
    for rcpt, data in messages:
        await client.sendmail(sender, [rcpt], data)
        sent += 1
    await client.quit()
    return sent


def _write_world(
    papers: int, subscribers: int, folder: Path, tables: dict[str, dict[str, object]], follow_share: float
) -> None:
    write_world(build_world(papers, subscribers, follow_share=follow_share), folder, tables)


def _write_papers(papers: int, day_index: int, day: dt.date, path: Path) -> None:
    write_papers(later_papers(papers, day_index, day), path)


def _in_child(target: Callable[..., None], *args: object) -> None:
    """Run `target` in a child process, so this process's peak RSS is the job's alone."""
    child = multiprocessing.get_context("spawn").Process(target=target, args=args)
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"building the world failed (exit {child.exitcode})")


def run(args: argparse.Namespace, folder: Path, port: int | None) -> None:
    started = time.perf_counter()
    tables: dict[str, dict[str, object]] = {
        "": {"database_url": "sqlite:///digest.db", "lookback_days": 7},
        "schedule": {"send_at": "00:00", "timezone": "UTC"},
        "delivery": {
            "transport": "smtp" if port else "maildir",
            "from": "Daily Papers <papers@example.org>",
            "unsubscribe_url": "https://papers.example.org/unsubscribe?email={email}&token={token}",
            "unsubscribe_secret": SECRET,
            "keep_message_days": args.keep_message_days,
        },
        "smtp": {"host": "127.0.0.1", "port": port or 25, "security": "none"},
    }
    if not args.no_web:
        # as deployed with `digest serve`: every digest carries signed links (feedback under each paper)
        tables["web"] = {"base_url": "https://papers.example.org", "secret": SECRET}
    _in_child(_write_world, args.papers, args.subscribers, folder, tables, args.follow_share)
    config = folder / "digest.toml"
    report("world", args.subscribers, time.perf_counter() - started, papers=args.papers)

    started = time.perf_counter()
    settings = load_config(config)
    engine = store.open_engine(settings.database_url)
    report("config", len(settings.subscribers), time.perf_counter() - started)

    first_day = pipeline.utcnow()
    built = 0
    for day_index in range(args.days):
        now = first_day + dt.timedelta(days=day_index)
        day = {"day": day_index + 1} if args.days > 1 else {}
        if day_index:
            # the next day's new papers replace the file the world's source reads; yesterday's stay stored
            _in_child(_write_papers, args.papers, day_index, now.date(), folder / "papers.jsonl")
        built = run_day(args, engine, settings, now, port, day)
        started = time.perf_counter()
        pruned = pipeline.prune(engine, settings, now)  # as `digest run` does once a day
        report(
            "prune",
            pruned.messages,
            time.perf_counter() - started,
            **day,
            freed_mb=round(pruned.freed_bytes / 1e6, 1),
            database_mb=round((store.database_size(engine) or 0) / 1e6, 1),
        )
    if port and built:
        with engine.connect() as conn:
            # streamed, so the comparison does not hold thousands of messages in this process's RSS
            d, m = store.delivery_t, store.message_t
            rows = conn.execution_options(yield_per=100).execute(
                d.select()
                .with_only_columns(d.c.subscriber, m.c.data)
                .join(m, m.c.delivery_id == d.c.id)
                .order_by(d.c.id.desc())
                .limit(min(args.raw_limit, built))
            )
            started = time.perf_counter()
            count = asyncio.run(
                raw_smtp(port, ((r[0], store.message_bytes(r[1], conn)) for r in rows), "papers@example.org")
            )
            report("raw_smtp", count, time.perf_counter() - started)


def run_day(
    args: argparse.Namespace,
    engine: Engine,
    settings: Settings,
    now: dt.datetime,
    port: int | None,
    day: dict[str, int],
) -> int:
    """One day of the job (fetch, compose, send) at `now`, a JSON line per phase; returns digests built."""
    started = time.perf_counter()
    fetched = fetching.fetch(engine, settings, now)
    report("fetch", sum(r.counts.seen for r in fetched), time.perf_counter() - started, **day)
    if args.feedback_share:
        started = time.perf_counter()
        readers, labels = give_feedback(
            engine, settings, now, args.feedback_share, day.get("day", 1), args.feedback_again
        )
        report("feedback", labels, time.perf_counter() - started, **day, readers=readers)

    started = time.perf_counter()
    workers = default_workers(len(settings.subscribers)) if args.workers is None else args.workers
    planned = planner.plan_and_record(engine, settings, Composer(), now, workers=workers)
    built, skipped = planned.built, planned.skipped
    st = planned.stats
    report(
        "compose",
        built + skipped,
        time.perf_counter() - started,
        **day,
        built=built,
        skipped=skipped,
        workers=workers,
        rank_calls=st.rank_calls,
        rank_s=round(st.rank_seconds, 2),
        render_mime_s=round(st.compose_seconds, 2),
        store_s=round(st.store_seconds, 2),
        worker_peak_rss_mb=st.peak_rss_mb,
    )
    del planned

    if args.skip_send:
        return built
    transport: Transport = SmtpTransport(settings.smtp) if port else NullTransport()
    started = time.perf_counter()

    async def send_all() -> sending.SendReport:
        try:
            return await sending.send_pending(engine, settings, transport, now)
        finally:
            await transport.close()  # on the loop its pooled connections belong to

    sent = asyncio.run(send_all())
    report("send", sent.sent, time.perf_counter() - started, **day, transport=args.transport, failed=sent.failed)
    return built


def give_feedback(
    engine: Engine, settings: Settings, now: dt.datetime, share: float, day: int, again: float | None = None
) -> tuple[int, int]:
    """A `share` of subscribers rate 5 of the day's papers (3 more, 2 less), as their "more/less like this"
    clicks would. By default a new `share` each day, every one of whose models is stale, so the day's compose
    retrains them all (the worst case). With `again`, the same readers have feedback every day: all rate on
    day 1, then an `again` share of them each day; the others' models are cached. Returns (readers, labels)."""
    rng = random.Random(day)
    with engine.begin() as conn:
        pool = [p.id for p in store.papers_seen_since(conn, now - dt.timedelta(hours=12)) if p.id is not None]
        if again is None:
            readers = [s for s in settings.subscribers if rng.random() < share]
        else:
            fixed = random.Random(0)
            raters = [s for s in settings.subscribers if fixed.random() < share]
            readers = raters if day == 1 else [s for s in raters if rng.random() < again]
        for sub in readers:
            for n, paper_id in enumerate(rng.sample(pool, min(5, len(pool)))):
                store.record_feedback(conn, sub.email, paper_id, 1 if n < 3 else -1, now, "bench")
    return len(readers), 5 * len(readers)


def main() -> None:
    limit_arenas()  # as `digest` does at process start
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--transport", choices=("smtp", "null"), default="smtp")
    parser.add_argument("--raw-limit", type=int, default=5000, help="messages for the raw SMTP comparison")
    parser.add_argument("--workers", type=int, help="compose processes (default: 0 below 2,000 subscribers, else 2)")
    parser.add_argument("--days", type=int, default=1, help="days to run, each with new papers (steady state)")
    parser.add_argument(
        "--skip-send",
        action="store_true",
        help="stop after composing (with --days: digests never sent leave readers without a last digest, so "
        "the next day's pool holds every day's papers, not the steady state)",
    )
    parser.add_argument("--no-web", action="store_true", help="no [web] base_url: digests without web links")
    parser.add_argument("--keep-message-days", type=int, default=30, help="[delivery] keep_message_days")
    parser.add_argument("--keep", type=Path, help="build the world in this folder and keep it")
    parser.add_argument(
        "--feedback-share",
        type=float,
        default=0.0,
        help="share of subscribers who rate 5 new papers each day before compose (their models all rebuilt)",
    )
    parser.add_argument(
        "--feedback-again",
        type=float,
        help="the same --feedback-share readers every day, this share of them rating again after day 1 (the "
        "rest keep their cached models); default: a new share of readers each day",
    )
    parser.add_argument(
        "--follow-share",
        type=float,
        default=0.1,
        help="share of subscribers who follow one or two authors (default: %(default)s)",
    )
    args = parser.parse_args()
    if args.days < 1:
        parser.error("--days must be at least 1")
    with contextlib.ExitStack() as stack:
        folder = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="digest-bench-")))
        port = None
        if args.transport == "smtp":
            port, kind = stack.enter_context(sink())
            print(json.dumps({"smtp_sink": kind, "port": port}), flush=True)
        run(args, folder, port)


if __name__ == "__main__":
    main()
