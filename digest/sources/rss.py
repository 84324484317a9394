"""Any RSS 2.0 or Atom feed (a journal, a lab blog, an aggregator): title, link, summary, authors, guid, date."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from digest.config import RssSourceConfig
from digest.identity import parse_arxiv_id
from digest.models import PaperRecord
from digest.sources.arxiv import is_listing_item, parse_rss_entry
from digest.sources.base import FetchContext, RecordError, Rejection, SourceResult, clean_text
from digest.sources.feeds import (
    FEED_ACCEPT,
    entry_authors,
    entry_doi,
    entry_summary,
    entry_time,
    entry_title,
    http_link,
    parse_feed,
)
from digest.sources.hf_daily import MAX_ABSTRACT, MAX_TITLE
from digest.sources.http import HttpFetcher, HttpPolicy, check_http_url

ARXIV_HOSTS = {"arxiv.org", "rss.arxiv.org", "export.arxiv.org", "www.arxiv.org"}


def feed_url(config: RssSourceConfig) -> str:
    """`url` as given when absolute, else joined onto `base_url` (so tests can point a feed at loopback)."""
    url = config.url.strip()
    if not url.lower().startswith(("http://", "https://")) and config.base_url:
        url = config.base_url.rstrip("/") + "/" + url.lstrip("/")
    return check_http_url(url, f"source {config.name!r}: url")


def config_hint(config: RssSourceConfig) -> str | None:
    """Advice for `digest check` when a plain feed points at arXiv, whose own source reads it better."""
    try:
        host = (urlsplit(config.url.strip()).hostname or "").lower()
    except ValueError:
        return None
    return 'use type = "arxiv" for rss.arxiv.org' if host in ARXIV_HOSTS else None


def parse_entry(entry: Any, source: str) -> PaperRecord:
    """One `<item>` / `<entry>` as a PaperRecord; arXiv ids and DOIs are picked up when the feed carries them,
    and an rss.arxiv.org item is read as the arXiv source reads it."""
    if is_listing_item(entry):
        return parse_rss_entry(entry, source)
    title = entry_title(entry, limit=MAX_TITLE)
    if not title:
        raise RecordError("no title")
    guid = clean_text(entry.get("id"), limit=2_000) or None
    link = http_link(entry.get("link"))
    arxiv = parse_arxiv_id(guid) or parse_arxiv_id(link)
    return PaperRecord(
        source=source,
        title=title,
        abstract=entry_summary(entry, limit=MAX_ABSTRACT),
        authors=entry_authors(entry),
        arxiv_id=(f"{arxiv.id}v{arxiv.version}" if arxiv.version else arxiv.id) if arxiv else None,
        doi=entry_doi(entry, guid, link),
        url=link,
        published_at=entry_time(entry, "published", "updated", "created"),
        external_id=guid or link,
    )


class RssSource:
    """One feed URL, fetched with conditional GET; every entry with a title becomes a record."""

    def __init__(self, config: RssSourceConfig) -> None:
        self.config = config
        self.name = config.name

    async def fetch(self, ctx: FetchContext) -> SourceResult:
        url = feed_url(self.config)
        http = HttpFetcher(ctx, HttpPolicy.of(self.config), self.name)
        fetched = await http.get(url, accept=FEED_ACCEPT)
        http.forget_unused()
        if fetched.not_modified:
            return SourceResult(not_modified=True)
        parsed = await asyncio.to_thread(parse_feed, fetched)
        result = SourceResult()
        for index, entry in enumerate(parsed.entries):
            try:
                result.records.append(parse_entry(entry, self.name))
            except (RecordError, ValueError, TypeError, AttributeError) as exc:
                where = clean_text(entry.get("id") or entry.get("link"), limit=120) or f"entry {index + 1}"
                result.rejected.append(Rejection(where, str(exc)))
        return result


__all__ = ["RssSource", "config_hint", "feed_url", "parse_entry"]
