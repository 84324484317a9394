"""Hugging Face Daily Papers against a loopback server serving fixtures at `/api/daily_papers`, into SQLite."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import Engine, select

from digest import fetching, store
from digest.config import Settings, load_config
from digest.models import Paper
from tests.loopback_http import (  # noqa: F401
    LoopbackServer,
    Reply,
    Seen,
    fixture_bytes,
    hf_daily_api,
    server,
    write_config,
)

NOW = dt.datetime(2026, 2, 26, 9, 30, tzinfo=dt.UTC)
DAYS = {"2026-02-26": "hf_daily_2026-02-26.json", "2026-02-25": "hf_daily_2026-02-25.json"}


def setup(tmp_path: Path, srv: LoopbackServer, **options: object) -> tuple[Settings, Engine]:
    opts = {"limit": 50, "days": 3, "backoff_seconds": 0.01, **options}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in opts.items())
    config = write_config(
        tmp_path, f'[[sources]]\nname = "hf"\ntype = "hf_daily"\nbase_url = "{srv.base_url}"\n{lines}'
    )
    settings = load_config(config)
    return settings, store.open_engine(settings.database_url)


def papers(engine: Engine) -> dict[str, Paper]:
    with engine.connect() as conn:
        rows = conn.execute(select(store.paper_t)).all()
    return {r.arxiv_id or r.title: Paper.model_validate(dict(r._mapping)) for r in rows}


def test_pages_every_polled_day_and_keeps_every_field(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/daily_papers", hf_daily_api(DAYS))
    settings, engine = setup(tmp_path, server, limit=2)
    [report] = fetching.fetch(engine, settings, NOW)

    assert (report.status, report.counts.seen, report.counts.new, report.rejected) == ("ok", 6, 6, 0)
    asked = [(r.query["date"], r.query["p"], r.query["limit"]) for r in server.requests]
    assert asked == [
        ("2026-02-24", "0", "2"),
        ("2026-02-25", "0", "2"),
        ("2026-02-25", "1", "2"),
        ("2026-02-26", "0", "2"),
        ("2026-02-26", "1", "2"),
        ("2026-02-26", "2", "2"),
    ]
    stored = papers(engine)
    assert "2602.18002" not in stored, "featured on 2026-02-19: outside the polled window"
    gla = stored["2602.23229"]
    assert gla.title == "Gated Linear Attention at Scale: Training 7B State Space Hybrids"
    assert gla.abstract.startswith("Linear attention and state space models promise constant-memory inference, but hy")
    assert "\n" not in gla.abstract
    assert gla.authors == ["Mira Okafor", "Jun Tanaka"], "the hidden author is left out"
    assert (gla.upvotes, gla.comments) == (87, 6)
    assert gla.keywords == ["linear attention", "state space models", "gated recurrence", "hybrid architecture"]
    assert gla.ai_summary and gla.ai_summary.startswith("A gated linear-attention hybrid")
    assert gla.github_repo == "https://github.com/example-lab/gla-7b"
    assert gla.project_page == "https://example-lab.github.io/gla-7b/"
    assert gla.thumbnail == "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2602.23229.png"
    assert gla.url == f"{server.base_url}/papers/2602.23229"
    assert gla.featured_at is not None and gla.featured_at.replace(tzinfo=dt.UTC) == dt.datetime(
        2026, 2, 26, 1, 12, 44, 813000, tzinfo=dt.UTC
    )
    quant = stored["2602.22810"]
    assert (quant.ai_summary, quant.github_repo, quant.keywords) == (
        None,
        None,
        ["quantization", "Mamba", "Hadamard rotation"],
    )
    bench = stored["2602.21977"]
    assert (bench.authors, bench.keywords, bench.ai_summary, bench.upvotes) == ([], [], None, 19)
    assert stored["2602.23001"].thumbnail is None
    assert stored["2602.20455"].keywords == []


def test_an_empty_day_is_a_success_with_nothing(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/daily_papers", hf_daily_api({}))
    settings, engine = setup(tmp_path, server, days=1)
    [report] = fetching.fetch(engine, settings, dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC))
    assert (report.status, report.counts.seen, report.error) == ("ok", 0, None)
    assert server.paths() == ["/api/daily_papers"]
    assert server.requests[0].query["date"] == "2026-02-28"


def test_http_400_for_a_bad_date_fails_cleanly_without_retrying(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/daily_papers", hf_daily_api(DAYS, bad_dates=frozenset({"2026-02-25"})))
    settings, engine = setup(tmp_path, server)
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed"
    assert report.error and "HTTP 400 Bad Request" in report.error and "date=2026-02-25" in report.error
    assert [r.query["date"] for r in server.requests] == ["2026-02-24", "2026-02-25"]
    with engine.connect() as conn:
        assert store.count_papers(conn) == 0
        assert store.fetch_runs(conn)[0].status == "failed"


def test_malformed_items_are_rejected_with_a_count_and_the_rest_stored(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/daily_papers", hf_daily_api({"2026-02-27": "hf_daily_bad_items.json"}))
    settings, engine = setup(tmp_path, server, days=1)
    [report] = fetching.fetch(engine, settings, dt.datetime(2026, 2, 27, 9, 0, tzinfo=dt.UTC))
    assert (report.status, report.counts.new, report.rejected) == ("ok", 1, 4)
    with engine.connect() as conn:
        run = store.fetch_runs(conn)[0]
    assert (run.status, run.new, run.rejected) == ("ok", 1, 4)
    [good] = papers(engine).values()
    assert good.arxiv_id == "2602.24100"
    assert (good.github_repo, good.project_page, good.thumbnail) == (None, None, None), "only http(s) links survive"


def test_missing_paper_id_is_named_in_the_rejection(tmp_path: Path, server: LoopbackServer, caplog: object) -> None:  # noqa: F811
    import logging

    server.route("/api/daily_papers", hf_daily_api({"2026-02-27": "hf_daily_bad_items.json"}))
    settings, engine = setup(tmp_path, server, days=1)
    with_caplog = caplog  # pytest's LogCaptureFixture
    with with_caplog.at_level(logging.INFO, logger="digest"):  # type: ignore[attr-defined]
        fetching.fetch(engine, settings, dt.datetime(2026, 2, 27, 9, 0, tzinfo=dt.UTC))
    lines = [r.getMessage() for r in with_caplog.records if "item_rejected" in r.getMessage()]  # type: ignore[attr-defined]
    assert len(lines) == 4
    assert sum("paper.id missing" in line for line in lines) == 2
    assert any("no 'paper' object" in line for line in lines)


def test_truncated_json_fails_cleanly(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    body = fixture_bytes("hf_daily_2026-02-26.json")[:700]
    server.route("/api/daily_papers", lambda seen: Reply(200, body, {"Content-Type": "application/json"}))
    settings, engine = setup(tmp_path, server, days=1)
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed"
    assert report.error and "expected JSON" in report.error
    assert len(server.requests) == 1, "a bad body is not retried"
    with engine.connect() as conn:
        assert store.count_papers(conn) == 0


def test_an_html_page_instead_of_json_fails_cleanly(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    page = b"<!doctype html><html><head><title>Hugging Face - We'll be right back</title></head><body>...</body></html>"
    server.route("/api/daily_papers", lambda seen: Reply(200, page, {"Content-Type": "text/html; charset=utf-8"}))
    settings, engine = setup(tmp_path, server, days=1)
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed"
    assert report.error and "expected JSON, got an HTML page" in report.error and "right back" in report.error


def test_a_json_object_instead_of_an_array_fails_cleanly(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    body = b'{"error": "Internal Error - We\'re working hard to fix this as soon as possible!"}'
    server.route("/api/daily_papers", lambda seen: Reply(200, body, {"Content-Type": "application/json"}))
    settings, engine = setup(tmp_path, server, days=1)
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed" and report.error and "expected a JSON array" in report.error


def test_503_twice_then_200_on_loopback_is_stored(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    api = hf_daily_api(DAYS)

    def flaky(seen: Seen) -> Reply:
        if len(server.requests) <= 2:
            return Reply(503, b"<html><title>503 Service Unavailable</title></html>", {"Content-Type": "text/html"})
        return api(seen)

    server.route("/api/daily_papers", flaky)
    settings, engine = setup(tmp_path, server, days=1)
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new) == ("ok", 5)
    assert len(server.requests) == 3


def test_429_with_retry_after_then_200_on_loopback_is_stored(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    api = hf_daily_api(DAYS)

    def limited(seen: Seen) -> Reply:
        if len(server.requests) == 1:
            return Reply(429, b'{"error":"rate limited"}', {"Retry-After": "0", "RateLimit": '"api";r=0;t=0'})
        return api(seen)

    server.route("/api/daily_papers", limited)
    settings, engine = setup(tmp_path, server, days=1)
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new) == ("ok", 5)
    assert len(server.requests) == 2


def test_conditional_get_turns_an_unchanged_day_into_not_modified(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/daily_papers", hf_daily_api(DAYS))
    settings, engine = setup(tmp_path, server, days=1)
    [first] = fetching.fetch(engine, settings, NOW)
    assert (first.status, first.counts.new) == ("ok", 5)
    with engine.connect() as conn:
        saved = store.load_validators(conn, "hf")
    assert list(saved) == [f"{server.base_url}/api/daily_papers?date=2026-02-26&p=0&limit=50"]
    later = NOW + dt.timedelta(hours=1)
    [second] = fetching.fetch(engine, settings, later)
    assert (second.status, second.counts.seen) == ("not_modified", 0)
    assert server.requests[-1].headers["if-none-match"] == saved[next(iter(saved))][0]


def test_validators_for_days_no_longer_polled_are_dropped(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/daily_papers", hf_daily_api(DAYS))
    settings, engine = setup(tmp_path, server, days=1)
    fetching.fetch(engine, settings, NOW - dt.timedelta(days=1))
    fetching.fetch(engine, settings, NOW)
    with engine.connect() as conn:
        saved = store.load_validators(conn, "hf")
    assert [url.split("date=")[1][:10] for url in saved] == ["2026-02-26"]


def test_a_server_that_ignores_the_page_parameter_does_not_loop(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    body = fixture_bytes("hf_daily_2026-02-26.json")
    server.route("/api/daily_papers", lambda seen: Reply(200, body, {"Content-Type": "application/json"}))
    settings, engine = setup(tmp_path, server, days=1, limit=5)
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new) == ("ok", 5)
    assert len(server.requests) == 2


def test_conditional_get_walks_unchanged_pages_and_stops_where_it_stopped_before(
    tmp_path: Path,
    server: LoopbackServer,  # noqa: F811
) -> None:
    server.route("/api/daily_papers", hf_daily_api(DAYS))
    settings, engine = setup(tmp_path, server, days=1, limit=2)
    fetching.fetch(engine, settings, NOW)
    assert [r.query["p"] for r in server.requests] == ["0", "1", "2"]
    [again] = fetching.fetch(engine, settings, NOW + dt.timedelta(hours=1))
    assert again.status == "not_modified"
    assert [r.query["p"] for r in server.requests[3:]] == ["0", "1", "2"]
    assert all("if-none-match" in r.headers for r in server.requests[3:])


def test_an_escaped_dollar_in_a_title_shows_without_its_backslash(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    day = json.loads(fixture_bytes("hf_daily_2026-02-26.json"))[:1]
    day[0]["paper"]["title"] = "\\$OneMillion-Bench: How Far Are Language Agents from \\$1M of Real Work?"
    day[0]["paper"]["summary"] = "We price 400 tasks at \\$2,500 each; the maths $x^2$ stays as written."
    body = json.dumps(day).encode()
    server.route("/api/daily_papers", lambda seen: Reply(200, body if seen.query["date"] == "2026-02-26" else b"[]"))
    settings, engine = setup(tmp_path, server, days=1)
    fetching.fetch(engine, settings, NOW)
    paper = papers(engine)["2602.23229"]
    assert paper.title == "$OneMillion-Bench: How Far Are Language Agents from $1M of Real Work?"
    assert paper.abstract == "We price 400 tasks at $2,500 each; the maths $x^2$ stays as written."
