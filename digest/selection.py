"""Selection: which readers are due now, and what each may still receive (the day's candidate pool).

A reader is due once their local send time has passed on one of their days and they have no digest for
that local date. They may receive papers first seen after their last digest (within the lookback window)
that no sent or pending digest of theirs holds. Readers are read in chunks; the pool holds only papers some
due reader may still receive, and the window statistics that score it are streamed from the store.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Connection

from digest import store
from digest.compose import DigestInfo, unsubscribe_links
from digest.config import WEEKDAYS, Settings, SubscriberConfig
from digest.learning import LIBRARY_WEIGHT, Example, ReaderModel, fingerprint, recency
from digest.library import read_library
from digest.links import Action, Signer
from digest.memory import release_memory
from digest.models import Paper
from digest.ranking import Interests, Term, WindowStats, compile_terms, parse_keyword

PLAN_CHUNK = 500
STATS_BATCH = 500  # papers a batch when gathering window statistics: ~10 MB at a time
# Papers fetched in the run that built a reader's last digest share its timestamp and were ranked for it:
# the next digest takes papers first seen strictly after it (a millisecond, which float seconds keep).
AFTER = dt.timedelta(milliseconds=1)


def local_now(settings: Settings, sub: SubscriberConfig, now: dt.datetime) -> dt.datetime:
    """The subscriber's wall-clock time at UTC `now`."""
    return now.astimezone(settings.timezone(sub))


def is_due(settings: Settings, sub: SubscriberConfig, now: dt.datetime) -> bool:
    """True once the subscriber's local send time has passed today, on one of their days."""
    local = local_now(settings, sub, now)
    if sub.days and WEEKDAYS[local.weekday()] not in sub.days:
        return False
    return local.time() >= settings.send_time(sub)


def candidate_pool(
    conn: Connection,
    settings: Settings,
    now: dt.datetime,
    start: dt.datetime,
    subs: Iterable[SubscriberConfig],
) -> tuple[list[Paper], WindowStats | None]:
    """The papers first seen from `start` (no reader due now may receive an older one), and the window
    statistics that score them exactly as within the whole lookback window, gathered for these readers'
    terms (None when the pool is that window and the idf window holds no more papers).

    Holding only what is still sendable keeps memory flat day after day: the idf window (30 days of
    papers, say) is streamed in batches, never held, in this process or a worker."""
    window_start = now - dt.timedelta(days=settings.lookback_days)
    idf_start = now - dt.timedelta(days=max(settings.ranking.idf_window_days, settings.lookback_days))
    start = max(start, window_start)
    pool = store.papers_seen_since(conn, start)
    if start == window_start and store.count_papers_seen_since(conn, idf_start) == len(pool):
        return pool, None
    stats = WindowStats.gather(store.paper_batches(conn, idf_start, STATS_BATCH), window_terms(subs), window_start)
    release_memory()
    return pool, stats


def window_terms(subs: Iterable[SubscriberConfig]) -> list[Term]:
    """Every term these readers' rankings compile: their keywords and exclusions, as each asked (synonyms)."""
    terms: dict[str, Term] = {}
    for interests in {interests_of(sub) for sub in subs}:
        for term in compile_terms(interests.keywords + interests.exclude, interests.synonyms):
            terms.setdefault(term.key, term)
    return list(terms.values())


def since_for(last: dt.datetime | None, window_start: dt.datetime) -> dt.datetime:
    """The earliest first-seen time of a paper a reader may still receive: after their last digest (sent or
    skipped) within the lookback window, else the window's start."""
    return window_start if last is None else max(window_start, last + AFTER)


def todo_and_pool(
    conn: Connection,
    settings: Settings,
    now: dt.datetime,
    subs: Sequence[SubscriberConfig],
    *,
    forced: bool,
    digest_date: dt.date | None,
    include_inactive: bool = False,
) -> tuple[list[tuple[SubscriberConfig, dt.date]], list[Paper], WindowStats | None]:
    """Who of these is due now (all when `forced`) without a digest for their date, the papers any of them
    may still receive, and the statistics that score those; nothing at all when nobody is due. Readers who
    paused or unsubscribed are never due (previews may ask for them with `include_inactive`)."""
    todo: list[tuple[SubscriberConfig, dt.date]] = []
    start: dt.datetime | None = None
    if not include_inactive:
        inactive = store.inactive_subscribers(conn)
        if inactive:
            subs = [sub for sub in subs if sub.email.lower() not in inactive]
    for part in store.batched(subs, PLAN_CHUNK):
        due = wanted(conn, settings, part, now, forced=forced, digest_date=digest_date)
        todo.extend(due)
        first = earliest_since(conn, settings, due, now)
        if first is not None and (start is None or first < start):
            start = first
    if start is None:
        return [], [], None
    pool, stats = candidate_pool(conn, settings, now, start, subs)
    return todo, pool, stats


def earliest_since(
    conn: Connection, settings: Settings, todo: Sequence[tuple[SubscriberConfig, dt.date]], now: dt.datetime
) -> dt.datetime | None:
    """The earliest `since_for` among these readers (None for none): where the day's candidate pool starts."""
    if not todo:
        return None
    window_start = now - dt.timedelta(days=settings.lookback_days)
    emails = {sub.email for sub, _ in todo}
    last = store.last_sent_at(conn, emails, window_start)
    return since_for(min(last.values()) if len(last) == len(emails) else None, window_start)


def interests_of(sub: SubscriberConfig) -> Interests:
    return Interests(tuple(sub.keywords), tuple(sub.exclude), sub.max_papers, sub.synonyms)


@lru_cache(maxsize=65536)
def _label(keyword: str) -> str:
    return parse_keyword(keyword)[0]


def digest_info(
    settings: Settings,
    sub: SubscriberConfig,
    digest_date: dt.date,
    signer: Signer | None = None,
    notices: tuple[str, ...] = (),
) -> DigestInfo:
    """Everything about a reader's digest besides its papers. With a `signer` (`[web] base_url` set) its
    links lead to `digest serve`: one-click unsubscribe, view online, preferences; else the configured
    `unsubscribe_url` template, if any, and the mailto fallback."""
    url, mailto = unsubscribe_links(
        sub.email,
        settings.delivery.from_,
        "" if signer is not None else settings.delivery.unsubscribe_url,  # the signed link replaces it
        settings.delivery.unsubscribe_secret.get_secret_value(),
    )
    view = prefs = feed = sid = None
    if signer is not None:
        sid = signer.sid(sub.email)
        url = signer.url(Action.unsubscribe, sub.email, digest_date=digest_date, sid=sid)
        view = signer.url(Action.view, sub.email, digest_date=digest_date, sid=sid)
        prefs = signer.url(Action.prefs, sub.email, sid=sid)
        feed = signer.url(Action.feed, sub.email, sid=sid)
    return DigestInfo(
        subscriber_email=sub.email,
        subscriber_name=sub.name,
        digest_date=digest_date,
        interests=[_label(k) for k in sub.keywords],
        from_addr=settings.delivery.from_,
        unsubscribe_url=url,
        unsubscribe_mailto=mailto,
        view_url=view,
        prefs_url=prefs,
        feed_url=feed,
        notices=notices,
        sid=sid,
    )


@dataclass(frozen=True, slots=True)
class Job:
    """One digest to build, as plain values a worker process can take: who, for which day, and what they
    may still receive (papers first seen since `since` and not among `seen`)."""

    subscriber: SubscriberConfig
    digest_date: dt.date
    since: dt.datetime
    seen: frozenset[int]
    info: DigestInfo
    send_empty: bool
    feedback_weight: float  # a model's say beside the keywords (`[ranking] feedback_weight`)
    trending: int = 0
    # what the reader taught: a stored model still current, or what to train one from (see `taught_models`)
    model: ReaderModel | None = None
    training: Training | None = None


@dataclass(frozen=True, slots=True)
class Training:
    """What a reader's model is to be trained from, and the fingerprint it will be stored under."""

    examples: tuple[Example, ...]
    fingerprint: str


def wanted(
    conn: Connection,
    settings: Settings,
    subs: Iterable[SubscriberConfig],
    now: dt.datetime,
    *,
    forced: bool = False,
    digest_date: dt.date | None = None,
) -> list[tuple[SubscriberConfig, dt.date]]:
    """The subscribers (of these) due now, or all when `forced`, who have no delivery for their date yet."""
    due = [
        (sub, digest_date or local_now(settings, sub, now).date())
        for sub in subs
        if forced or is_due(settings, sub, now)
    ]
    by_date: dict[dt.date, list[str]] = {}
    for sub, day in due:
        by_date.setdefault(day, []).append(sub.email)
    have = {(email, day) for day, emails in by_date.items() for email in store.deliveries_on(conn, day, emails)}
    return [(sub, day) for sub, day in due if (sub.email, day) not in have]


def jobs_for(
    conn: Connection,
    settings: Settings,
    todo: Sequence[tuple[SubscriberConfig, dt.date]],
    pool_ids: Sequence[int],
    now: dt.datetime,
    signer: Signer | None = None,
    notices: tuple[str, ...] = (),
) -> list[Job]:
    """What each wanted subscriber may receive: since their last digest (within the lookback), minus what
    a sent or pending digest already holds."""
    window_start = now - dt.timedelta(days=settings.lookback_days)
    emails = [sub.email for sub, _ in todo]
    # a digest holding a pool paper was made after that paper was first seen, so inside the window
    last = store.last_sent_at(conn, emails, window_start)
    delivered = store.delivered_paper_ids(conn, emails, pool_ids, window_start)
    taught = taught_models(conn, settings, [sub for sub, _ in todo], now)
    jobs = []
    for sub, day in todo:
        model, training, unwanted = taught.get(sub.email.lower(), (None, None, frozenset()))
        jobs.append(
            Job(
                sub,
                day,
                since_for(last.get(sub.email), window_start),
                frozenset(delivered.get(sub.email, ())) | unwanted,
                digest_info(settings, sub, day, signer, notices),
                settings.delivery.send_empty if sub.send_empty is None else sub.send_empty,
                settings.ranking.feedback_weight,
                settings.trending_for(sub),
                model,
                training,
            )
        )
    return jobs


def taught_models(
    conn: Connection, settings: Settings, subs: Sequence[SubscriberConfig], now: dt.datetime
) -> dict[str, tuple[ReaderModel | None, Training | None, frozenset[int]]]:
    """For readers who learn and have feedback or a library: their stored model when it is still current,
    else what to train one from; and the papers not to send them (disliked, or in their library). Keyed by
    lower-cased address."""
    learners = [sub for sub in subs if settings.learns(sub)]
    if not learners:
        return {}
    labels = store.feedback_labels(conn, [sub.email for sub in learners])
    learners = [sub for sub in learners if sub.library is not None or sub.email.lower() in labels]
    if not learners:
        return {}
    stored = store.reader_models(conn, [sub.email for sub in learners])
    texts = store.paper_texts(conn, {pid for sub in learners for pid, _, _ in labels.get(sub.email.lower(), ())})
    libraries = {sub.email.lower(): read_library(sub.library) for sub in learners if sub.library is not None}
    known = store.papers_known_as(
        conn,
        {p.arxiv_id for papers in libraries.values() for p in papers if p.arxiv_id},
        {p.doi for papers in libraries.values() for p in papers if p.doi},
    )
    out: dict[str, tuple[ReaderModel | None, Training | None, frozenset[int]]] = {}
    for sub in learners:
        who = sub.email.lower()
        mine = labels.get(who, [])
        library = libraries.get(who, ())
        stamp = fingerprint([*sorted((pid, value) for pid, value, _ in mine), *library])
        kept = {known[i.lower()] for p in library for i in (p.arxiv_id, p.doi) if i and i.lower() in known}
        # never sent: what they disliked, and what their library already holds
        unwanted = frozenset(pid for pid, value, _ in mine if value < 0) | kept
        held = stored.get(who)
        if held is not None and held[0] == stamp:
            out[who] = (ReaderModel.from_bytes(zlib.decompress(held[1])), None, unwanted)
            continue
        examples = [Example(f"{p.title} {p.abstract}", 1, LIBRARY_WEIGHT, p.title, rated=False) for p in library]
        for pid, value, when in mine:
            if pid in texts:
                title, abstract = texts[pid]
                age = (now - when).total_seconds() / 86400
                examples.append(Example(f"{title} {abstract}", value, recency(age), title, pid))
        out[who] = (None, Training(tuple(examples), stamp), unwanted)
    return out
