"""Queries written to steer SQLite's planner keep doing so: `EXPLAIN QUERY PLAN` of what the store really runs.

Planning reads readers' recent deliveries by (subscriber, created_at) with status checked in Python: a status
condition in SQL made SQLite pick the status index and scan every pending row per chunk (planning slowed as the
outbox grew). The outbox query must be answered from its covering index without reading message bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event

from digest import store
from digest.models import DeliveryStatus

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def _plans(engine: Engine, conn: Connection, call: Callable[[], object]) -> list[str]:
    with _statements(engine) as seen:
        call()
    ran = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
    assert ran, "the call ran no query"
    return [" ; ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + s, p)) for s, p in ran]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    rows = [
        store.NewDelivery(f"r{i}@example.org", NOW.date() - dt.timedelta(days=d), status, "<m>", b"x" * 2000, [])
        for i in range(30)
        for d, status in enumerate((DeliveryStatus.pending, DeliveryStatus.sent, DeliveryStatus.skipped))
    ]
    with engine.begin() as conn:
        store.insert_deliveries(conn, rows, NOW)
    return engine


def test_a_readers_recent_deliveries_come_from_the_covering_subscriber_index(engine: Engine) -> None:
    emails = [f"r{i}@example.org" for i in range(5)]
    with engine.connect() as conn:
        last = _plans(engine, conn, lambda: store.last_sent_at(conn, emails, NOW - dt.timedelta(days=7)))
        held = _plans(engine, conn, lambda: store.delivered_paper_ids(conn, emails, [1, 2], NOW - dt.timedelta(days=7)))
    assert last == [
        "SEARCH delivery USING COVERING INDEX ix_delivery_subscriber_created (subscriber=? AND created_at>?)"
    ]
    (plan,) = held
    assert "SEARCH delivery USING COVERING INDEX ix_delivery_subscriber_created (subscriber=? AND created_at>?)" in plan
    assert "SEARCH delivery_item USING INDEX ix_delivery_item_delivery_id (delivery_id=?)" in plan
    assert "ix_delivery_status" not in plan


@pytest.mark.parametrize("mark", [False, True])
def test_the_outbox_is_read_from_its_covering_index(engine: Engine, mark: bool) -> None:
    with engine.begin() as conn:
        plans = _plans(
            engine, conn, lambda: store.claim_pending(conn, "me", NOW, dt.timedelta(seconds=60), 10, mark=mark)
        )
        due = _plans(engine, conn, lambda: store.due_count(conn, NOW))
    assert plans[0] == "SEARCH delivery USING COVERING INDEX ix_delivery_outbox (status=?)"
    assert due == ["SEARCH delivery USING COVERING INDEX ix_delivery_outbox (status=?)"]
    (batch,) = [p for p in plans if "delivery_message" in p]
    assert "USING INTEGER PRIMARY KEY (rowid=?)" in batch  # the batch's bytes, by id only
    # the dictionary their frames name, by its key (once: later reads use the one already loaded)
    assert [p for p in plans if "message_dict" in p] in (
        [],
        ["SEARCH message_dict USING INDEX sqlite_autoindex_message_dict_1 (id=?)"],
    )


def test_who_has_a_digest_today_is_answered_by_the_unique_key(engine: Engine) -> None:
    with engine.connect() as conn:
        plans = _plans(engine, conn, lambda: store.deliveries_on(conn, NOW.date(), ["r1@example.org"]))
    assert plans == [
        "SEARCH delivery USING COVERING INDEX sqlite_autoindex_delivery_1 (subscriber=? AND digest_date=?)"
    ]
