"""Honest about failures: `digest status` exits 1 when something needs attention, a digest says when a source
could not be reached (and only then), and the operator gets one alert a day."""

from __future__ import annotations

import datetime as dt
import email
import json
from email.message import Message
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest import planner, store
from digest.cli import app
from digest.compose import Composer
from digest.config import load_config
from tests.helpers import papers_json
from tests.loopback_http import LoopbackServer, Reply, Seen, server  # noqa: F401

NOTE = "Hugging Face Daily Papers could not be reached today (HTTP 429); its papers will come in the next digest."


def _config(tmp_path: Path, hf: str, operator: str = "") -> Path:
    config = tmp_path / "digest.toml"
    config.write_text(
        f"""
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
operator = "{operator}"
[[sources]]
name = "hf"
type = "hf_daily"
base_url = "{hf}"
days = 1
max_retries = 0
[[sources]]
name = "local"
type = "file"
path = "local.json"
[[subscribers]]
email = "ada@example.org"
keywords = ["mamba"]
"""
    )
    (tmp_path / "local.json").write_text(
        json.dumps(papers_json([{"title": "Mamba from a local file", "summary": "mamba"}]))
    )
    return config


def _hf(today: str, fail: list[bool]) -> object:
    def handle(seen: Seen) -> Reply:
        if fail[0]:
            return Reply(429, b'{"error":"rate limited"}', {"Retry-After": "0"})
        if seen.query.get("p", "0") != "0" or seen.query.get("date") != today:
            return Reply(200, b"[]", {"Content-Type": "application/json"})
        items = papers_json(
            [{"id": "2612.00001", "title": "Mamba from Hugging Face", "summary": "mamba", "submittedOnDailyAt": today}]
        )
        return Reply(200, json.dumps(items).encode(), {"Content-Type": "application/json"})

    return handle


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


def _texts(tmp_path: Path) -> list[tuple[str, str]]:
    out = []
    for path in sorted((tmp_path / "mail" / "new").iterdir(), key=lambda p: p.stat().st_mtime):
        msg: Message = email.message_from_bytes(path.read_bytes())
        part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append((str(msg["To"]), " ".join(payload.decode().split())))
    return out


def test_a_digest_says_when_a_source_failed_and_only_then(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    today = dt.datetime.now(dt.UTC).date()
    fail = [True]
    server.route("/api/daily_papers", _hf(today.isoformat(), fail))  # type: ignore[arg-type]
    config = _config(tmp_path, server.base_url)
    code, out = _run(config, "send")
    assert code == 0 and "failed" in out, out  # the digest goes out; the fetch table shows the failure
    [(_, first)] = _texts(tmp_path)
    assert NOTE in first and "Mamba from a local file" in first
    fail[0] = False
    code, out = _run(config, "send", "--date", (today + dt.timedelta(days=1)).isoformat())
    assert code == 0, out
    second = _texts(tmp_path)[1][1]
    assert "could not be reached" not in second
    assert "Mamba from Hugging Face" in second, "the failed source's papers come in the next digest"


def test_status_is_healthy_then_flags_a_source_failing_for_over_a_day(tmp_path: Path) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9")
    config.write_text(config.read_text().replace('type = "hf_daily"', 'type = "hf_daily"\nenabled = false'))
    code, out = _run(config, "send")
    assert code == 0, out
    code, out = _run(config, "status")
    assert code == 0 and out.rstrip().endswith("ok"), out
    code, out = _run(config, "status", "--format", "json")
    report = json.loads(out)
    assert report["ok"] is True and report["outbox"]["pending_due"] == 0 and report["planning"]["built"] == 1
    assert report["database_bytes"] > 0 and [s["name"] for s in report["sources"]] == ["local"]

    engine = store.open_engine(load_config(config).database_url)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:  # the file source last worked two days ago, and fails since
        conn.execute(store.run_t.delete())
        for hours, status in ((49, "ok"), (30, "failed"), (1, "failed")):
            run = store.start_fetch_run(conn, "local", now - dt.timedelta(hours=hours))
            store.finish_fetch_run(conn, run, now - dt.timedelta(hours=hours), status, error="HTTP 503 from x")
    code, out = _run(config, "status", "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert any("source local has failed since" in p and "HTTP 503" in p for p in report["problems"])


def test_status_flags_digests_stuck_in_the_outbox(tmp_path: Path) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9")
    config.write_text(config.read_text().replace('type = "hf_daily"', 'type = "hf_daily"\nenabled = false'))
    assert _run(config, "fetch")[0] == 0
    settings = load_config(config)
    engine = store.open_engine(settings.database_url)
    planner.plan_and_record(engine, settings, Composer(), dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30))
    code, out = _run(config, "status")
    assert code == 0, out  # waiting half an hour: not yet a problem
    with engine.begin() as conn:
        conn.execute(store.delivery_t.update().values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
    code, out = _run(config, "status", "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["outbox"]["pending_due"] == 1
    assert report["outbox"]["oldest_pending_age_seconds"] >= 7200
    assert any("wait to be sent" in p for p in report["problems"])


@pytest.mark.parametrize("runs", [2])
def test_the_operator_gets_one_alert_a_day(tmp_path: Path, server: LoopbackServer, runs: int) -> None:  # noqa: F811
    today = dt.datetime.now(dt.UTC).date()
    server.route("/api/daily_papers", _hf(today.isoformat(), [True]))  # type: ignore[arg-type]
    config = _config(tmp_path, server.base_url, operator="ops@example.org")
    for _ in range(runs):
        _run(config, "send")
    sent = _texts(tmp_path)
    alerts = [text for to, text in sent if to == "ops@example.org"]
    assert len(alerts) == 1, sent
    assert "source hf failed" in alerts[0] and "429" in alerts[0]
    assert [to for to, _ in sent].count("ada@example.org") == 1
