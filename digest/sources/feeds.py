"""RSS 2.0 / RSS 1.0 (RDF) / Atom bodies read with feedparser, and the small field helpers the feed sources share."""

from __future__ import annotations

import calendar
import datetime as dt
import html
import io
import re
import time
from typing import Any

import feedparser

from digest.sources.base import SourceError, clean_text
from digest.sources.http import Fetched, describe_body, redacted_url
from digest.sources.text import author_list, find_doi, plain

FEED_ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
# feedparser keeps one value per element name: the last <dc:identifier> (HighWire's second one is
# `hwp:resource-id:…`, not the DOI) and the first of <title> / <dc:title> (MDPI's <title> carries a
# "Fluids, Vol. 9, Pages 120:" prefix its <dc:title> has not). These are read from the body itself.
_ITEM = re.compile(r"<(item|entry)\b[^>]*>(.*?)</\1\s*>", re.DOTALL)
_DC_IDENTIFIER = re.compile(r"<dc:identifier\b[^>]*>(.*?)</dc:identifier\s*>", re.DOTALL)
_DC_TITLE = re.compile(r"<dc:title\b[^>]*>(.*?)</dc:title\s*>", re.DOTALL)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)


def parse_feed(fetched: Fetched) -> Any:
    """The parsed feed; a SourceError when the body is not a feed at all (an HTML error page, JSON, junk).

    Feeds with small faults (a stray `&`, a wrong encoding label) are read as far as feedparser can read them.
    """
    parsed = feedparser.parse(
        io.BytesIO(fetched.content),
        response_headers={"content-type": fetched.content_type_header or fetched.content_type or "application/xml"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        why = f" ({clean_text(str(problem), limit=160)})" if problem else ""
        raise SourceError(
            f"{redacted_url(fetched.url)}: expected an RSS or Atom feed, got "
            f"{describe_body(fetched.content, fetched.content_type)}{why}"
        )
    if b"<dc:identifier" in fetched.content or b"<dc:title" in fetched.content:
        _add_dc_elements(fetched.content, parsed)
    return parsed


def _element_text(raw: str) -> str:
    return html.unescape(_CDATA.sub(lambda m: m.group(1), raw)).strip()


def _add_dc_elements(content: bytes, parsed: Any) -> None:
    """Give each entry every `<dc:identifier>` (`dc_identifiers`) and its `<dc:title>` (`dc_title`), read from
    the body, when the body's items line up one to one with feedparser's entries."""
    text = content.decode(parsed.get("encoding") or "utf-8", "replace")
    items = _ITEM.findall(text)
    if len(items) != len(parsed.entries):
        return
    for entry, (_tag, body) in zip(parsed.entries, items, strict=True):
        entry["dc_identifiers"] = [_element_text(v) for v in _DC_IDENTIFIER.findall(body)]
        title = _DC_TITLE.search(body)
        if title:
            entry["dc_title"] = _element_text(title.group(1))


def strip_html(value: Any, *, limit: int | None = None) -> str:
    """Plain text from a possibly-HTML fragment: tags dropped (inline ones without a space), entities decoded,
    TeX accents as Unicode, white space collapsed."""
    return plain(value, limit=limit)


def http_link(value: Any) -> str | None:
    """`value` when it is an absolute http(s) URL (javascript:, data:, relative links are dropped)."""
    text = clean_text(value, limit=2_000)
    if text.lower().startswith(("http://", "https://")) and " " not in text:
        return text
    return None


def entry_time(entry: Any, *names: str) -> dt.datetime | None:
    """The first of the entry's `<name>_parsed` times (feedparser gives UTC struct_time) as aware UTC."""
    for name in names:
        value = entry.get(f"{name}_parsed")
        if isinstance(value, time.struct_time):
            try:
                return dt.datetime.fromtimestamp(calendar.timegm(value), dt.UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def entry_authors(entry: Any, *, limit: int = 500) -> tuple[str, ...]:
    """Author names from `<author>`/`<dc:creator>` elements, in order, without blanks or duplicates: one element
    may list many people (arXiv, bioRxiv, Atypon), several elements are one person each."""
    values = [a.get("name") if isinstance(a, dict) else a for a in entry.get("authors") or []]
    names = author_list(values, limit=limit)
    return names or author_list([entry.get("author")], limit=limit)


def entry_doi(entry: Any, *more: Any) -> str | None:
    """The entry's DOI from wherever the feed put it: `<arxiv:DOI>`, `<prism:doi>`, any `<dc:identifier>`
    (`info:doi/…`, `doi:…`), then `more` (its guid and link, say)."""
    identifiers = entry.get("dc_identifiers") or [entry.get("dc_identifier")]
    return find_doi(entry.get("arxiv_doi"), entry.get("prism_doi"), *identifiers, *more)


def entry_title(entry: Any, *, limit: int) -> str:
    """The entry's title as plain text; its `<dc:title>` when `<title>` only adds a prefix to it (MDPI's
    "Fluids, Vol. 9, Pages 120: …")."""
    title = strip_html(entry.get("title"), limit=limit)
    dc_title = strip_html(entry.get("dc_title"), limit=limit)
    if dc_title and title != dc_title and title.endswith(dc_title):
        return dc_title
    return title or dc_title


def entry_summary(entry: Any, *, limit: int) -> str:
    """The entry's summary (or first content block) as plain text."""
    summary = entry.get("summary")
    if not summary:
        content = entry.get("content") or []
        summary = content[0].get("value") if content and isinstance(content[0], dict) else ""
    return strip_html(summary, limit=limit)
