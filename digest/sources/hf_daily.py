"""Hugging Face Daily Papers: the item parser (shared with the file source) and the API source."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from digest.config import HfDailySourceConfig
from digest.logs import event
from digest.models import PaperRecord
from digest.sources.base import (
    FetchContext,
    RecordError,
    Rejection,
    SourceError,
    SourceResult,
    clean_text,
    parse_datetime,
)
from digest.sources.http import Fetched, HttpFetcher, HttpPolicy, check_http_url, describe_body, redacted_url
from digest.sources.text import plain

MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHORS = 500
HF_BASE = "https://huggingface.co"
MAX_PAGES = 100

log = logging.getLogger("digest.sources.hf_daily")


def _int(value: Any) -> int | None:
    """A count as a non-negative int that fits a 32-bit SQL INTEGER; None for anything else (NaN, ±inf, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return min(max(0, int(value)), 2**31 - 1)


def _str(value: Any, limit: int = 2_000) -> str | None:
    text = clean_text(value, limit=limit)
    return text or None


def _http_url(value: Any) -> str | None:
    text = _str(value)
    if text and text.lower().startswith(("http://", "https://")):
        return text
    return None


def parse_hf_item(item: Any, source: str, base_url: str = HF_BASE) -> PaperRecord:
    """One element of the daily_papers array (or a flat record with the same field names) as a PaperRecord."""
    if not isinstance(item, Mapping):
        raise RecordError(f"item is {type(item).__name__}, not an object")
    paper = item.get("paper")
    if paper is None:
        paper = item
    if not isinstance(paper, Mapping):
        raise RecordError("'paper' is not an object")
    title = plain(paper.get("title") or item.get("title"), limit=MAX_TITLE, markup=False)
    if not title:
        raise RecordError("no title")
    abstract = plain(
        paper.get("summary") or item.get("summary") or paper.get("abstract"), limit=MAX_ABSTRACT, markup=False
    )
    authors_raw = paper.get("authors") or []
    authors: list[str] = []
    if isinstance(authors_raw, list):
        for author in authors_raw[:MAX_AUTHORS]:
            if isinstance(author, Mapping):
                if author.get("hidden") is True:
                    continue
                name = plain(author.get("name"), limit=300, markup=False)
            else:
                name = plain(author, limit=300, markup=False)
            if name:
                authors.append(name)
    paper_id = paper.get("id")
    arxiv_id = _str(paper_id, 64) if isinstance(paper_id, str) else None
    keywords_raw = paper.get("ai_keywords") or []
    keywords = (
        tuple(k for k in (_str(k, 200) for k in keywords_raw[:100]) if k) if isinstance(keywords_raw, list) else ()
    )
    root = base_url.rstrip("/")
    return PaperRecord(
        source=source,
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        arxiv_id=arxiv_id,
        doi=_str(paper.get("doi"), 256),
        url=f"{root}/papers/{arxiv_id}" if arxiv_id else _http_url(paper.get("url") or item.get("url")),
        thumbnail=_http_url(item.get("thumbnail")),
        upvotes=_int(paper.get("upvotes")),
        comments=_int(item.get("numComments")),
        keywords=keywords,
        ai_summary=_str(paper.get("ai_summary"), MAX_ABSTRACT),
        github_repo=_http_url(paper.get("githubRepo")),
        project_page=_http_url(paper.get("projectPage")),
        published_at=parse_datetime(paper.get("publishedAt") or item.get("publishedAt")),
        featured_at=parse_datetime(paper.get("submittedOnDailyAt")),
        external_id=arxiv_id,
    )


def parse_hf_page(data: Any, where: str, base_url: str, source: str) -> tuple[list[PaperRecord], list[Rejection]]:
    """One `/api/daily_papers` page: records for good items, a rejection per malformed one (no `paper.id`)."""
    if not isinstance(data, list):
        raise SourceError(f"{where}: expected a JSON array of papers, got a JSON {type(data).__name__}")
    records: list[PaperRecord] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(data):
        at = f"{where} item {index + 1}"
        try:
            paper = item.get("paper") if isinstance(item, Mapping) else None
            if not isinstance(paper, Mapping):
                raise RecordError("no 'paper' object")
            if not isinstance(paper.get("id"), str) or not paper["id"].strip():
                raise RecordError("paper.id missing")
            records.append(parse_hf_item(item, source, base_url))
        except (RecordError, ValueError, TypeError) as exc:
            rejected.append(Rejection(at, str(exc)))
    return records, rejected


def decode_json(fetched: Fetched) -> Any:
    """The JSON body, or a SourceError saying what came instead (truncated JSON, an HTML error page)."""
    try:
        return json.loads(fetched.content)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        got = describe_body(fetched.content, fetched.content_type)
        raise SourceError(f"{redacted_url(fetched.url)}: expected JSON, got {got} ({exc})") from None


class HfDailySource:
    """`GET {base_url}/api/daily_papers?date=…&p=…&limit=…` for each of the last `days` days, every page."""

    def __init__(self, config: HfDailySourceConfig) -> None:
        self.config = config
        self.name = config.name

    def days(self, now: dt.datetime) -> list[dt.date]:
        """The dates to poll, oldest first, ending today (UTC)."""
        today = now.astimezone(dt.UTC).date()
        return [today - dt.timedelta(days=back) for back in range(self.config.days - 1, -1, -1)]

    async def fetch(self, ctx: FetchContext) -> SourceResult:
        base = check_http_url(self.config.base_url.rstrip("/"), f"source {self.name!r}: base_url")
        http = HttpFetcher(ctx, HttpPolicy.of(self.config), self.name)
        result = SourceResult(not_modified=True)
        seen: set[str] = set()
        days = self.days(ctx.now)
        for day in days:
            await self._fetch_day(http, base, day, set(days), seen, result)
        http.forget_unused()
        event(
            log,
            "hf_daily_fetched",
            logging.DEBUG,
            source=self.name,
            requests=http.requests,
            records=len(result.records),
            skipped=result.skipped,
        )
        return result

    def _params(self, day: dt.date, page: int) -> dict[str, str | int]:
        return {"date": day.isoformat(), "p": page, "limit": self.config.limit}

    async def _fetch_day(
        self,
        http: HttpFetcher,
        base: str,
        day: dt.date,
        window: set[dt.date],
        seen: set[str],
        result: SourceResult,
    ) -> None:
        limit = self.config.limit
        previous: list[str] | None = None
        url = f"{base}/api/daily_papers"
        for page in range(MAX_PAGES):
            fetched = await http.get(url, self._params(day, page), accept="application/json")
            if fetched.not_modified:
                if http.has_validators(url, self._params(day, page + 1)):
                    continue
                break
            result.not_modified = False
            data = decode_json(fetched)
            records, rejected = parse_hf_page(data, f"{day} p{page}", base, self.name)
            result.rejected.extend(rejected)
            ids = [r.arxiv_id or r.title for r in records]
            if ids and ids == previous:
                break
            previous = ids
            for record in records:
                featured = record.featured_at
                key = record.arxiv_id or record.title
                if (featured is not None and featured.date() not in window) or key in seen:
                    result.skipped += 1
                    continue
                seen.add(key)
                result.records.append(record)
            if len(data) < limit:
                break


__all__ = ["HfDailySource", "decode_json", "parse_hf_item", "parse_hf_page"]
