"""Planning: build the digests due now (rank, compose) into outbox rows, chunk by chunk.

Who is due and what each may receive is decided in `selection`. Subscribers are taken in chunks, each chunk
read and recorded in its own short transaction, so memory stays flat however many there are. The ranking
index caches each distinct keyword's matches, so a subscriber costs only the merge of their keywords' hits,
and large runs compose in a process pool: the main process only reads and writes the database, the workers
rank and render.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import time
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine

from digest import store
from digest.authors import AuthorIndex
from digest.compose import Composer
from digest.config import Settings, SubscriberConfig
from digest.health import outage_notices
from digest.learning import ReaderModel
from digest.links import Signer, signer_of
from digest.logs import event
from digest.memo import Memo
from digest.memory import collector_quieted, peak_rss_mb, quiet_collector, release_memory
from digest.models import DeliveryStatus, Paper
from digest.ranking import (
    Interests,
    PaperIndex,
    RankedPaper,
    RankingParams,
    WindowStats,
    compile_terms,
)
from digest.reranking import PoolModels
from digest.sections import Section, assemble
from digest.selection import PLAN_CHUNK, Job, interests_of, jobs_for, todo_and_pool

log = logging.getLogger("digest.pipeline")

# digests a worker plans at a time: its messages come back compressed (~0.5 MB), up to four chunks in flight
POOL_CHUNK = 125
# digests the main process stores in one transaction, taken from several chunks (see `flush` below)
STORE_BATCH = 1000
POOL_MIN_SUBSCRIBERS = 2000
KEEP_PLANNED = 100
RANKINGS_KEPT = 4096
WIDE_TOP = 30  # keyword candidates a model re-ranks


@dataclass(slots=True)
class Planned:
    """A digest decided for one subscriber and date: the ranked papers and the message bytes (None when skipped)."""

    subscriber: SubscriberConfig
    digest_date: dt.date
    ranked: list[RankedPaper]
    data: bytes | None = None
    message_id: str | None = None
    sections: list[Section] = field(default_factory=list)  # each paper's, in order (for you when missing)
    trained: tuple[str, str, bytes] | None = None  # a model trained for it: (address, fingerprint, data)
    liked: list[str | None] = field(default_factory=list)  # each paper's closest liked paper, when said

    def section(self, position: int) -> Section:
        return self.sections[position] if position < len(self.sections) else Section.for_you

    def liked_near(self, position: int) -> str | None:
        """The title of the liked paper the digest's paper at `position` is closest to, when close enough."""
        return self.liked[position] if position < len(self.liked) else None

    @property
    def status(self) -> DeliveryStatus:
        return DeliveryStatus.pending if self.data is not None else DeliveryStatus.skipped

    @property
    def message(self) -> EmailMessage | None:
        """The message parsed back from its bytes (previews; the outbox stores `data` as is)."""
        if self.data is None:
            return None
        msg = message_from_bytes(self.data, policy=SMTP)
        assert isinstance(msg, EmailMessage)
        return msg


def ranking_params(settings: Settings) -> RankingParams:
    """The `[ranking]` table as the ranking module's plain parameters."""
    return RankingParams(**settings.ranking.model_dump(exclude={"idf_window_days", "learn", "feedback_weight"}))


@dataclass(slots=True)
class PlanStats:
    """Where planning time went (seconds summed over processes), and how often ranking was really run."""

    digests: int = 0
    rank_calls: int = 0
    rank_seconds: float = 0.0
    compose_seconds: float = 0.0
    store_seconds: float = 0.0
    peak_rss_mb: float = 0.0

    def add(self, other: PlanStats) -> None:
        for name in ("digests", "rank_calls", "rank_seconds", "compose_seconds", "store_seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)


class Planner:
    """Ranks and composes digests against one day's candidate pool, sharing work between subscribers."""

    def __init__(
        self,
        pool: Sequence[Paper],
        composer: Composer,
        now: dt.datetime,
        params: RankingParams | None = None,
        idf: WindowStats | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.index = PaperIndex(pool, params, idf)
        self.pool = list(pool)
        self.signer = signer
        self._authors: AuthorIndex | None = None  # built when a reader first follows someone
        self._by_upvotes: list[int] | None = None  # pool positions of papers with upvotes, most upvoted first
        self._first_seen = [p.first_seen_at for p in self.pool]
        self._ids = [p.id for p in self.pool]
        self._popularity = [(-p.upvotes, p.key) for p in self.pool]  # the order of followed and trending papers
        self._models: PoolModels | None = None  # built when a reader's model is first used
        # readers who share interests (and history) share a ranking: popular keyword sets recur often
        self.rankings = Memo(RANKINGS_KEPT)
        self.composer = composer
        self.now = now
        self.stats = PlanStats()

    def plan(self, job: Job) -> Planned:
        started = time.perf_counter()
        interests = interests_of(job.subscriber)
        sub = job.subscriber
        model, trained = job.model, None
        if model is None and job.training is not None:
            model = self._pool_models().train(job.training.examples, job.training.fingerprint, job.since)
            if model is not None:
                data = zlib.compress(model.to_bytes(), 1)
                trained = (sub.email, job.training.fingerprint, data)
        learned: dict[int, tuple[float, str | None]] = {}
        if model is not None:
            ranked, learned = self._blend(job, interests, model)
        else:
            ranked = self._rank(interests, job)
        ranked_at = time.perf_counter()
        self.stats.digests += 1
        self.stats.rank_seconds += ranked_at - started
        picks = assemble(
            ranked,
            self._followed(job),
            self._trending(job),
            has_keywords=bool(sub.keywords),
            max_papers=sub.max_papers,
            min_relevance=sub.min_relevance,
            trending_count=job.trending,
            learned=learned,
        )
        if not picks and not job.send_empty:
            return Planned(sub, job.digest_date, [], trained=trained)
        info = job.info
        if self.signer is not None and picks:
            info = replace(info, feedback=self.signer.feedback_links(sub.email, job.digest_date, info.sid))
        fitted = self.composer.fit(info, picks, self.now)
        self.stats.compose_seconds += time.perf_counter() - ranked_at
        shown = picks[: fitted.shown]  # papers left out to keep the email small are not recorded as sent
        return Planned(
            sub,
            job.digest_date,
            [p.item for p in shown],
            fitted.data,
            fitted.message_id,
            [p.section for p in shown],
            trained,
            [p.liked for p in shown],
        )

    def _blend(
        self, job: Job, interests: Interests, model: ReaderModel
    ) -> tuple[list[RankedPaper], dict[int, tuple[float, str | None]]]:
        """The reader's keyword ranking re-ranked with their model (`reranking`): a wider keyword top, memoised
        like the ranking, plus the model's own favourites among what they may still receive."""
        keyword = self._rank(replace(interests, max_papers=max(3 * interests.max_papers, WIDE_TOP)), job)
        terms = compile_terms(interests.exclude, interests.synonyms)
        docs = self.index.docs  # in the index's own order, not the pool's
        excluded = (docs[i].paper for t in terms for i in self.index.excluded(t).tolist())
        models = self._pool_models()
        return models.rerank(
            keyword,
            model,
            weight=job.feedback_weight,
            has_keywords=bool(interests.keywords),
            allowed=models.allowed(job.since, job.seen, excluded),
            favourites=2 * interests.max_papers,
            keep=interests.max_papers + len(job.subscriber.authors) + 5,
        )

    def _rank(self, interests: Interests, job: Job) -> list[RankedPaper]:
        """The reader's keyword ranking, shared by readers with the same interests and history."""
        key = (interests, job.since, job.seen)
        ranked = self.rankings.get(key)
        if ranked is None:
            self.stats.rank_calls += 1
            ranked = self.rankings.put(key, self.index.rank(interests, since=job.since, skip_ids=job.seen))
        return ranked

    def _pool_models(self) -> PoolModels:
        """The pool as word vectors for readers' models, built when the first learning reader comes."""
        if self._models is None:
            self._models = PoolModels(self.pool)
        return self._models

    def _followed(self, job: Job) -> list[tuple[Paper, str]]:
        """The reader's candidates by people they follow, most upvoted first, with the name that matched."""
        if not job.subscriber.authors:
            return []
        if self._authors is None:
            self._authors = AuthorIndex(p.authors for p in self.pool)
        found = self._authors.papers_by(job.subscriber.authors)
        order = self._popularity
        mine = sorted((i for i in found if self._eligible(i, job)), key=order.__getitem__)
        return [(self.pool[i], found[i]) for i in mine]

    def _trending(self, job: Job) -> Iterator[Paper]:
        """The reader's candidates with upvotes, most upvoted first (read only as far as needed)."""
        if self._by_upvotes is None:
            voted = [i for i, p in enumerate(self.pool) if p.upvotes > 0]
            self._by_upvotes = sorted(voted, key=self._popularity.__getitem__)
        return (self.pool[i] for i in self._by_upvotes if self._eligible(i, job))

    def _eligible(self, i: int, job: Job) -> bool:
        """Whether the reader may still receive pool paper `i`: first seen since their last digest, never sent.
        (Read from plain lists: a pool paper's own attributes go through the ORM's descriptors.)"""
        return self._first_seen[i] >= job.since and self._ids[i] not in job.seen


def new_delivery(p: Planned) -> store.NewDelivery:
    """A planned digest as an outbox row: pending with its exact bytes, or skipped, with its items."""
    return store.NewDelivery(
        subscriber=p.subscriber.email,
        digest_date=p.digest_date,
        status=p.status,
        message_id=p.message_id,
        message=p.data,
        items=[
            store.NewItem(r.paper.id or 0, rank, round(r.score, 6), [m.term for m in r.matched])
            for rank, r in enumerate(p.ranked, start=1)
        ],
        model=p.trained,
    )


def record_rows(
    conn: Connection, rows: Sequence[store.NewDelivery], now: dt.datetime, packer: store.Packer | None = None
) -> list[int]:
    """Insert outbox rows (one statement for deliveries, one for items) and log each; store the reader
    models trained while building them. Messages are compressed by `packer` (see `store.insert_deliveries`)."""
    for row in rows:
        event(
            log,
            "planned",
            logging.DEBUG,
            subscriber=row.subscriber,
            date=row.digest_date.isoformat(),
            status=row.status.value,
            papers=len(row.items),
        )
    models = [row.model for row in rows if row.model is not None]
    if models:  # trained with these digests: kept until the reader's feedback or library changes
        store.save_reader_models(conn, models, now)
    return store.insert_deliveries(conn, rows, now, packer)


# ---------------------------------------------------------------- worker processes


_worker: Planner | None = None
_packer: store.Packer | None = None  # made from the worker's first batch (`store.trained_packer`)
_fallback: bytes | None = None  # the newest stored dictionary, for a first batch too small to train on


@dataclass(frozen=True, slots=True)
class ComposerSpec:
    """How to rebuild the caller's Composer in a worker process."""

    directory: Path
    inline: Literal["load", "render"]
    max_bytes: int

    @classmethod
    def of(cls, composer: Composer) -> ComposerSpec:
        return cls(composer.directory, composer.inline_mode, composer.max_bytes)

    def build(self) -> Composer:
        return Composer(self.directory, inline=self.inline, max_bytes=self.max_bytes)


def _worker_init(
    pool: list[Paper],
    spec: ComposerSpec,
    now: dt.datetime,
    params: RankingParams,
    idf: WindowStats | None,
    signer: Signer | None,
    dictionary: bytes | None,
) -> None:
    global _worker, _packer, _fallback
    _worker = Planner(pool, spec.build(), now, params, idf, signer)
    _packer, _fallback = None, dictionary
    quiet_collector()


def _worker_plan(jobs: list[Job]) -> tuple[list[store.NewDelivery], PlanStats, bytes | None]:
    """A batch's outbox rows, their messages compressed here (the main process stores them as they come), and
    the dictionary they were compressed against when this is the worker's first batch (the caller keeps it)."""
    global _packer
    assert _worker is not None, "worker not initialised"
    release_memory()
    _worker.stats = PlanStats()
    _worker.index.warm(interests_of(job.subscriber) for job in jobs)
    rows = [new_delivery(_worker.plan(job)) for job in jobs]
    first = _packer is None
    if _packer is None:
        _packer = store.trained_packer([r.message for r in rows if r.message is not None], _fallback)
    for row in rows:
        if row.message is not None:
            row.message, row.packed = _packer.pack(row.message), True
    _worker.stats.peak_rss_mb = peak_rss_mb()
    used = _packer.dictionary.as_bytes() if first and _packer.dictionary is not None else None
    return rows, _worker.stats, used


# ---------------------------------------------------------------- the streaming run


@dataclass(slots=True)
class PlanReport:
    """What a planning pass stored: counts of all digests, details of the first `KEEP_PLANNED`."""

    built: int = 0
    skipped: int = 0
    planned: list[Planned] = field(default_factory=list)
    stats: PlanStats = field(default_factory=PlanStats)


def default_workers(subscribers: int) -> int:
    """Worker processes for composing: none for small runs (start-up costs more than it saves), else up
    to two (`DIGEST_WORKERS` overrides; 0 composes in this process)."""
    env = os.environ.get("DIGEST_WORKERS", "").strip()
    if env.isdigit():
        return int(env)
    if subscribers < POOL_MIN_SUBSCRIBERS:
        return 0
    return max(min(2, (os.cpu_count() or 1)), 1)


def plan_and_record(
    engine: Engine,
    settings: Settings,
    composer: Composer,
    now: dt.datetime,
    *,
    only: Sequence[str] | None = None,
    digest_date: dt.date | None = None,
    workers: int | None = None,
    chunk: int | None = None,
) -> PlanReport:
    """Build and store every digest due now, in worker processes when there are many. Digests are stored
    as they come, a transaction for each `PLAN_CHUNK` composed here or each `STORE_BATCH` from workers:
    a crash loses at most those, which the next run composes again."""
    with collector_quieted():  # the subscribers' configs alone are a large heap for full collections to scan
        return _plan_and_record(
            engine, settings, composer, now, only=only, digest_date=digest_date, workers=workers, chunk=chunk
        )


def _plan_and_record(
    engine: Engine,
    settings: Settings,
    composer: Composer,
    now: dt.datetime,
    *,
    only: Sequence[str] | None,
    digest_date: dt.date | None,
    workers: int | None,
    chunk: int | None,
) -> PlanReport:
    subs = [settings.subscriber(e) for e in only] if only else settings.subscribers
    forced = bool(only) or digest_date is not None
    report = PlanReport()
    params = ranking_params(settings)
    with engine.connect() as conn:
        todo, pool, idf = todo_and_pool(conn, settings, now, subs, forced=forced, digest_date=digest_date)
        notices = outage_notices(settings, store.source_health(conn)) if todo else ()
    if not todo:
        return report  # nobody due: no pool, no workers
    signer = signer_of(settings, engine)
    pool_ids = [p.id for p in pool if p.id is not None]
    workers = default_workers(len(todo)) if workers is None else workers
    chunk = chunk or (POOL_CHUNK if workers > 0 else PLAN_CHUNK)

    packer: store.Packer | None = None  # composing here: trained on the first batch, used for the whole run

    def store_rows(
        rows: list[store.NewDelivery], planned: list[Planned] | None = None, dictionaries: Sequence[bytes] = ()
    ) -> None:
        nonlocal packer
        started = time.perf_counter()
        with engine.begin() as conn:
            for dictionary in dictionaries:  # a worker's, which these rows' messages were compressed against
                store.keep_dictionary(conn, dictionary, now)
            raw = [r.message for r in rows if r.message is not None and not r.packed]
            if packer is None and raw:
                packer = store.message_packer(conn, now, raw)
            record_rows(conn, rows, now, packer)
        report.stats.store_seconds += time.perf_counter() - started
        built = sum(1 for r in rows if r.message is not None)
        report.built += built
        report.skipped += len(rows) - built
        if planned and len(report.planned) < KEEP_PLANNED:
            report.planned.extend(planned[: KEEP_PLANNED - len(report.planned)])

    def jobs(part: Sequence[tuple[SubscriberConfig, dt.date]]) -> list[Job]:
        with engine.connect() as conn:
            return jobs_for(conn, settings, part, pool_ids, now, signer, notices)

    if workers <= 0:
        planner: Planner | None = None
        for part in store.batched(todo, chunk):
            batch = jobs(part)
            if batch:
                planner = planner or Planner(pool, composer, now, params, idf, signer)
                planner.index.warm(interests_of(job.subscriber) for job in batch)
                planned = [planner.plan(job) for job in batch]
                store_rows([new_delivery(p) for p in planned], planned)
        if planner is not None:
            report.stats.add(planner.stats)
        return report

    with engine.connect() as conn:
        fallback = store.newest_dictionary(conn)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_worker_init,
        initargs=(pool, ComposerSpec.of(composer), now, params, idf, signer, fallback),
    ) as executor:
        in_flight: dict[Future[tuple[list[store.NewDelivery], PlanStats, bytes | None]], int] = {}
        done_rows: list[store.NewDelivery] = []
        done_dictionaries: list[bytes] = []

        def collect() -> None:
            """Take whichever chunks are done, as they finish: one slow chunk does not leave the other worker
            idle. Done chunks are taken in the order they were sent, so a worker's first batch (which carries
            the dictionary its later ones are compressed against) is stored no later than them."""
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=in_flight.__getitem__):
                del in_flight[future]
                rows, stats, dictionary = future.result()
                report.stats.add(stats)
                done_rows.extend(rows)
                if dictionary is not None:
                    done_dictionaries.append(dictionary)
            if len(done_rows) >= STORE_BATCH:
                flush()

        def flush() -> None:
            """Store the chunks taken so far in one transaction: each commit writes every index page it
            touched, and a day's items land all over the paper index, so few large commits write far less."""
            if done_rows:
                store_rows(done_rows, dictionaries=done_dictionaries)
                done_rows.clear()
                done_dictionaries.clear()
                release_memory()

        for sent, part in enumerate(store.batched(todo, chunk)):
            batch = jobs(part)
            if batch:
                in_flight[executor.submit(_worker_plan, batch)] = sent
            while len(in_flight) >= 2 * workers:  # each worker busy with one chunk, another waiting for it
                collect()
        while in_flight:
            collect()
        flush()
    return report


def plan(
    conn: Connection,
    settings: Settings,
    composer: Composer,
    now: dt.datetime,
    *,
    only: Sequence[str] | None = None,
    digest_date: dt.date | None = None,
    signer: Signer | None = None,
    include_inactive: bool = False,
) -> list[Planned]:
    """Digests to build now, built but not stored: due subscribers (or the named ones, or all for an
    explicit date) without one today. Reads through `conn`, so a caller's transaction sees its own writes.
    Links to `digest serve` are signed with `signer` (the caller resolves it outside any transaction it
    will roll back; see `links.signer_of`)."""
    subs = [settings.subscriber(e) for e in only] if only else settings.subscribers
    forced = bool(only) or digest_date is not None
    todo, pool, idf = todo_and_pool(
        conn, settings, now, subs, forced=forced, digest_date=digest_date, include_inactive=include_inactive
    )
    if not todo:
        return []
    planner = Planner(pool, composer, now, ranking_params(settings), idf, signer)
    pool_ids = [p.id for p in pool if p.id is not None]
    notices = outage_notices(settings, store.source_health(conn))
    planned: list[Planned] = []
    for part in store.batched(todo, PLAN_CHUNK):
        planned.extend(planner.plan(job) for job in jobs_for(conn, settings, part, pool_ids, now, signer, notices))
    return planned


def record(conn: Connection, planned: Sequence[Planned], now: dt.datetime) -> list[int]:
    """Store planned digests in the outbox (pending with exact bytes, or skipped) with their items."""
    return record_rows(conn, [new_delivery(p) for p in planned], now)
