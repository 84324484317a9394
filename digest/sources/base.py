"""What every source shares: the result shape, rejections, and the `Source` protocol."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from digest.models import PaperRecord

_WS = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")


class SourceError(Exception):
    """A source that could not be read at all (network down, file missing, body unparseable)."""


class RecordError(ValueError):
    """One item that cannot become a `PaperRecord`; the message is the reason, counted and logged once."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An item a source skipped, and why."""

    where: str
    reason: str


@dataclass(slots=True)
class SourceResult:
    """What one fetch of one source produced; `skipped` counts items left out on purpose (outside the
    window, replacements, repeats), which are not faults and so not rejections."""

    records: list[PaperRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    not_modified: bool = False
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class FetchContext:
    """What a fetch may use: the time it runs at, the shared HTTP client (tests inject its transport), the
    stored ETag / Last-Modified per URL (updated in place), and the sleep and clock that pace retries."""

    now: dt.datetime
    client: httpx.AsyncClient
    validators: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic


class Source(Protocol):
    """A configured source; `fetch` reads it once."""

    name: str

    async def fetch(self, ctx: FetchContext) -> SourceResult: ...


def clean_text(value: Any, *, limit: int | None = None) -> str:
    """Collapse hard-wrapped white space, drop NULs and lone surrogates (JSON can carry `"\\ud800"`, which no
    encoder accepts) in a title or abstract; '' for non-strings."""
    if not isinstance(value, str):
        return ""
    text = _WS.sub(" ", _SURROGATE.sub("\ufffd", value.replace("\x00", " "))).strip()
    return text[:limit] if limit is not None else text


def parse_datetime(value: Any) -> dt.datetime | None:
    """An ISO-8601 timestamp as aware UTC (naive input is taken as UTC), or None when missing or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
