"""A reader's digests as an Atom feed (RFC 4287): one entry per paper they were sent, newest digest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from digest.compose import excerpt, one_line, paper_url
from digest.store import SentPaper

ATOM = "http://www.w3.org/2005/Atom"
AUTHORS_SHOWN = 8


def _stamp(value: dt.datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")


def atom_feed(title: str, feed_url: str, site_url: str, sid: str, sent: Sequence[SentPaper], now: dt.datetime) -> bytes:
    """The feed document: `feed_url` is its own (signed) address, `sid` the reader's pseudonym in ids."""
    ET.register_namespace("", ATOM)
    host = urlsplit(site_url).hostname or "localhost"
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"tag:{host},2026:digest/{sid}"
    ET.SubElement(feed, f"{{{ATOM}}}title").text = title
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _stamp(max((s.sent_at for s in sent), default=now))
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", type="application/atom+xml", href=feed_url)
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = "Daily papers digest"
    ET.SubElement(feed, f"{{{ATOM}}}generator").text = "digest"
    for s in sent:
        p = s.paper
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}id").text = f"tag:{host},{s.digest_date.isoformat()}:digest/{sid}/{p.id}"
        ET.SubElement(entry, f"{{{ATOM}}}title").text = one_line(p.title) or "(untitled)"
        link = paper_url(p)
        if link:
            ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=link)
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = _stamp(s.sent_at)
        for name in p.authors[:AUTHORS_SHOWN]:
            if one_line(name):
                ET.SubElement(ET.SubElement(entry, f"{{{ATOM}}}author"), f"{{{ATOM}}}name").text = one_line(name)
        summary = excerpt(p.ai_summary or p.abstract or "", 600)
        if summary:
            ET.SubElement(entry, f"{{{ATOM}}}summary").text = summary
        ET.SubElement(entry, f"{{{ATOM}}}category", term=f"digest {s.digest_date.isoformat()}")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", xml_declaration=False)
