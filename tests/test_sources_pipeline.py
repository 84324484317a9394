"""Web sources through the pipeline and `digest fetch`: failures never touch what is stored; others go on."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from digest import fetching, pipeline, store
from digest.cli import app
from digest.config import load_config
from tests.loopback_http import (  # noqa: F401
    LoopbackServer,
    Reply,
    Seen,
    fixture_bytes,
    hf_daily_api,
    server,
    static,
    write_config,
)

NOW = dt.datetime(2026, 2, 26, 9, 30, tzinfo=dt.UTC)
DAYS = {"2026-02-26": "hf_daily_2026-02-26.json", "2026-02-25": "hf_daily_2026-02-25.json"}


def sources_toml(srv: LoopbackServer, hf_days: int = 2) -> str:
    return f"""
[[sources]]
name = "hf"
type = "hf_daily"
base_url = "{srv.base_url}"
days = {hf_days}
max_retries = 1
backoff_seconds = 0.01

[[sources]]
name = "arxiv"
type = "arxiv"
mode = "rss"
categories = ["cs.LG", "cs.CL"]
base_url = "{srv.base_url}"
delay_seconds = 0
"""


def dump(db: Path, skip: tuple[str, ...] = ("fetch_run",)) -> list[str]:
    """Every row of every table (but `skip`) as SQL text, straight from the SQLite file."""
    with sqlite3.connect(db) as conn:
        return [line for line in conn.iterdump() if not any(f'"{t}"' in line for t in skip)]


def fetch_run_rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, source, status, seen, new, updated, rejected, error FROM fetch_run").fetchall()


def test_a_failed_fetch_after_a_good_one_leaves_the_store_exactly_as_it_was(
    tmp_path: Path,
    server: LoopbackServer,  # noqa: F811
) -> None:
    server.route("/api/daily_papers", hf_daily_api(DAYS))
    settings = load_config(write_config(tmp_path, sources_toml(server).split('[[sources]]\nname = "arxiv"')[0]))
    engine = store.open_engine(settings.database_url)
    [good] = fetching.fetch(engine, settings, NOW)
    assert (good.status, good.counts.new) == ("ok", 6)
    engine.dispose()
    db = tmp_path / "digest.db"
    before, runs_before = dump(db), fetch_run_rows(db)
    assert any("Gated Linear Attention" in line for line in before)
    assert any('"source_state"' in line for line in before), "validators were saved by the good fetch"

    good_day = hf_daily_api(DAYS)

    def second_day_breaks(seen: Seen) -> Reply:
        if seen.query["date"] == "2026-02-26":
            return Reply(200, fixture_bytes("hf_daily_2026-02-26.json")[:900], {"Content-Type": "application/json"})
        return good_day(seen)

    server.route("/api/daily_papers", second_day_breaks)
    engine = store.open_engine(settings.database_url)
    [bad] = fetching.fetch(engine, settings, NOW + dt.timedelta(hours=3))
    engine.dispose()

    assert bad.status == "failed" and bad.error and "expected JSON" in bad.error
    assert dump(db) == before, "papers, keys, sightings and validators are untouched"
    runs_after = fetch_run_rows(db)
    assert runs_after[: len(runs_before)] == runs_before
    [(_, source, status, seen, new, updated, rejected, error)] = runs_after[len(runs_before) :]
    assert (source, status, seen, new, updated, rejected) == ("hf", "failed", 0, 0, 0, 0)
    assert isinstance(error, str) and "expected JSON" in error


def test_one_failing_source_does_not_stop_the_others(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/daily_papers", lambda seen: Reply(503, b"<html><title>503</title></html>"))
    server.route("/rss/cs.LG+cs.CL", static("arxiv_rss_cs.LG+cs.CL.xml"))
    settings = load_config(write_config(tmp_path, sources_toml(server)))
    engine = store.open_engine(settings.database_url)
    reports = {r.source: r for r in fetching.fetch(engine, settings, NOW)}
    assert (
        reports["hf"].status == "failed" and reports["hf"].error and "gave up after 2 attempts" in reports["hf"].error
    )
    assert (reports["arxiv"].status, reports["arxiv"].counts.new) == ("ok", 3)
    with engine.connect() as conn:
        assert store.count_papers(conn) == 3
        assert {(r.source, r.status) for r in store.fetch_runs(conn)} == {("hf", "failed"), ("arxiv", "ok")}


def _today_fixtures() -> dict[str, str]:
    today = pipeline.utcnow().date()
    return {"2026-02-26": today.isoformat(), "2026-02-25": (today - dt.timedelta(days=1)).isoformat()}


def test_cli_fetch_prints_the_table_and_exits_0(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    moved = _today_fixtures()
    server.route("/api/daily_papers", hf_daily_api({moved[d]: f for d, f in DAYS.items()}, rewrite=moved))
    server.route("/rss/cs.LG+cs.CL", static("arxiv_rss_cs.LG+cs.CL.xml"))
    config = write_config(tmp_path, sources_toml(server))
    result = CliRunner().invoke(app, ["--config", str(config), "fetch"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "source" in line)
    assert [c for c in ("seen", "new", "updated", "rejected", "time") if c in header] == [
        "seen",
        "new",
        "updated",
        "rejected",
        "time",
    ]
    hf_row = next(line for line in result.output.splitlines() if line.strip("│ ").startswith("hf "))
    arxiv_row = next(line for line in result.output.splitlines() if line.strip("│ ").startswith("arxiv "))
    assert [c.strip() for c in hf_row.split("│")[3:5]] == ["6", "6"]
    assert [c.strip() for c in arxiv_row.split("│")[3:5]] == ["3", "2"], "2602.23229 came from HF first"


def test_cli_fetch_exits_1_when_a_source_failed_and_still_stores_the_rest(
    tmp_path: Path,
    server: LoopbackServer,  # noqa: F811
) -> None:
    server.route("/api/daily_papers", lambda seen: Reply(500, b"oops [/x] [bold]"))
    server.route("/rss/cs.LG+cs.CL", static("arxiv_rss_cs.LG+cs.CL.xml"))
    config = write_config(tmp_path, sources_toml(server))
    result = CliRunner().invoke(app, ["--config", str(config), "fetch"], env={"COLUMNS": "120"})
    assert result.exit_code == 1
    assert "failed" in result.output and "HTTP 500" in result.output
    assert "'oops [/x] [bold]'" in result.output, "error text is printed verbatim, never as markup"
    settings = load_config(config)
    with store.open_engine(settings.database_url).connect() as conn:
        assert store.count_papers(conn) == 3


def test_cli_fetch_one_source(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/cs.LG+cs.CL", static("arxiv_rss_cs.LG+cs.CL.xml"))
    config = write_config(tmp_path, sources_toml(server))
    result = CliRunner().invoke(app, ["--config", str(config), "fetch", "--source", "arxiv"])
    assert result.exit_code == 0, result.output
    assert server.paths() == ["/rss/cs.LG+cs.CL"]


def test_cli_fetch_reports_a_refused_connection_plainly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_config(
        tmp_path,
        f'[[sources]]\nname = "feed"\ntype = "rss"\nurl = "http://127.0.0.1:{port}/feed.xml"\n'
        "max_retries = 1\nbackoff_seconds = 0.01",
    )
    result = CliRunner().invoke(app, ["--config", str(config), "fetch"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "connection failed (ConnectError" in result.output
    assert "gave up after 2 attempts" in result.output
