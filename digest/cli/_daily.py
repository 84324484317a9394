"""The daily job's commands: `preview`, `fetch`, `send` (and `send --worker`), `run`."""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import webbrowser
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from digest import fetching, pipeline, planner, sending, store
from digest.cli._app import (
    app,
    database_errors,
    err,
    fail,
    load_settings,
    open_database,
    out,
    parse_date,
    secrets_of,
    sender_lock,
)
from digest.config import ConfigError, Settings
from digest.logs import setup_logging
from digest.reload import ConfigWatcher
from digest.scheduler import DEFAULT_TICK_SECONDS, DailyJob, install_stop_handlers, serve


@app.command()
@database_errors
def preview(
    ctx: typer.Context,
    subscriber: Annotated[str | None, typer.Option(help="Whose digest (default: the first subscriber).")] = None,
    date: Annotated[str | None, typer.Option(help="Digest date, YYYY-MM-DD (default: their local today).")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text | html | json | eml")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of the terminal.")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the HTML version in a browser.")] = False,
    no_fetch: Annotated[bool, typer.Option("--no-fetch", help="Use only papers already stored.")] = False,
) -> None:
    """Build a digest exactly as `send` would; record nothing, send nothing."""
    if format not in {"text", "html", "json", "eml"}:
        fail(f"--format must be text, html, json or eml, not {format!r}")
    settings = load_settings(ctx)
    if not settings.subscribers:
        fail("the config has no subscribers")
    email = subscriber or settings.subscribers[0].email
    try:
        settings.subscriber(email)
    except ConfigError as exc:
        fail(str(exc))
    shown = pipeline.preview(
        open_database(settings), settings, email, pipeline.utcnow(), digest_date=parse_date(date), do_fetch=not no_fetch
    )
    planned, data = shown.planned, shown.data
    if shown.skipped:
        err.print("[yellow]nothing matched: `send` would skip this subscriber today (send_empty is off)[/]")
    message = message_from_bytes(data, policy=SMTP)
    assert isinstance(message, EmailMessage)
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    text = text_part.get_content() if text_part else ""
    html = html_part.get_content() if html_part else ""
    if format == "json":
        payload = preview_json(planned)
        _emit(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", output)
    elif format == "eml":
        if output:
            output.write_bytes(data)
            err.print(f"wrote {output}")
        else:
            sys.stdout.buffer.write(data)
    elif format == "text":
        _emit(text, output)
    html_path = None
    if format == "html" or open_ or (format == "text" and output is None):
        html_path = output if (format == "html" and output) else _preview_path(planned)
        html_path.write_text(html, encoding="utf-8")
        err.print(f"HTML version: {html_path}", highlight=False)
    if open_ and html_path and not webbrowser.open(html_path.resolve().as_uri()):
        err.print(f"no browser could be started: open {html_path} yourself", highlight=False)


def preview_json(planned: planner.Planned) -> dict[str, Any]:
    """The contract's JSON shape for `preview --format json`."""
    from digest.compose import paper_url

    return {
        "subscriber": planned.subscriber.email,
        "date": planned.digest_date.isoformat(),
        "papers": [
            {
                "key": r.paper.key,
                "arxiv_id": r.paper.arxiv_id,
                "title": r.paper.title,
                "url": paper_url(r.paper),
                "score": round(r.score, 4),
                "matched": [m.term for m in r.matched],
                "section": planned.section(i).value,
                "liked": planned.liked_near(i),
            }
            for i, r in enumerate(planned.ranked)
        ],
    }


def _preview_path(planned: planner.Planned) -> Path:
    folder = Path(tempfile.gettempdir()) / "digest-preview"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() else "_" for c in planned.subscriber.email)
    return folder / f"{safe}-{planned.digest_date.isoformat()}.html"


def _emit(text: str, output: Path | None) -> None:
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _fetch_table(reports: list[fetching.FetchReport]) -> Table:
    table = Table(title="fetch")
    for col in ("source", "status", "seen", "new", "updated", "unchanged", "skipped", "rejected", "time"):
        table.add_column(col, justify="right" if col not in {"source", "status"} else "left")
    for r in reports:
        status = f"[red]{r.status}[/]" if r.status == "failed" else r.status
        table.add_row(
            r.source,
            status,
            str(r.counts.seen),
            str(r.counts.new),
            str(r.counts.updated),
            str(r.counts.unchanged),
            str(r.skipped),
            str(r.rejected),
            f"{r.seconds:.2f}s",
        )
    return table


@app.command()
@database_errors
def fetch(
    ctx: typer.Context,
    source: Annotated[list[str] | None, typer.Option("--source", help="Only this source (repeatable).")] = None,
) -> None:
    """Poll sources into the store and show what each brought."""
    settings = load_settings(ctx)
    names = [s.name for s in settings.sources if s.enabled]
    for name in source or []:
        if name not in {s.name for s in settings.sources}:
            fail(f"no source named {name!r} in the config (have: {', '.join(names) or 'none'})")
    engine = open_database(settings)
    chosen = source or names
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("fetching " + ", ".join(chosen), total=len(chosen))
        reports = fetching.fetch(
            engine, settings, pipeline.utcnow(), names=chosen, on_done=lambda name: progress.advance(task)
        )
    out.print(_fetch_table(reports))
    for r in reports:
        if r.error:
            err.print(f"[red]{escape(r.source)}:[/] {escape(r.error)}", highlight=False)
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


@app.command()
@database_errors
def send(
    ctx: typer.Context,
    date: Annotated[
        str | None, typer.Option(help="Build digests for this date (all subscribers count as due).")
    ] = None,
    subscriber: Annotated[list[str] | None, typer.Option(help="Only this subscriber, due or not (repeatable).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; record and send nothing.")
    ] = False,
    no_fetch: Annotated[bool, typer.Option("--no-fetch", help="Do not poll sources first.")] = False,
    worker: Annotated[
        bool,
        typer.Option("--worker", help="Only drain the outbox (no fetch, no planning), looping until SIGINT/SIGTERM."),
    ] = False,
    until_empty: Annotated[
        bool,
        typer.Option(
            "--until-empty",
            help="With --worker: exit once no pending delivery is due, other workers' claims included.",
        ),
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", min=0.05, help="With --worker: seconds to wait when nothing is free.")
    ] = 5.0,
) -> None:
    """Run the daily job once, now: fetch, build digests for due subscribers, send the outbox."""
    settings = load_settings(ctx, service=worker)
    if worker:
        if date or dry_run:
            fail("--worker only sends what is already in the outbox: drop --date / --dry-run")
        _send_worker(settings, subscriber, until_empty, poll)
        return
    if until_empty:
        fail("--until-empty goes with --worker")
    only = subscriber or None
    if only:
        try:
            only = [settings.subscriber(e).email for e in only]
        except ConfigError as exc:
            fail(str(exc))
    engine = open_database(settings)
    now = pipeline.utcnow()
    if dry_run:
        planned = pipeline.dry_run(
            engine, settings, now, do_fetch=not no_fetch, only=only, digest_date=parse_date(date)
        )
        table = Table(title="would send (dry run)")
        for col in ("subscriber", "date", "status", "papers", "top paper"):
            table.add_column(col)
        for p in planned:
            table.add_row(
                p.subscriber.email,
                p.digest_date.isoformat(),
                p.status.value,
                str(len(p.ranked)),
                p.ranked[0].paper.title[:60] if p.ranked else "",
            )
        out.print(table)
        return
    stop = threading.Event()
    install_stop_handlers(stop)
    try:
        with sender_lock(settings, engine, "digest send"):
            report = pipeline.run_once(
                engine, settings, now, do_fetch=not no_fetch, only=only, digest_date=parse_date(date), stop=stop
            )
    except store.StoreError as exc:
        fail(str(exc), 1)
    if report.fetched:
        out.print(_fetch_table(report.fetched))
    out.print(
        f"digests built: {report.built}, skipped (nothing matched): {report.skipped}; "
        f"sent: {report.sent.sent}, retrying: {report.sent.retrying}, failed: {report.sent.failed}"
    )
    if not report.ok:
        raise typer.Exit(1)


def _send_worker(settings: Settings, subscriber: list[str] | None, until_empty: bool, poll: float) -> None:
    """`digest send --worker`: drain the outbox beside other workers (PostgreSQL) or alone (SQLite)."""
    import asyncio

    from digest.deliver import build_transport
    from digest.sending import drain

    if subscriber:
        fail("--worker sends the whole outbox: drop --subscriber")
    engine = open_database(settings)
    stop = threading.Event()
    install_stop_handlers(stop)
    with sender_lock(settings, engine, "digest send --worker"):
        transport = build_transport(settings)

        async def go() -> sending.SendReport:
            try:
                return await drain(engine, settings, transport, stop, until_empty=until_empty, poll_seconds=poll)
            finally:
                await transport.close()

        report = asyncio.run(go())
    out.print(f"worker sent: {report.sent}, retrying: {report.retrying}, failed: {report.failed}")
    if report.failed:
        raise typer.Exit(1)


@app.command()
@database_errors
def run(
    ctx: typer.Context,
    tick: Annotated[
        float, typer.Option("--tick", min=0.1, help="Seconds between scheduler ticks.")
    ] = DEFAULT_TICK_SECONDS,
) -> None:
    """Run the scheduler in the foreground until SIGINT/SIGTERM (catching up at once on start)."""
    settings = load_settings(ctx, service=True)
    engine = open_database(settings)
    obj = ctx.ensure_object(dict)
    stop = threading.Event()
    with sender_lock(settings, engine, "digest run"):
        install_stop_handlers(stop)
        watcher = ConfigWatcher(
            settings, on_change=lambda s: setup_logging(obj.get("verbose", False), secrets_of(s), service=True)
        )
        serve(DailyJob(engine, watcher, stop), stop, tick_seconds=tick)
