"""Commands that look, never change: `check`, `history`, `status`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from digest import health, pipeline, sources, store
from digest.cli._app import app, database_errors, err, fail, load_settings, open_database, out


@app.command()
@database_errors
def check(
    ctx: typer.Context,
    smtp: Annotated[bool, typer.Option("--smtp", help="Also connect to the SMTP server (no mail is sent).")] = False,
) -> None:
    """Validate the config (and reach the SMTP server without sending)."""
    settings = load_settings(ctx)
    open_database(settings)
    out.print(f"config ok: {settings.config_path}")
    out.print(f"  database: {store.masked_database_url(settings.database_url)}")
    out.print(f"  sources: {', '.join(s.name + ' (' + s.type + ')' for s in settings.sources) or 'none'}")
    out.print(f"  subscribers: {len(settings.subscribers)}")
    out.print(f"  transport: {settings.delivery.transport}")
    found = [f for config in settings.sources if config.enabled for f in sources.findings(config)]
    for finding in found:
        out.print(f"  source {finding.source!r}: {finding.message}", highlight=False, markup=False)
    if any(f.fatal for f in found):
        fail("a source will fail every fetch: fix the config above", 1)
    if smtp:
        from digest.deliver import check_smtp

        problem = check_smtp(settings.smtp)
        if problem:
            fail(problem, 1)
        login = f", logged in as {settings.smtp.username}" if settings.smtp.username else ""
        out.print(
            f"  smtp: {settings.smtp.host}:{settings.smtp.port} ok ({settings.smtp.security}{login})",
            highlight=False,
        )


@app.command()
@database_errors
def history(
    ctx: typer.Context,
    subscriber: Annotated[str | None, typer.Option(help="Only this subscriber.")] = None,
    days: Annotated[int, typer.Option(min=1, help="How many days back.")] = 14,
) -> None:
    """Deliveries per subscriber and day: status, attempts, last error."""
    settings = load_settings(ctx)
    engine = open_database(settings)
    since = pipeline.utcnow().date() - dt.timedelta(days=days)
    with engine.connect() as conn:
        rows = store.history(conn, since, subscriber)
    table = Table(title="history")
    for col in ("date", "subscriber", "status", "attempts", "sent at / next try", "last error"):
        table.add_column(col, overflow="fold")
    for d in sorted(rows, key=lambda d: (d.subscriber, d.digest_date), reverse=False):
        when = d.sent_at or (d.next_attempt_at if d.status == "pending" else None)
        table.add_row(
            d.digest_date.isoformat(),
            d.subscriber,
            d.status,
            str(d.attempts),
            when.strftime("%Y-%m-%d %H:%M") if when else "",
            (d.last_error or "")[:200],
        )
    out.print(table)


@app.command()
@database_errors
def status(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
) -> None:
    """Health at a glance: sources, the outbox, who is due next, database size; exit 1 when something needs
    attention (a source failing for over a day, digests that failed for good, a digest stuck over an hour)."""
    if format not in {"table", "json"}:
        fail(f"--format must be table or json, not {format!r}")
    settings = load_settings(ctx)
    report = health.read_health(open_database(settings), settings, pipeline.utcnow())
    if format == "json":
        typer.echo(json.dumps(_health_json(report), indent=2, ensure_ascii=False))
    else:
        _print_health(report)
    if not report.ok:
        raise typer.Exit(1)


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _health_json(report: health.Health) -> dict[str, Any]:
    o = report.outbox
    return {
        "ok": report.ok,
        "checked_at": _when(report.checked_at),
        "problems": report.problems,
        "sources": [
            {
                "name": s.name,
                "status": s.status,
                "fetched_at": _when(s.fetched_at),
                "last_ok": _when(s.last_ok),
                "seen": s.seen,
                "new": s.new,
                "error": s.error,
            }
            for s in report.sources
        ],
        "planning": {"last_run_at": _when(o.last_planned_at), "built": o.last_built, "skipped": o.last_skipped},
        "outbox": {
            "pending_due": o.due,
            "retrying": o.retrying,
            "failed_last_day": o.failed_last_day,
            "oldest_pending_age_seconds": (
                round((report.checked_at - o.oldest_due).total_seconds()) if o.oldest_due else None
            ),
        },
        "next_due": {
            "due_now": report.next_due.due_now,
            "next_at": _when(report.next_due.next_at),
            "subscribers": report.next_due.next_count,
        },
        "database_bytes": report.database_bytes,
    }


def _print_health(report: health.Health) -> None:
    table = Table(title="sources")
    for col in ("source", "status", "last fetch", "last ok", "seen", "new", "error"):
        table.add_column(col, overflow="fold")
    for s in report.sources:
        table.add_row(
            s.name, s.status, _stamp(s.fetched_at), _stamp(s.last_ok), str(s.seen), str(s.new), (s.error or "")[:80]
        )
    out.print(table)
    o, n = report.outbox, report.next_due
    last = f"{_stamp(o.last_planned_at)} UTC: {o.last_built} built, {o.last_skipped} skipped"
    waited = (report.checked_at - o.oldest_due).total_seconds() / 60 if o.oldest_due else None
    oldest = f", the oldest waiting {waited:.0f} min" if waited is not None else ""
    out.print(f"last planning: {last if o.last_planned_at else 'never'}", highlight=False)
    out.print(
        f"outbox: {o.due} due{oldest}; {o.retrying} retrying; {o.failed_last_day} failed in the last day",
        highlight=False,
    )
    upcoming = f"next {n.next_count} at {n.next_at:%Y-%m-%d %H:%M} UTC" if n.next_at else "none in the next day"
    out.print(f"subscribers: {n.due_now} due now; {upcoming}", highlight=False)
    if report.database_bytes is not None:
        out.print(f"database: {report.database_bytes / 1e6:.1f} MB", highlight=False)
    for problem in report.problems:
        err.print(f"[bold red]attention:[/] {escape(problem)}", highlight=False)
    if report.ok:
        out.print("ok")


def _stamp(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "—"
