"""Commands that look, never change: `check`, `history`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from digest import pipeline, sources, store
from digest.cli._app import app, database_errors, fail, load_settings, open_database, out


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
