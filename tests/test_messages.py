"""Stored message bytes: zstd against a dictionary trained on the run's first digests, read back exactly, the
dictionary reused by small runs and dropped once no stored message needs it (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import gc
import json
import random
import zlib
from pathlib import Path

import pytest
import zstandard
from sqlalchemy import Connection, delete, event, func, select
from typer.testing import CliRunner

from benchmarks.world import build_world, write_world
from digest import fetching, planner, store
from digest.cli import app
from digest.compose import Composer
from digest.config import load_config
from digest.models import DeliveryStatus
from tests.helpers import corpus_files, papers_json, utc

NOW = utc(2026, 11, 23, 9, 0)

WORDS = [
    "state",
    "space",
    "model",
    "attention",
    "retrieval",
    "agent",
    "diffusion",
    "token",
    "scaling",
    "sparse",
    "reward",
    "policy",
    "vision",
]


def _digest(rng: random.Random, papers: list[str], reader: int) -> bytes:
    """A digest-shaped message: shared layout and the day's papers, in a reader's own choice and order."""
    head = f"Message-ID: <{reader}@example.org>\r\nTo: r{reader}@example.org\r\n\r\n"
    blocks = [
        f'<tr><td style="padding:12px 0;font-family:Georgia,serif;color:#222">{p}'
        f'<a href="https://papers.example.org/f/m.{reader}.{i}">more</a></td></tr>\r\n'
        for i, p in enumerate(rng.sample(papers, 12))
    ]
    return (head + "<table>" + "".join(blocks) + "</table>\r\n").encode()


def _day(seed: int, readers: int) -> list[bytes]:
    rng = random.Random(seed)
    papers = [" ".join(rng.choices(WORDS, k=180)) for _ in range(40)]
    return [_digest(rng, papers, r) for r in range(readers)]


def _insert(
    conn: Connection, messages: list[bytes], now: dt.datetime, status: DeliveryStatus = DeliveryStatus.sent
) -> None:
    rows = [
        store.NewDelivery(f"r{i}@example.org", now.date(), status, f"<{i}@x>", m, []) for i, m in enumerate(messages)
    ]
    store.insert_deliveries(conn, rows, now)


def _stored(conn: Connection, day: dt.date) -> list[bytes]:
    d, m = store.delivery_t, store.message_t
    return list(
        conn.execute(
            select(m.c.data).join(d, d.c.id == m.c.delivery_id).where(d.c.digest_date == day).order_by(d.c.id)
        ).scalars()
    )


def _dictionaries(conn: Connection) -> dict[int, dt.datetime]:
    t = store.dictionary_t
    return {r.id: r.last_used_at for r in conn.execute(select(t.c.id, t.c.last_used_at))}


def test_a_run_trains_a_dictionary_and_every_message_reads_back_exactly(db_url: str) -> None:
    engine = store.open_engine(db_url)
    day = utc(2026, 11, 20, 7)
    messages = _day(1, 120)
    with engine.begin() as conn:
        _insert(conn, messages, day)
    with engine.connect() as conn:
        stored = _stored(conn, day.date())
        (dict_id,) = _dictionaries(conn)
        read = [store.message_bytes(s, conn) for s in stored]
    assert read == messages
    assert {zstandard.get_frame_parameters(s).dict_id for s in stored} == {dict_id}
    assert sum(map(len, stored)) < sum(len(zlib.compress(m, 1)) for m in messages)


def test_a_small_run_uses_the_newest_dictionary_and_a_first_one_none(db_url: str) -> None:
    engine = store.open_engine(db_url)
    first, later = utc(2026, 11, 20, 7), utc(2026, 11, 22, 7)
    with engine.begin() as conn:
        _insert(conn, _day(1, 3), first)  # too few to train on, nothing stored yet: plain zstd
        assert _dictionaries(conn) == {}
    with engine.begin() as conn:
        _insert(conn, _day(2, 80), first + dt.timedelta(days=1))
    small = _day(3, 2)
    with engine.begin() as conn:
        _insert(conn, small, later)
    with engine.connect() as conn:
        (dict_id, last_used), *_ = _dictionaries(conn).items()
        assert [zstandard.get_frame_parameters(s).dict_id for s in _stored(conn, first.date())] == [0, 0, 0]
        assert [zstandard.get_frame_parameters(s).dict_id for s in _stored(conn, later.date())] == [dict_id] * 2
        assert [store.message_bytes(s, conn) for s in _stored(conn, later.date())] == small
    assert last_used == later


def test_pruning_drops_a_dictionary_only_when_no_stored_message_needs_it(db_url: str) -> None:
    engine = store.open_engine(db_url)
    day1, day2, day5 = utc(2026, 11, 1, 7), utc(2026, 11, 2, 7), utc(2026, 11, 5, 7)
    with engine.begin() as conn:
        _insert(conn, _day(1, 60), day1)
    with engine.begin() as conn:
        _insert(conn, _day(2, 60), day2, DeliveryStatus.pending)  # never sent: its bytes stay however old
    with engine.begin() as conn:
        _insert(conn, _day(5, 60), day5)
        used = {s: zstandard.get_frame_parameters(_stored(conn, s.date())[0]).dict_id for s in (day1, day2, day5)}
    assert len(set(used.values())) == 3
    with engine.begin() as conn:
        assert store.prune_messages(conn, utc(2026, 11, 4)) == 60
        assert store.drop_unused_dictionaries(conn, utc(2026, 11, 4)) == 1
        assert set(_dictionaries(conn)) == {used[day2], used[day5]}
    with engine.begin() as conn:  # the pending digests go out; a later prune may drop theirs too
        conn.execute(store.delivery_t.update().values(status=DeliveryStatus.sent.value))
        assert store.prune_messages(conn, utc(2026, 11, 4)) == 60
        assert store.drop_unused_dictionaries(conn, utc(2026, 11, 4)) == 1
        assert set(_dictionaries(conn)) == {used[day5]}
    with engine.begin() as conn:  # the newest is kept for small runs even when nothing uses it
        assert store.prune_messages(conn, utc(2026, 12, 1)) == 60
        assert store.drop_unused_dictionaries(conn, utc(2026, 12, 1)) == 0
        assert conn.execute(select(func.count()).select_from(store.dictionary_t)).scalar_one() == 1


def test_a_message_whose_dictionary_is_gone_says_which(db_url: str) -> None:
    engine = store.open_engine(db_url)
    with engine.begin() as conn:
        _insert(conn, _day(7, 60), utc(2026, 11, 20, 7))
        (dict_id,) = _dictionaries(conn)
        conn.execute(delete(store.dictionary_t))
    with engine.connect() as conn, pytest.raises(LookupError, match=str(dict_id)):
        store.message_bytes(_stored(conn, dt.date(2026, 11, 20))[0], conn)


CONFIG = """
database_url = "{db_url}"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
[[sources]]
name = "today"
type = "file"
path = "today.json"
{subscribers}
"""


def test_what_send_stored_is_byte_for_byte_what_the_mail_server_got(tmp_path: Path, db_url: str) -> None:
    """Through the real `digest send`: 60 readers train the day's dictionary, and every stored digest reads
    back as the exact bytes the Maildir received."""
    rng = random.Random(3)
    subs = "".join(
        f'[[subscribers]]\nemail = "r{i}@example.org"\nkeywords = {rng.sample(WORDS, 3)!r}\n'.replace("'", '"')
        for i in range(60)
    )
    config = tmp_path / "digest.toml"
    config.write_text(CONFIG.format(db_url=db_url, subscribers=subs))
    items = [
        {"title": f"On {' '.join(rng.sample(WORDS, 3))} ({i})", "summary": " ".join(rng.choices(WORDS, k=120))}
        for i in range(30)
    ]
    (tmp_path / "today.json").write_text(json.dumps(papers_json(items)))
    result = CliRunner().invoke(app, ["--config", str(config), "send"])
    assert result.exit_code == 0, result.output
    received = {f.read_bytes() for f in (tmp_path / "mail" / "new").iterdir()}
    engine = store.open_engine(db_url)
    with engine.connect() as conn:
        d, m = store.delivery_t, store.message_t
        packed = list(conn.execute(select(m.c.data)).scalars())
        stored = [store.message_bytes(s, conn) for s in packed]
        assert len(_dictionaries(conn)) == 1
        assert conn.execute(select(func.count()).select_from(d).where(d.c.status == "sent")).scalar_one() == 60
    assert len(received) == 60 and set(stored) == received
    # real digests of one day share layout and papers: the dictionary makes them well under what zlib made (0.57 of it here, 0.37 on the benchmark's world)
    assert sum(map(len, packed)) < 0.7 * sum(len(zlib.compress(m, 1)) for m in stored)


def test_compose_workers_compress_their_own_messages_and_the_bytes_are_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With worker processes each one trains its dictionary on its first batch and compresses there; the main
    process stores the dictionaries with the batches (two chunks a transaction here). What is stored reads
    back as the one-process run's bytes."""
    monkeypatch.setattr(planner, "STORE_BATCH", 100)
    corpus_files()
    world = build_world(papers=300, subscribers=240, day=NOW.date())
    stored: dict[int, dict[str, bytes]] = {}
    for workers in (0, 2):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        settings = load_config(write_world(world, folder, {"": {"database_url": f"sqlite:///{folder / 'd.db'}"}}))
        engine = store.open_engine(settings.database_url)
        fetching.fetch(engine, settings, NOW)
        thresholds = gc.get_threshold()
        commits: list[object] = []
        event.listen(engine, "commit", commits.append)
        planner.plan_and_record(engine, settings, Composer(), NOW, digest_date=NOW.date(), workers=workers, chunk=60)
        assert len(commits) >= (2 if workers else 4)  # 240 digests: several transactions either way
        # the collector, quieted while planning, is given back as it was: a daemon leaves nothing frozen
        assert gc.get_threshold() == thresholds and gc.get_freeze_count() == 0
        with engine.connect() as conn:
            d, m = store.delivery_t, store.message_t
            rows = conn.execute(select(d.c.subscriber, m.c.data).join(m, m.c.delivery_id == d.c.id)).all()
            kept = set(_dictionaries(conn))
            assert {zstandard.get_frame_parameters(data).dict_id for _, data in rows} == kept
            stored[workers] = {who: store.message_bytes(data, conn) for who, data in rows}
        assert len(kept) == 1 if workers == 0 else 1 <= len(kept) <= 2  # one a worker that took a batch
    assert len(stored[0]) > 100 and stored[2] == stored[0]
