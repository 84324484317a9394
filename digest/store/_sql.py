"""SQL building blocks every store module shares: the table handles, batching, `IN` lists, bind names."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, insert, select

from digest.models import (
    Delivery,
    DeliveryItem,
    DeliveryMessage,
    Feedback,
    FetchRun,
    MessageDictionary,
    Meta,
    Paper,
    PaperKey,
    ReaderModelRow,
    Sighting,
    SourceState,
    SubscriberState,
)

T = TypeVar("T")

paper_t = Paper.__table__  # type: ignore[attr-defined]
key_t = PaperKey.__table__  # type: ignore[attr-defined]
sighting_t = Sighting.__table__  # type: ignore[attr-defined]
delivery_t = Delivery.__table__  # type: ignore[attr-defined]
item_t = DeliveryItem.__table__  # type: ignore[attr-defined]
message_t = DeliveryMessage.__table__  # type: ignore[attr-defined]
dictionary_t = MessageDictionary.__table__  # type: ignore[attr-defined]
run_t = FetchRun.__table__  # type: ignore[attr-defined]
meta_t = Meta.__table__  # type: ignore[attr-defined]
state_t = SourceState.__table__  # type: ignore[attr-defined]
feedback_t = Feedback.__table__  # type: ignore[attr-defined]
reader_t = SubscriberState.__table__  # type: ignore[attr-defined]
model_t = ReaderModelRow.__table__  # type: ignore[attr-defined]

IN_CHUNK = 500


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def select_in(conn: Connection, column: Any, values: Iterable[Any], *cols: Any, size: int = IN_CHUNK) -> list[Any]:
    rows: list[Any] = []
    for chunk in batched(sorted(set(values)), size):
        rows.extend(conn.execute(select(*cols).where(column.in_(chunk))).all())
    return rows


def dialect_insert(conn: Connection, table: Any) -> Any:
    """`INSERT` with `ON CONFLICT` support on SQLite and PostgreSQL (plain `INSERT` elsewhere)."""
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    return insert(table)


def bind(name: str) -> Any:
    """A named bind parameter, for executemany statements whose rows are dicts."""
    return bindparam(name)
