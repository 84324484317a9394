"""arXiv: the Atom query API (newest submissions per category, paged) or the rss.arxiv.org daily listing."""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
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
    entry_doi,
    entry_summary,
    entry_time,
    parse_feed,
    strip_html,
)
from digest.sources.hf_daily import MAX_ABSTRACT, MAX_TITLE
from digest.sources.http import Fetched, HttpFetcher, HttpPolicy, check_http_url, redacted_url
from digest.sources.text import plain

API_BASE = "https://export.arxiv.org"
RSS_BASE = "https://rss.arxiv.org"
ARXIV_MIN_DELAY = 3.0
KEEP_ANNOUNCE = {"new", "cross"}
EMPTY_PAGE_RETRIES = 2
_CATEGORY = re.compile(r"^[A-Za-z][A-Za-z\-]*(?:\.[A-Za-z\-]+)?$")
_RSS_PREFIX = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*[\w\-]+\s*(?:Abstract:\s*)?", re.IGNORECASE)
# The pre-2024 RDF listing has no <arxiv:announce_type>: its titles end `. (arXiv:ID vN [cat] UPDATED)`.
_TITLE_SUFFIX = re.compile(r"\.?\s*\(arXiv:[^)]*?(?:\s+(?P<kind>UPDATED|CROSS LISTED))?\s*\)\s*$", re.IGNORECASE)
_OLD_KINDS = {"updated": "replace", "cross listed": "cross"}
# Archives as of 2026 (rss.arxiv.org answers "Bad archive" for any other); `digest check` names a typo.
ARCHIVES = frozenset(
    [
        *("astro-ph", "cond-mat", "cs", "econ", "eess", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math"),
        *("math-ph", "nlin", "nucl-ex", "nucl-th", "physics", "q-bio", "q-fin", "quant-ph", "stat"),
    ]
)

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
    title = plain(entry.get("title"), limit=MAX_TITLE, markup=False)
    if not title:
        raise RecordError(f"{arxiv.id}: no title")
    return PaperRecord(
        source=source,
        title=title,
        abstract=entry_summary(entry, limit=MAX_ABSTRACT),
        authors=entry_authors(entry),
        arxiv_id=_versioned(arxiv),
        doi=entry_doi(entry),
        url=abs_url(arxiv),
        published_at=entry_time(entry, "published", "updated"),
        external_id=_versioned(arxiv),
    )


def announce_type(entry: Any) -> str:
    """`new`, `cross`, `replace` or `replace-cross`: the listing's `<arxiv:announce_type>`, or what the old RDF
    listing's title suffix says (`UPDATED`, `CROSS LISTED`)."""
    announced = clean_text(entry.get("arxiv_announce_type")).lower()
    if announced:
        return announced
    suffix = _TITLE_SUFFIX.search(clean_text(entry.get("title")))
    kind = (suffix.group("kind") or "").lower() if suffix else ""
    return _OLD_KINDS.get(" ".join(kind.split()), "new")


def is_listing_item(entry: Any) -> bool:
    """True for an rss.arxiv.org item, old or new (however it was configured): it has an announce type, an
    `arXiv:ID Announce Type:` description, or an `(arXiv:ID …)` title suffix on an arXiv link."""
    if entry.get("arxiv_announce_type") or _RSS_PREFIX.match(clean_text(entry.get("summary"))):
        return True
    link = clean_text(entry.get("link")) or clean_text(entry.get("id"))
    return bool(_TITLE_SUFFIX.search(clean_text(entry.get("title")))) and parse_arxiv_id(link) is not None


def parse_rss_entry(entry: Any, source: str) -> PaperRecord:
    """One rss.arxiv.org `<item>`: guid `oai:arXiv.org:ID vN`, one comma-joined `<dc:creator>` in TeX (with
    affiliations in parentheses), a description that starts `arXiv:ID Announce Type: … Abstract: …`, and
    `<arxiv:DOI>` once published. The old RDF listing's `Title. (arXiv:ID [cat])` and HTML creators too."""
    raw_title = clean_text(entry.get("title"))
    suffix = _TITLE_SUFFIX.search(raw_title)
    found = [parse_arxiv_id(clean_text(entry.get("id"))), parse_arxiv_id(suffix.group() if suffix else None)]
    found.append(parse_arxiv_id(clean_text(entry.get("link"))))
    known = [a for a in found if a is not None]
    if not known:
        raise RecordError(f"guid {clean_text(entry.get('id'), limit=80)!r} holds no arXiv id")
    arxiv = next((a for a in known if a.version and a.id == known[0].id), known[0])
    title = plain(_TITLE_SUFFIX.sub("", raw_title), limit=MAX_TITLE, markup=False)
    if not title:
        raise RecordError(f"{arxiv.id}: no title")
    abstract = _RSS_PREFIX.sub("", strip_html(entry.get("summary"), limit=MAX_ABSTRACT))
    return PaperRecord(
        source=source,
        title=title,
        abstract=abstract,
        authors=entry_authors(entry),
        arxiv_id=_versioned(arxiv),
        doi=entry_doi(entry),
        url=abs_url(arxiv),
        published_at=entry_time(entry, "published", "updated"),
        external_id=_versioned(arxiv),
    )


def category_problem(category: str) -> str | None:
    """Why `category` cannot be an arXiv category (`astroph`: not an archive, did you mean astro-ph?), or None."""
    if not _CATEGORY.match(category):
        return f"{category!r} is not an arXiv category like cs.LG"
    archive = category.split(".")[0]
    if archive in ARCHIVES:
        return None
    close = difflib.get_close_matches(archive.lower(), sorted(ARCHIVES), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else f" (archives: {', '.join(sorted(ARCHIVES))})"
    return f"{category!r} is not an arXiv archive{hint}"


def listing_error(parsed: Any) -> str | None:
    """rss.arxiv.org's answer to a bad query (HTTP 200, a channel titled `Feed error for query: …` and no
    items): its description, which names the problem (`Bad archive 'astroph'. Valid archive names are: …`)."""
    title = clean_text(parsed.feed.get("title"))
    if not title.lower().startswith("feed error"):
        return None
    return clean_text(parsed.feed.get("description") or parsed.feed.get("subtitle"), limit=500) or title


def api_error(parsed: Any) -> str | None:
    """The message of the API's error feed (one entry whose id is `…/api/errors#…`), if this is one."""
    for entry in parsed.entries[:1]:
        if "/api/errors" in str(entry.get("id", "")):
            return clean_text(entry.get("summary") or entry.get("title"), limit=300) or "unknown API error"
    return None


def explain_api_refusal(fetched: Fetched) -> str | None:
    """The API's own message in a refused answer (HTTP 400 with an Atom error entry), if it holds one."""
    try:
        error = api_error(parse_feed(fetched))
    except SourceError:
        return None
    return f"arXiv API error: {error}" if error else None


class ArxivSource:
    """arXiv in `api` mode (search_query by categories, newest first, paged) or `rss` mode (daily listing)."""

    def __init__(self, config: ArxivSourceConfig) -> None:
        self.config = config
        self.name = config.name

    def _categories(self) -> list[str]:
        """The configured categories; a malformed one fails before any request (an unknown archive is left for
        arXiv to name, so a new archive works the day arXiv opens it)."""
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
        refused = listing_error(parsed)
        if refused:
            raise SourceError(f"{redacted_url(fetched.url)}: arXiv answered with an error: {refused}")
        result = SourceResult()
        keep = KEEP_ANNOUNCE | ({"replace", "replace-cross"} if self.config.include_replacements else set())
        seen: set[str] = set()
        for index, entry in enumerate(parsed.entries):
            if announce_type(entry) not in keep:
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
            fetched = await http.get(f"{base}/api/query", params, accept=FEED_ACCEPT, explain=explain_api_refusal)
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


__all__ = [
    "ArxivSource",
    "announce_type",
    "api_error",
    "category_problem",
    "is_listing_item",
    "listing_error",
    "parse_api_entry",
    "parse_rss_entry",
]
