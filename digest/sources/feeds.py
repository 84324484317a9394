"""RSS 2.0 / Atom bodies read with feedparser, and the small field helpers the feed sources share."""

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

FEED_ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
_TAG = re.compile(r"<[^>]+>")
_BLOCK = re.compile(r"</?(?:p|br|div|li|ul|ol|h\d|blockquote|tr|td)\b[^>]*>", re.IGNORECASE)


def parse_feed(fetched: Fetched) -> Any:
    """The parsed feed; a SourceError when the body is not a feed at all (an HTML error page, JSON, junk).

    Feeds with small faults (a stray `&`, a wrong encoding label) are read as far as feedparser can read them.
    """
    parsed = feedparser.parse(
        io.BytesIO(fetched.content),
        response_headers={"content-type": fetched.content_type or "application/xml"},
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
    return parsed


def strip_html(value: Any, *, limit: int | None = None) -> str:
    """Plain text from a possibly-HTML fragment: tags dropped, entities decoded, white space collapsed."""
    if not isinstance(value, str):
        return ""
    text = _TAG.sub(" ", _BLOCK.sub(" ", value))
    return clean_text(html.unescape(text), limit=limit)


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
    """Author names from `<author>`/`<dc:creator>` elements, in order, without blanks or duplicates."""
    names: list[str] = []
    for author in entry.get("authors") or []:
        name = strip_html(author.get("name") if isinstance(author, dict) else author, limit=300)
        if name and name not in names:
            names.append(name)
    if not names:
        single = strip_html(entry.get("author"), limit=300)
        if single:
            names.append(single)
    return tuple(names[:limit])


def entry_summary(entry: Any, *, limit: int) -> str:
    """The entry's summary (or first content block) as plain text."""
    summary = entry.get("summary")
    if not summary:
        content = entry.get("content") or []
        summary = content[0].get("value") if content and isinstance(content[0], dict) else ""
    return strip_html(summary, limit=limit)
