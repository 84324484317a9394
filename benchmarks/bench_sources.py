"""How fast the web sources turn bodies into records: HF JSON pages, an arXiv API feed, an RSS listing, and
a generated real-day arXiv listing (TeX names, affiliations, maths, a real day's share of replacements).

Run: `PYTHONPATH=. .venv/bin/python benchmarks/bench_sources.py [--items N] [--day N]` (default 2000 items and a
1,500-item day; prints items/s). The day's listing must parse in under a second (issue 19); this prints it.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import time
from pathlib import Path

from digest.sources.arxiv import KEEP_ANNOUNCE, announce_type, parse_api_entry, parse_rss_entry
from digest.sources.feeds import parse_feed
from digest.sources.hf_daily import parse_hf_page
from digest.sources.http import Fetched
from tests.arxiv_listing import arxiv_listing

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def hf_items(n: int) -> bytes:
    base = json.loads((FIXTURES / "hf_daily_2026-02-26.json").read_text())
    items = []
    for i in range(n):
        item = copy.deepcopy(base[i % len(base)])
        item["paper"]["id"] = f"2602.{10000 + i}"
        items.append(item)
    return json.dumps(items).encode()


def many_entries(name: str, tag: bytes, n: int) -> bytes:
    """The fixture feed with its entries repeated to `n`, each under a fresh arXiv id."""
    text = (FIXTURES / name).read_bytes()
    entries = re.findall(rb"<" + tag + rb">.*?</" + tag + rb">\n", text, re.S)
    start = text.index(entries[0])
    end = text.index(entries[-1]) + len(entries[-1])
    body = []
    for i in range(n):
        entry = entries[i % len(entries)]
        found = re.search(rb"\d{4}\.\d{5}", entry)
        fresh = b"26%02d.%05d" % (i // 90000 + 1, 10000 + i % 90000)
        body.append(entry.replace(found.group(0), fresh) if found else entry)
    return text[:start] + b"".join(body) + text[end:]


def timed(label: str, n: int, fn: object) -> None:
    started = time.perf_counter()
    count = fn()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"{label:<34} {n:>6} entries {count:>6} records  {seconds * 1000:8.1f} ms  {n / seconds:8.0f} entries/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--day", type=int, default=1500, help="items in the generated real-day arXiv listing")
    args = parser.parse_args()
    n = args.items

    hf_body = hf_items(n)

    def hf() -> int:
        records, _ = parse_hf_page(json.loads(hf_body), "bench", "https://huggingface.co", "hf")
        return len(records)

    api_body = many_entries("arxiv_api_query.xml", b"entry", n)

    def api() -> int:
        parsed = parse_feed(Fetched("http://bench/api", 200, api_body, "application/atom+xml"))
        ok = 0
        for entry in parsed.entries:
            try:
                parse_api_entry(entry, "arxiv")
                ok += 1
            except ValueError:
                pass
        return ok

    rss_body = many_entries("arxiv_rss_cs.LG+cs.CL.xml", b"item", n)

    def rss() -> int:
        parsed = parse_feed(Fetched("http://bench/rss", 200, rss_body, "application/rss+xml"))
        ok = 0
        for entry in parsed.entries:
            try:
                parse_rss_entry(entry, "arxiv")
                ok += 1
            except ValueError:
                pass
        return ok

    day = arxiv_listing(args.day)

    def real_day() -> int:
        """What ArxivSource does with a listing: parse, skip replacements, read every kept item."""
        parsed = parse_feed(Fetched("http://bench/rss/cs.LG", 200, day.body, "application/rss+xml"))
        kept = [e for e in parsed.entries if announce_type(e) in KEEP_ANNOUNCE]
        return len([parse_rss_entry(e, "arxiv") for e in kept])

    print(f"bodies: hf {len(hf_body) / 1e6:.1f} MB, api {len(api_body) / 1e6:.1f} MB, rss {len(rss_body) / 1e6:.1f} MB")
    timed("hf_daily JSON page -> records", n, hf)
    timed("arXiv API Atom -> records", n, api)
    timed("arXiv RSS listing -> records", n, rss)
    print(f"real day: {len(day.body) / 1e6:.1f} MB, {day.replacements} replacements")
    timed("arXiv RSS real day -> records", day.items, real_day)


if __name__ == "__main__":
    main()
