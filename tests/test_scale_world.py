"""The benchmark's world and the real job agree: whoever has a matching paper gets exactly one digest,
and a digest holds only papers that match its reader's keywords (found here by brute force)."""

from __future__ import annotations

import datetime as dt
import email
import mailbox
import re
from email.message import EmailMessage
from email.policy import default
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy import text

from benchmarks.world import (
    Subscriber,
    World,
    build_world,
    expected_matches,
    later_papers,
    related_papers,
    write_papers,
    write_world,
)
from digest import fetching, pipeline, planner, selection, store
from digest.compose import Composer
from digest.config import load_config
from tests.helpers import corpus_files, utc

NOW = utc(2026, 11, 23, 9, 0)
TO_MAILDIR: dict[str, dict[str, object]] = {
    "": {"database_url": "sqlite:///digest.db"},
    "schedule": {"send_at": "07:00"},
    "delivery": {"maildir": "mail", "from": "Daily Papers <papers@example.org>", "trending": 0},
}
PAPER_ID = re.compile(r"/(?:papers|abs)/(\d{4}\.\d{5})\b")


def _digests(maildir: Path) -> dict[str, list[EmailMessage]]:
    out: dict[str, list[EmailMessage]] = {}
    box = mailbox.Maildir(maildir, create=False)
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=default)
        assert isinstance(msg, EmailMessage)
        out.setdefault(parseaddr(msg["To"])[1], []).append(msg)
    return out


@pytest.mark.parametrize("workers", ["0", "2"])
def test_every_matching_subscriber_gets_one_digest_of_matching_papers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    corpus_files()
    monkeypatch.setenv("DIGEST_WORKERS", workers)
    world = build_world(papers=300, subscribers=60, day=NOW.date())
    world.subscribers.append(Subscriber("nobody@example.org", "No Match", ("zebrafish husbandry",)))
    config = write_world(world, tmp_path, TO_MAILDIR)
    settings = load_config(config)
    report = pipeline.run_once(store.open_engine(settings.database_url), settings, NOW)

    expected = expected_matches(world)
    related = related_papers(world)
    with_match = {e for e, ids in expected.items() if ids}
    maybe = {e for e, ids in related.items() if ids}
    assert len(with_match) > 0 and len(maybe) < len(world.subscribers), "the world has readers with and without matches"
    digests = _digests(tmp_path / "mail")
    assert with_match <= set(digests) <= maybe
    assert report.ok and report.built == len(digests)
    assert report.skipped == len(world.subscribers) - len(digests)
    by_email = {s.email: s for s in world.subscribers}
    for address, messages in digests.items():
        assert len(messages) == 1, f"{address} got {len(messages)} digests"
        text = messages[0].get_body(("plain",))
        assert text is not None
        shown = set(PAPER_ID.findall(str(text.get_content())))
        assert shown, f"{address}'s digest lists no papers"
        assert shown <= related[address], f"{address} got papers matching none of their keywords"
        assert expected[address] <= shown or len(shown) == by_email[address].max_papers, "a full match was left out"
        assert len(shown) <= by_email[address].max_papers


def test_readers_with_the_same_interests_share_one_ranking(tmp_path: Path) -> None:
    """Ranking runs once per distinct set of interests (same history), and twins get the same papers."""
    corpus_files()
    world = build_world(papers=300, subscribers=40, day=NOW.date())
    twins = [Subscriber(f"twin{i}@example.org", f"Twin {i}", ("diffusion", "language model")) for i in range(3)]
    world.subscribers.extend(twins)
    config = write_world(
        world,
        tmp_path,
        {
            "": {"database_url": "sqlite:///digest.db"},
            "delivery": {"from": "Daily Papers <papers@example.org>", "trending": 0},
        },
    )
    settings = load_config(config)
    engine = store.open_engine(settings.database_url)
    fetching.fetch(engine, settings, NOW)
    report = planner.plan_and_record(engine, settings, Composer(), NOW, digest_date=NOW.date(), workers=0)
    distinct = {selection.interests_of(s) for s in settings.subscribers}
    assert report.stats.digests == len(settings.subscribers)
    assert report.stats.rank_calls == len(distinct) < len(settings.subscribers)
    query = text(
        "SELECT i.rank, i.paper_id FROM delivery_item i JOIN delivery d ON d.id = i.delivery_id "
        "WHERE d.subscriber = :who ORDER BY i.rank"
    )
    with engine.connect() as conn:
        papers = {s.email: tuple(tuple(r) for r in conn.execute(query, {"who": s.email})) for s in twins}
    assert papers["twin0@example.org"] and len(set(papers.values())) == 1


def test_the_next_day_sends_only_that_days_papers_to_each_reader_once(tmp_path: Path) -> None:
    """Day 2 of the world (the steady state): every reader with a match among the new papers gets one more
    digest, holding only new papers that match them, never one of yesterday's (sent or not)."""
    corpus_files()
    world = build_world(papers=300, subscribers=60, day=NOW.date())
    config = write_world(world, tmp_path, TO_MAILDIR)
    settings = load_config(config)
    engine = store.open_engine(settings.database_url)
    first = pipeline.run_once(engine, settings, NOW)
    day_one = {e: set(PAPER_ID.findall(_text(m))) for e, ms in _digests(tmp_path / "mail").items() for m in ms}
    assert first.ok and first.built == len(day_one) > 0

    tomorrow = NOW + dt.timedelta(days=1)
    papers = later_papers(300, 1, tomorrow.date())
    write_papers(papers, tmp_path / "papers.jsonl")
    new_ids = {p["paper"]["id"] for p in papers}
    fetching.fetch(engine, settings, tomorrow)
    with engine.connect() as conn:
        todo = selection.wanted(conn, settings, settings.subscribers, tomorrow)
        start = selection.earliest_since(conn, settings, todo, tomorrow)
        assert start is not None and len(todo) == len(world.subscribers)
        pool, stats = selection.candidate_pool(conn, settings, tomorrow, start, settings.subscribers)
    # every reader had a digest (sent or skipped) yesterday, so only today's papers are indexed; the
    # idf and the other window figures still cover both days
    assert {p.arxiv_id for p in pool} == new_ids
    assert stats is not None and stats.n == 600
    second = pipeline.run_once(engine, settings, tomorrow, do_fetch=False)
    assert second.ok

    new_world = World(papers, world.subscribers, world.vocabulary)
    assert not new_ids & {p["paper"]["id"] for p in world.papers}
    expected, related = expected_matches(new_world), related_papers(new_world)
    both_days = _digests(tmp_path / "mail")
    assert sum(len(ms) for ms in both_days.values()) == first.built + second.built
    for address, messages in both_days.items():
        assert len(messages) <= 2, f"{address} got {len(messages)} digests in two days"
        shown = [set(PAPER_ID.findall(_text(m))) for m in messages]
        today = [ids for ids in shown if ids & new_ids]
        if expected[address]:
            assert len(today) == 1, f"{address} has new matches but no day-2 digest"
        for ids in today:
            assert ids <= new_ids, f"{address} got one of yesterday's papers again"
            assert ids <= related[address], f"{address} got papers matching none of their keywords"
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.subscriber, i.paper_id, count(*) FROM delivery_item i JOIN delivery d ON d.id = i.delivery_id "
                "WHERE d.status = 'sent' GROUP BY d.subscriber, i.paper_id HAVING count(*) > 1"
            )
        ).all()
    assert rows == [], "a paper was sent twice to one reader"


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())
