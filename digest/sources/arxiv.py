"""arXiv: the Atom query API (newest submissions per category, paged) or the rss.arxiv.org daily listing."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from typing import Any

from digest.config import ArxivSourceConfig
from digest.identity import ArxivId, parse_arxiv_id
from digest.logs import event
from digest.models import PaperRecord
from digest.sources.base import FetchContext, RecordError, Rejection, SourceError, SourceResult, clean_text
from digest.sources.feeds import (
    FEED_ACCEPT,
    entry_authors,
    entry_summary,
    entry_time,
    parse_feed,
    strip_html,
)
from digest.sources.hf_daily import MAX_ABSTRACT, MAX_TITLE
from digest.sources.http import HttpFetcher, HttpPolicy, check_http_url, redacted_url

API_BASE = "https://export.arxiv.org"
RSS_BASE = "https://rss.arxiv.org"
ARXIV_MIN_DELAY = 3.0
KEEP_ANNOUNCE = {"new", "cross"}
EMPTY_PAGE_RETRIES = 2
_CATEGORY = re.compile(r"^[A-Za-z][A-Za-z\-]*(?:\.[A-Za-z\-]+)?$")
_RSS_PREFIX = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*[\w\-]+\s*(?:Abstract:\s*)?", re.IGNORECASE)
_TITLE_SUFFIX = re.compile(r"\s*\(arXiv:[^)]*\)\s*$", re.IGNORECASE)

log = logging.getLogger("digest.sources.arxiv")


def abs_url(arxiv: ArxivId) -> str:
    """The paper's canonical abstract page (unversioned, so readers land on the latest version)."""
    return f"https://arxiv.org/abs/{arxiv.id}"


def _versioned(arxiv: ArxivId) -> str:
    return f"{arxiv.id}v{arxiv.version}" if arxiv.version else arxiv.id


def parse_api_entry(entry: Any, source: str) -> PaperRecord:
    """One `<entry>` of the query API: `<id>` is `http(s)://arxiv.org/abs/ID vN`; titles and abstracts hard-wrapped."""
    arxiv = parse_arxiv_id(clean_text(entry.get("id")))
    if arxiv is None:
        raise RecordError(f"<id> {clean_text(entry.get('id'), limit=80)!r} is not an arXiv abs URL")
    title = clean_text(entry.get("title"), limit=MAX_TITLE)
    if not title:
        raise RecordError(f"{arxiv.id}: no title")
    return PaperRecord(
        source=source,
        title=title,
        abstract=entry_summary(entry, limit=MAX_ABSTRACT),
        authors=entry_authors(entry),
        arxiv_id=_versioned(arxiv),
        doi=clean_text(entry.get("arxiv_doi"), limit=256) or None,
        url=abs_url(arxiv),
        published_at=entry_time(entry, "published", "updated"),
        external_id=_versioned(arxiv),
    )


def parse_rss_entry(entry: Any, source: str) -> PaperRecord:
    """One rss.arxiv.org `<item>`: guid `oai:arXiv.org:ID vN`, one comma-joined `<dc:creator>`, and a
    description that starts `arXiv:ID Announce Type: … Abstract: …`."""
    arxiv = parse_arxiv_id(clean_text(entry.get("id"))) or parse_arxiv_id(clean_text(entry.get("link")))
    if arxiv is None:
        raise RecordError(f"guid {clean_text(entry.get('id'), limit=80)!r} holds no arXiv id")
    title = _TITLE_SUFFIX.sub("", clean_text(entry.get("title"), limit=MAX_TITLE))
    if not title:
        raise RecordError(f"{arxiv.id}: no title")
    abstract = _RSS_PREFIX.sub("", strip_html(entry.get("summary"), limit=MAX_ABSTRACT))
    creators = strip_html(entry.get("author"), limit=20_000)
    authors = tuple(a for a in (clean_text(part, limit=300) for part in creators.split(",")) if a)[:500]
    return PaperRecord(
        source=source,
        title=title,
        abstract=abstract,
        authors=authors or entry_authors(entry),
        arxiv_id=_versioned(arxiv),
        url=abs_url(arxiv),
        published_at=entry_time(entry, "published", "updated"),
        external_id=_versioned(arxiv),
    )


def api_error(parsed: Any) -> str | None:
    """The message of the API's error feed (one entry whose id is `…/api/errors#…`), if this is one."""
    for entry in parsed.entries[:1]:
        if "/api/errors" in str(entry.get("id", "")):
            return clean_text(entry.get("summary") or entry.get("title"), limit=300) or "unknown API error"
    return None


class ArxivSource:
    """arXiv in `api` mode (search_query by categories, newest first, paged) or `rss` mode (daily listing)."""

    def __init__(self, config: ArxivSourceConfig) -> None:
        self.config = config
        self.name = config.name

    def _categories(self) -> list[str]:
        for category in self.config.categories:
            if not _CATEGORY.match(category):
                raise SourceError(f"source {self.name!r}: {category!r} is not an arXiv category like cs.LG")
        return list(self.config.categories)

    def policy(self) -> HttpPolicy:
        """The shared HTTP policy, spaced by `delay_seconds` (never under 3 s against the real arXiv)."""
        delay = self.config.delay_seconds
        if not self.config.base_url:
            delay = max(delay, ARXIV_MIN_DELAY)
        return HttpPolicy.of(self.config, min_interval=delay)

    async def fetch(self, ctx: FetchContext) -> SourceResult:
        categories = self._categories()
        http = HttpFetcher(ctx, self.policy(), self.name)
        if self.config.mode == "rss":
            result = await self._fetch_rss(http, categories)
        else:
            result = await self._fetch_api(http, categories, ctx.now)
        http.forget_unused()
        event(
            log,
            "arxiv_fetched",
            logging.DEBUG,
            source=self.name,
            mode=self.config.mode,
            requests=http.requests,
            records=len(result.records),
            skipped=result.skipped,
        )
        return result

    async def _fetch_rss(self, http: HttpFetcher, categories: list[str]) -> SourceResult:
        base = check_http_url((self.config.base_url or RSS_BASE).rstrip("/"), f"source {self.name!r}: base_url")
        fetched = await http.get(f"{base}/rss/{'+'.join(categories)}", accept=FEED_ACCEPT)
        if fetched.not_modified:
            return SourceResult(not_modified=True)
        parsed = await asyncio.to_thread(parse_feed, fetched)
        result = SourceResult()
        keep = KEEP_ANNOUNCE | ({"replace", "replace-cross"} if self.config.include_replacements else set())
        seen: set[str] = set()
        for index, entry in enumerate(parsed.entries):
            announce = clean_text(entry.get("arxiv_announce_type")).lower() or "new"
            if announce not in keep:
                result.skipped += 1
                continue
            try:
                record = parse_rss_entry(entry, self.name)
            except (RecordError, ValueError, TypeError, AttributeError) as exc:
                result.rejected.append(Rejection(f"item {index + 1}", str(exc)))
                continue
            if _key(record) in seen:
                result.skipped += 1
                continue
            seen.add(_key(record))
            result.records.append(record)
        return result

    async def _fetch_api(self, http: HttpFetcher, categories: list[str], now: dt.datetime) -> SourceResult:
        base = check_http_url((self.config.base_url or API_BASE).rstrip("/"), f"source {self.name!r}: base_url")
        query = " OR ".join(f"cat:{c}" for c in categories)
        since = now - dt.timedelta(days=self.config.days)
        result = SourceResult(not_modified=True)
        seen: set[str] = set()
        start = 0
        empty_retries = 0
        while start < self.config.max_results:
            size = min(self.config.page_size, self.config.max_results - start)
            params: dict[str, str | int] = {
                "search_query": query,
                "sortBy": "submittedDate",
                "sortOrder": "descending",
                "start": start,
                "max_results": size,
            }
            fetched = await http.get(f"{base}/api/query", params, accept=FEED_ACCEPT)
            if fetched.not_modified:
                break
            result.not_modified = False
            parsed = await asyncio.to_thread(parse_feed, fetched)
            error = api_error(parsed)
            if error:
                raise SourceError(f"{redacted_url(fetched.url)}: arXiv API error: {error}")
            total = _int(parsed.feed.get("opensearch_totalresults"))
            entries = parsed.entries
            if not entries and total is not None and total > start and empty_retries < EMPTY_PAGE_RETRIES:
                empty_retries += 1
                continue
            older = False
            for index, entry in enumerate(entries):
                try:
                    record = parse_api_entry(entry, self.name)
                except (RecordError, ValueError, TypeError, AttributeError) as exc:
                    result.rejected.append(Rejection(f"start={start} entry {index + 1}", str(exc)))
                    continue
                if record.published_at is not None and record.published_at < since:
                    older = True
                    result.skipped += 1
                    continue
                if _key(record) in seen:
                    result.skipped += 1
                    continue
                seen.add(_key(record))
                result.records.append(record)
            start += len(entries)
            if older or len(entries) < size or (total is not None and start >= total):
                break
        return result


def _key(record: PaperRecord) -> str:
    arxiv = parse_arxiv_id(record.arxiv_id)
    return arxiv.id if arxiv else record.title


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


__all__ = ["ArxivSource", "api_error", "parse_api_entry", "parse_rss_entry"]
