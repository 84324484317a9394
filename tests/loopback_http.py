"""A real HTTP server on 127.0.0.1 (http.server in a thread) that serves fixture files at the real feeds' paths.

Handlers imitate the real services closely enough for the sources: the Hugging Face daily-papers API pages a
fixture by `p`/`limit` and answers 400 for a bad date, the arXiv query API slices `<entry>`s by
`start`/`max_results`, and static feeds honour ETag / Last-Modified with 304.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LAST_MODIFIED = "Thu, 26 Feb 2026 05:00:00 GMT"


@dataclass(slots=True)
class Seen:
    """One request as the server received it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Handler = Callable[[Seen], Reply]


class LoopbackServer:
    """Routes by path; records every request; runs until `close`."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Seen] = []
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(parts.path, dict(parse_qsl(parts.query)), {k.lower(): v for k, v in self.headers.items()})
                owner.requests.append(seen)
                handler = owner.routes.get(parts.path)
                reply = handler(seen) if handler else Reply(404, b"<html><title>404 Not Found</title></html>")
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    try:
        yield srv
    finally:
        srv.close()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def conditional(seen: Seen, body: bytes, content_type: str) -> Reply:
    """200 with ETag and Last-Modified, or 304 when the request's validators still match."""
    etag = _etag(body)
    headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED, "Content-Type": content_type}
    if seen.headers.get("if-none-match") == etag or (
        "if-none-match" not in seen.headers and seen.headers.get("if-modified-since") == LAST_MODIFIED
    ):
        return Reply(304, b"", {"ETag": etag})
    return Reply(200, body, headers)


def static(name: str, content_type: str = "application/rss+xml; charset=utf-8") -> Handler:
    """Serve one fixture file, with conditional GET."""
    return lambda seen: conditional(seen, fixture_bytes(name), content_type)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def hf_daily_api(
    days: dict[str, str], *, bad_dates: frozenset[str] = frozenset(), rewrite: dict[str, str] | None = None
) -> Handler:
    """`/api/daily_papers?date=&p=&limit=`: the day's fixture sliced into pages; [] past the end or for a day
    without a fixture (weekend); HTTP 400 for a malformed date (or one listed in `bad_dates`). `rewrite`
    replaces text in the fixture first (to move its dates to today for runs on the real clock)."""

    def handle(seen: Seen) -> Reply:
        date = seen.query.get("date", "")
        if not _DATE.match(date) or date in bad_dates:
            body = json.dumps({"error": f'"date" must be a valid date in YYYY-MM-DD format, got "{date}"'})
            return Reply(400, body.encode(), {"Content-Type": "application/json; charset=utf-8"})
        page, limit = int(seen.query.get("p", "0")), int(seen.query.get("limit", "50"))
        text = fixture_bytes(days[date]).decode() if date in days else "[]"
        for before, after in (rewrite or {}).items():
            text = text.replace(before, after)
        items = json.loads(text)
        page_body = json.dumps(items[page * limit : (page + 1) * limit]).encode()
        return conditional(seen, page_body, "application/json; charset=utf-8")

    return handle


_ENTRY = re.compile(rb"  <entry>.*?</entry>\n", re.DOTALL)


def arxiv_query_api(name: str = "arxiv_api_query.xml") -> Handler:
    """`/api/query?search_query=&start=&max_results=`: the fixture's entries from `start`, at most `max_results`."""

    def handle(seen: Seen) -> Reply:
        text = fixture_bytes(name)
        entries = _ENTRY.findall(text)
        head = text[: text.index(b"  <entry>")]
        start, size = int(seen.query.get("start", "0")), int(seen.query.get("max_results", "10"))
        page = entries[start : start + size]
        head = re.sub(rb"(<opensearch:startIndex[^>]*>)\d+", rb"\g<1>" + str(start).encode(), head)
        head = re.sub(rb"(<opensearch:itemsPerPage[^>]*>)\d+", rb"\g<1>" + str(len(page)).encode(), head)
        return Reply(200, head + b"".join(page) + b"</feed>\n", {"Content-Type": "application/atom+xml"})

    return handle


def write_config(folder: Path, sources: str) -> Path:
    """A complete config (SQLite file in `folder`, one subscriber) with the given `[[sources]]` TOML."""
    path = folder / "digest.toml"
    path.write_text(
        'database_url = "sqlite:///digest.db"\n\n'
        + sources.strip()
        + '\n\n[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["linear attention"]\n',
        encoding="utf-8",
    )
    return path
