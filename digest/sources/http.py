"""The one place web sources talk HTTP: timeouts, retries with exponential backoff and jitter (honouring
Retry-After), a bounded total time, polite spacing, one User-Agent, and conditional GET."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from digest.logs import event
from digest.sources.base import FetchContext, SourceError, clean_text

USER_AGENT = "digest/0.1 (daily research paper digest; +https://github.com/digest/digest)"
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_RETRY_AFTER = 3600.0
_SECRET_PARAM = re.compile(r"token|key|secret|pass|auth|sig", re.IGNORECASE)
_RATELIMIT_RESET = re.compile(r"(?:^|[;,\s])t=(\d+)")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)

log = logging.getLogger("digest.sources.http")


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """How hard one source tries: per-request timeout, retries, total budget, backoff, spacing."""

    timeout: float = 30.0
    max_retries: int = 4
    max_total_seconds: float = 300.0
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    min_interval: float = 0.0
    max_bytes: int = MAX_BODY_BYTES

    @classmethod
    def of(cls, config: object, min_interval: float = 0.0) -> HttpPolicy:
        """The policy an `[[sources]]` entry asks for (any config with the shared HTTP keys)."""
        defaults = cls()
        return cls(
            timeout=float(getattr(config, "timeout", defaults.timeout)),
            max_retries=int(getattr(config, "max_retries", defaults.max_retries)),
            max_total_seconds=float(getattr(config, "max_total_seconds", defaults.max_total_seconds)),
            backoff_seconds=float(getattr(config, "backoff_seconds", defaults.backoff_seconds)),
            backoff_max_seconds=float(getattr(config, "backoff_max_seconds", defaults.backoff_max_seconds)),
            min_interval=min_interval,
        )


@dataclass(frozen=True, slots=True)
class Fetched:
    """One answered GET: the final URL, status, body and media type (`not_modified` for a 304), and the whole
    Content-Type header, whose charset a parser needs when the body does not name its encoding."""

    url: str
    status: int
    content: bytes
    content_type: str
    not_modified: bool = False
    content_type_header: str = ""


def backoff_delay(retry: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry number `retry` (0-based): exponential, capped, with "equal jitter" (half fixed)."""
    ceiling = min(cap, base * (2**retry))
    return ceiling / 2 + rand() * ceiling / 2


def retry_after_seconds(headers: Mapping[str, str], now: dt.datetime) -> float | None:
    """The wait a 429/503 asks for: `Retry-After` (seconds or HTTP date) or a `RateLimit` header's `t=`."""
    value = (headers.get("retry-after") or "").strip()
    if value:
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return max(0.0, (when - now).total_seconds())
    match = _RATELIMIT_RESET.search(headers.get("ratelimit") or "")
    if match:
        return float(match.group(1))
    return None


def redacted_url(url: str) -> str:
    """A URL fit for logs and errors: no user:password, no token-like query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", "//", url.split("?", 1)[0])
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe=":+,*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def check_http_url(url: str, what: str) -> str:
    """`url` if it is an absolute http(s) URL, else a SourceError naming the config key."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise SourceError(f"{what} is not a usable URL: {url!r}") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        raise SourceError(f"{what} must be an http:// or https:// URL, not {url!r}")
    return url


def describe_body(content: bytes, content_type: str) -> str:
    """A short, single-line hint of what a surprising body was (an HTML page's title, or its first words)."""
    if b"<html" in content[:2048].lower() or "html" in content_type:
        match = _TITLE.search(content[:65536])
        title = clean_text(match.group(1).decode("utf-8", "replace"), limit=120) if match else ""
        return f"an HTML page{f' ({title!r})' if title else ''}"
    snippet = clean_text(content[:300].decode("utf-8", "replace"), limit=160)
    return repr(snippet) if snippet else "an empty body"


def full_url(url: str, params: Mapping[str, str | int] | None = None) -> str:
    """The exact URL a GET asks for, also the key its validators are stored under."""
    return str(httpx.URL(url, params=params)) if params else url


class HttpFetcher:
    """GETs for one source during one fetch, sharing its time budget, spacing and validators."""

    def __init__(self, ctx: FetchContext, policy: HttpPolicy, source: str) -> None:
        self.ctx = ctx
        self.policy = policy
        self.source = source
        self.started = ctx.clock()
        self.deadline = self.started + policy.max_total_seconds
        self.last_request: float | None = None
        self.used: set[str] = set()
        self.requests = 0

    def remaining(self) -> float:
        return self.deadline - self.ctx.clock()

    async def _space(self) -> None:
        if self.last_request is not None and self.policy.min_interval > 0:
            wait = self.last_request + self.policy.min_interval - self.ctx.clock()
            if wait > 0:
                await self.ctx.sleep(wait)
        self.last_request = self.ctx.clock()

    async def _send(self, url: str, headers: dict[str, str], budget: float) -> tuple[httpx.Response, bytes]:
        timeout = httpx.Timeout(min(self.policy.timeout, budget))
        async with asyncio.timeout(budget):
            request = self.ctx.client.build_request("GET", url, headers=headers, timeout=timeout)
            response = await self.ctx.client.send(request, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.policy.max_bytes:
                        raise SourceError(
                            f"{redacted_url(url)}: response larger than {self.policy.max_bytes // 1_000_000} MB"
                        )
                    chunks.append(chunk)
                return response, b"".join(chunks)
            finally:
                await response.aclose()

    async def get(
        self,
        url: str,
        params: Mapping[str, str | int] | None = None,
        *,
        accept: str = "*/*",
        conditional: bool = True,
        explain: Callable[[Fetched], str | None] | None = None,
    ) -> Fetched:
        """GET `url`, retrying transient failures within the budget; a SourceError says why it gave up.

        `explain` reads a refused answer's body for the service's own message (arXiv's Atom error entry)
        to show instead of a raw snippet of it.
        """
        try:
            full = full_url(url, params)
            httpx.URL(full)
        except (httpx.InvalidURL, ValueError) as exc:
            raise SourceError(f"{redacted_url(url)}: not a usable URL ({exc})") from None
        shown = redacted_url(full)
        headers = {"User-Agent": USER_AGENT, "Accept": accept}
        etag, modified = self.ctx.validators.get(full, (None, None)) if conditional else (None, None)
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        self.used.add(full)
        retry = 0
        while True:
            budget = self.remaining()
            if budget <= 0:
                raise SourceError(f"{shown}: gave up, the {self.policy.max_total_seconds:g} s time budget is spent")
            await self._space()
            budget = self.remaining()
            self.requests += 1
            wait: float | None = None
            try:
                response, body = await self._send(full, headers, max(budget, 0.001))
            except TimeoutError:
                raise SourceError(
                    f"{shown}: gave up, the {self.policy.max_total_seconds:g} s time budget ran out mid-request"
                ) from None
            except httpx.TimeoutException:
                problem = f"timed out after {min(self.policy.timeout, budget):.3g} s"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__}: {str(exc) or 'no detail'})"
            except httpx.HTTPError as exc:
                raise SourceError(f"{shown}: {type(exc).__name__}: {exc}") from None
            else:
                status = response.status_code
                if status == 304 and (etag or modified):
                    return Fetched(str(response.url), status, b"", "", not_modified=True)
                header = response.headers.get("content-type", "")
                answer = Fetched(str(response.url), status, body, header.split(";")[0].strip().lower(), False, header)
                if 200 <= status < 300:
                    self._remember(full, response.headers)
                    return answer
                detail = (explain(answer) if explain else None) or describe_body(body, header.lower())
                problem = f"HTTP {status} {response.reason_phrase}: {detail}".strip()
                if status != 429 and status < 500:
                    raise SourceError(f"{shown}: {problem}")
                elapsed = dt.timedelta(seconds=self.ctx.clock() - self.started)
                wait = retry_after_seconds(response.headers, self.ctx.now + elapsed)
            if retry >= self.policy.max_retries:
                raise SourceError(f"{shown}: gave up after {retry + 1} attempts, last: {problem}")
            if wait is None:
                wait = backoff_delay(retry, self.policy.backoff_seconds, self.policy.backoff_max_seconds)
            if wait > min(MAX_RETRY_AFTER, self.remaining()):
                raise SourceError(
                    f"{shown}: gave up after {retry + 1} attempts: waiting {wait:.3g} s more would pass the "
                    f"{self.policy.max_total_seconds:g} s time budget; last: {problem}"
                )
            event(
                log, "http_retry", logging.WARNING, source=self.source, url=shown, problem=problem, wait=f"{wait:.2f}"
            )
            await self.ctx.sleep(wait)
            retry += 1

    def has_validators(self, url: str, params: Mapping[str, str | int] | None = None) -> bool:
        """True when the last successful fetch stored an ETag or Last-Modified for this URL."""
        return full_url(url, params) in self.ctx.validators

    def _remember(self, url: str, headers: httpx.Headers) -> None:
        etag, modified = headers.get("etag"), headers.get("last-modified")
        if etag or modified:
            self.ctx.validators[url] = (etag, modified)
        else:
            self.ctx.validators.pop(url, None)

    def forget_unused(self) -> None:
        """Drop stored validators for URLs this fetch did not ask for (yesterday's dates), keeping the table small."""
        for url in [u for u in self.ctx.validators if u not in self.used]:
            del self.ctx.validators[url]
