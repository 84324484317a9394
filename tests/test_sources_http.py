"""The shared HTTP behaviour of every web source: retries, backoff, Retry-After, budgets, conditional GET."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator

import httpx
import pytest

from digest.sources.base import FetchContext, SourceError
from digest.sources.http import (
    USER_AGENT,
    Fetched,
    HttpFetcher,
    HttpPolicy,
    backoff_delay,
    redacted_url,
    retry_after_seconds,
)
from tests.loopback_http import LoopbackServer, Reply, server, static  # noqa: F401

NOW = dt.datetime(2026, 2, 26, 9, 0, tzinfo=dt.UTC)
URL = "http://feeds.test/feed.xml"


class FakeTime:
    """A clock that only moves when the code under test sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Responder = Callable[[httpx.Request], httpx.Response]


def scripted(*steps: httpx.Response | Exception) -> tuple[Responder, list[httpx.Request]]:
    """A MockTransport handler answering each request with the next step (the last one repeats)."""
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = steps[min(len(seen) - 1, len(steps) - 1)]
        if isinstance(step, Exception):
            raise step
        return step

    return respond, seen


def get(
    responder: Responder,
    policy: HttpPolicy | None = None,
    fake: FakeTime | None = None,
    validators: dict[str, tuple[str | None, str | None]] | None = None,
    url: str = URL,
) -> Fetched:
    fake = fake or FakeTime()

    async def run() -> Fetched:
        async with httpx.AsyncClient(transport=httpx.MockTransport(responder)) as client:
            ctx = FetchContext(NOW, client, validators if validators is not None else {}, fake.sleep, fake.clock)
            return await HttpFetcher(ctx, policy or HttpPolicy(), "test").get(url)

    return asyncio.run(run())


OK = httpx.Response(200, content=b"<rss version='2.0'/>", headers={"Content-Type": "application/rss+xml"})


def test_429_with_retry_after_waits_that_long_then_succeeds() -> None:
    fake = FakeTime()
    respond, seen = scripted(httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"), OK)
    fetched = get(respond, fake=fake)
    assert fetched.status == 200 and fetched.content.startswith(b"<rss")
    assert len(seen) == 2
    assert fake.sleeps == [7.0]


def test_503_twice_then_200_backs_off_exponentially_with_jitter() -> None:
    fake = FakeTime()
    respond, seen = scripted(httpx.Response(503), httpx.Response(503), OK)
    fetched = get(respond, HttpPolicy(backoff_seconds=2.0), fake)
    assert fetched.status == 200
    assert len(seen) == 3
    first, second = fake.sleeps
    assert 1.0 <= first <= 2.0
    assert 2.0 <= second <= 4.0


def test_timeouts_are_retried_then_succeed() -> None:
    fake = FakeTime()
    respond, seen = scripted(httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), OK)
    assert get(respond, HttpPolicy(max_retries=3), fake).status == 200
    assert len(seen) == 3 and len(fake.sleeps) == 2


def test_persistent_timeouts_fail_cleanly_after_max_retries() -> None:
    respond, seen = scripted(httpx.ReadTimeout("slow"))
    with pytest.raises(SourceError, match=r"gave up after 3 attempts, last: timed out"):
        get(respond, HttpPolicy(max_retries=2))
    assert len(seen) == 3


def test_connection_refused_is_retried_then_reported() -> None:
    respond, seen = scripted(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(SourceError, match=r"connection failed \(ConnectError: \[Errno 111\] Connection refused\)"):
        get(respond, HttpPolicy(max_retries=1))
    assert len(seen) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_client_errors_fail_at_once_without_retry(status: int) -> None:
    respond, seen = scripted(httpx.Response(status, json={"error": "bad request"}))
    with pytest.raises(SourceError, match=rf"HTTP {status} .*bad request"):
        get(respond)
    assert len(seen) == 1


def test_5xx_html_error_page_is_retried_and_the_message_names_the_page() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
    respond, seen = scripted(httpx.Response(502, content=page, headers={"Content-Type": "text/html"}))
    with pytest.raises(SourceError, match=r"HTTP 502 Bad Gateway: an HTML page \('502 Bad Gateway'\)"):
        get(respond, HttpPolicy(max_retries=2))
    assert len(seen) == 3


def test_total_time_is_bounded_even_when_each_retry_is_short() -> None:
    fake = FakeTime()
    respond, seen = scripted(httpx.Response(503, headers={"Retry-After": "40"}))
    with pytest.raises(SourceError, match=r"would pass the 100 s time budget"):
        get(respond, HttpPolicy(max_retries=50, max_total_seconds=100), fake)
    assert fake.sleeps == [40.0, 40.0]
    assert len(seen) == 3


def test_a_retry_after_beyond_the_budget_fails_now_instead_of_sleeping() -> None:
    fake = FakeTime()
    respond, _ = scripted(httpx.Response(429, headers={"Retry-After": "86400"}))
    with pytest.raises(SourceError, match=r"waiting 8.64e\+04 s more"):
        get(respond, HttpPolicy(max_total_seconds=300), fake)
    assert fake.sleeps == []


def test_retry_after_as_http_date_and_ratelimit_header() -> None:
    when = "Thu, 26 Feb 2026 09:00:30 GMT"
    assert retry_after_seconds({"retry-after": when}, NOW) == 30.0
    assert retry_after_seconds({"retry-after": "Wed, 25 Feb 2026 09:00:00 GMT"}, NOW) == 0.0
    assert retry_after_seconds({"ratelimit": '"api";r=0;t=55'}, NOW) == 55.0
    assert retry_after_seconds({"retry-after": "soon"}, NOW) is None
    assert retry_after_seconds({}, NOW) is None


def test_backoff_grows_exponentially_is_capped_and_jittered() -> None:
    assert [backoff_delay(n, 1.0, 60.0, lambda: 0.0) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert [backoff_delay(n, 1.0, 60.0, lambda: 1.0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_user_agent_and_conditional_headers_are_sent() -> None:
    respond, seen = scripted(httpx.Response(304))
    validators: dict[str, tuple[str | None, str | None]] = {URL: ('"abc"', "Thu, 26 Feb 2026 05:00:00 GMT")}
    fetched = get(respond, validators=validators)
    assert fetched.not_modified
    request = seen[0]
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["If-None-Match"] == '"abc"'
    assert request.headers["If-Modified-Since"] == "Thu, 26 Feb 2026 05:00:00 GMT"


def test_new_validators_are_kept_per_url_and_dropped_when_the_server_stops_sending_them() -> None:
    validators: dict[str, tuple[str | None, str | None]] = {}
    respond, _ = scripted(httpx.Response(200, content=b"x", headers={"ETag": 'W/"v1"'}))
    get(respond, validators=validators)
    assert validators == {URL: ('W/"v1"', None)}
    respond, _ = scripted(httpx.Response(200, content=b"x"))
    get(respond, validators=validators)
    assert validators == {}


def test_304_to_an_unconditional_request_is_an_error() -> None:
    respond, _ = scripted(httpx.Response(304))
    with pytest.raises(SourceError, match="HTTP 304"):
        get(respond)


def test_oversized_body_is_refused() -> None:
    respond, _ = scripted(httpx.Response(200, content=b"x" * 5_000))
    with pytest.raises(SourceError, match="larger than"):
        get(respond, HttpPolicy(max_bytes=1_000))


def test_errors_never_show_credentials_or_tokens() -> None:
    assert redacted_url("https://user:pw@feeds.test/a?token=s3cret&date=2026-02-26") == (
        "https://feeds.test/a?token=***&date=2026-02-26"
    )
    respond, _ = scripted(httpx.Response(404))
    with pytest.raises(SourceError) as info:
        get(respond, url="https://user:pw@feeds.test/private.xml?api_key=s3cret")
    assert "s3cret" not in str(info.value) and "pw@" not in str(info.value)


@pytest.fixture
def slow_then_fast(server: LoopbackServer) -> Iterator[LoopbackServer]:  # noqa: F811
    calls = {"n": 0}

    def handle(seen: object) -> Reply:
        calls["n"] += 1
        reply = static("journal_rss.xml")(seen)  # type: ignore[arg-type]
        if calls["n"] == 1:
            reply.delay = 1.0
        return reply

    server.route("/feed.xml", handle)
    yield server


def test_a_real_read_timeout_on_loopback_is_retried(slow_then_fast: LoopbackServer) -> None:
    fake = FakeTime()
    url = slow_then_fast.base_url + "/feed.xml"

    async def run() -> Fetched:
        async with httpx.AsyncClient() as client:
            ctx = FetchContext(NOW, client, {}, fake.sleep, fake.clock)
            return await HttpFetcher(ctx, HttpPolicy(timeout=0.2), "test").get(url)

    fetched = asyncio.run(run())
    assert fetched.status == 200 and b"Journal of Example" in fetched.content
    assert len(slow_then_fast.requests) == 2
    assert len(fake.sleeps) == 1
    assert slow_then_fast.requests[0].headers["user-agent"] == USER_AGENT


def test_an_unusable_url_is_a_clean_failure() -> None:
    respond, seen = scripted(OK)
    with pytest.raises(SourceError, match="not a usable URL"):
        get(respond, url="http://[::1/feed.xml")
    assert seen == []
