"""Web hygiene for every response: security headers, no caching of token pages, a cap on request bodies.

Tokens travel in URLs, so pages that carry one are never cached or sent on as a referrer; pages may not be
framed; scripts are not allowed at all (the pages need none). Cross-site form posts are refused where the
browser says where they came from (`Sec-Fetch-Site`), though a post needs the secret token in its URL anyway;
the RFC 8058 one-click POSTs of mail providers carry no such header and pass.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 16 * 1024
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# the stored email: its CSS is inline (mail clients need it so), its images are remote
MESSAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'none'; base-uri 'none'"
)
CROSS_SITE = {"cross-site", "same-site"}


class Guard:
    """ASGI middleware: headers on every response, 413 for bodies over `MAX_BODY`, 403 for cross-site posts."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] not in {"GET", "HEAD"}:
            if headers.get("sec-fetch-site", "") in CROSS_SITE:
                await _plain(send, 403, b"Forbidden\n")
                return
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await _plain(send, 413, b"Request too large\n")
                return
        path: str = scope["path"]
        token_page = not (path.startswith("/static/") or path in {"/healthz", "/robots.txt"})
        csp = MESSAGE_CSP if path.startswith("/v/") else PAGE_CSP
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", csp.encode()),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if token_page:
                    extra += [(b"cache-control", b"no-store"), (b"x-robots-tag", b"noindex, nofollow")]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, capped_receive, send_with_headers)
        except _TooLarge:
            await _plain(send, 413, b"Request too large\n")


class _TooLarge(Exception):
    """A body without Content-Length grew past the cap."""


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"referrer-policy", b"no-referrer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
