"""Commands about readers: `subscribers` (with their status), `unsubscribe`, `resubscribe`, `feedback`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from digest import store
from digest.cli._app import app, database_errors, fail, load_settings, open_database, out
from digest.clock import utcnow
from digest.config import ConfigError, Settings, SubscriberConfig
from digest.models import SubscriberStatus


def _subscriber(settings: Settings, email: str) -> SubscriberConfig:
    try:
        return settings.subscriber(email)
    except ConfigError as exc:
        fail(str(exc))


def _format(value: str) -> str:
    if value not in {"table", "json"}:
        fail(f"--format must be table or json, not {value!r}")
    return value


@app.command()
@database_errors
def subscribers(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
) -> None:
    """List subscribers with their interests, schedule and status (active, paused, unsubscribed)."""
    _format(format)
    settings = load_settings(ctx)
    with open_database(settings).connect() as conn:
        statuses = store.subscriber_statuses(conn)
    rows: list[dict[str, Any]] = [
        {
            "email": s.email,
            "name": s.name,
            "status": statuses.get(s.email.lower(), SubscriberStatus.active).value,
            "keywords": list(s.keywords),
            "exclude": list(s.exclude),
            "max_papers": s.max_papers,
            "send_at": settings.send_time(s).strftime("%H:%M"),
            "timezone": str(settings.timezone(s)),
            "days": list(s.days),
            "authors": list(s.authors),
            "min_relevance": s.min_relevance,
            "trending": settings.trending_for(s),
        }
        for s in settings.subscribers
    ]
    if format == "json":
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title="subscribers")
    table.add_column("subscriber", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("interests", overflow="fold")
    table.add_column("max", no_wrap=True, justify="right")
    table.add_column("schedule", overflow="fold")
    for r in rows:
        interests = ", ".join(r["keywords"]) or "(trending)"
        if r["exclude"]:
            interests += "; never: " + ", ".join(r["exclude"])
        if r["authors"]:
            interests += "; follows: " + ", ".join(r["authors"])
        if r["min_relevance"]:
            interests += f"; min relevance {r['min_relevance']:g}"
        if r["keywords"]:
            interests += f"; trending: {r['trending'] or 'off'}"
        table.add_row(
            "\n".join(filter(None, (r["email"], r["name"]))),
            r["status"],
            interests,
            str(r["max_papers"]),
            f"{r['send_at']} {r['timezone']}, {','.join(r['days']) or 'every day'}",
        )
    out.print(table)


def _set_status(ctx: typer.Context, email: str, status: SubscriberStatus) -> None:
    settings = load_settings(ctx)
    sub = _subscriber(settings, email)
    with open_database(settings).begin() as conn:
        before = store.set_status(conn, sub.email, status, utcnow(), "cli")
    change = "unchanged" if before is status else f"was {before.value}"
    out.print(f"{sub.email}: {status.value} ({change})", highlight=False)


@app.command()
@database_errors
def unsubscribe(ctx: typer.Context, email: Annotated[str, typer.Argument(help="The subscriber's address.")]) -> None:
    """Stop every digest to a subscriber (as their one-click link does); the config entry stays."""
    _set_status(ctx, email, SubscriberStatus.unsubscribed)


@app.command()
@database_errors
def resubscribe(ctx: typer.Context, email: Annotated[str, typer.Argument(help="The subscriber's address.")]) -> None:
    """Send digests to a subscriber again (undoes an unsubscribe or a pause)."""
    _set_status(ctx, email, SubscriberStatus.active)


@app.command()
@database_errors
def feedback(
    ctx: typer.Context,
    subscriber: Annotated[str, typer.Option(help="Whose feedback.")],
    more: Annotated[
        list[str] | None, typer.Option("--more", help="More like this paper: a key or arXiv id (repeatable).")
    ] = None,
    less: Annotated[list[str] | None, typer.Option("--less", help="Less like this paper (repeatable).")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Forget all of this subscriber's feedback first.")] = False,
    format: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
) -> None:
    """Record a subscriber's feedback on papers, or list it (without --more/--less/--reset).

    PAPER is a `key` from `preview --format json` or an arXiv id."""
    _format(format)
    settings = load_settings(ctx)
    sub = _subscriber(settings, subscriber)
    now = utcnow()
    with open_database(settings).begin() as conn:
        choices: list[tuple[int, str]] = []
        for value, refs in ((1, more or []), (-1, less or [])):
            for ref in refs:
                paper = store.find_paper(conn, ref)
                if paper is None or paper.id is None:
                    fail(f"no stored paper {ref!r}: use a key from `digest preview --format json` or an arXiv id")
                choices.append((value, str(paper.id)))
        if reset:
            store.reset_feedback(conn, sub.email)
        for value, paper_id in choices:
            store.record_feedback(conn, sub.email, int(paper_id), value, now, "cli")
        given = store.feedback_of(conn, sub.email)
    _print_feedback(sub.email, given, format)


def _print_feedback(email: str, given: list[store.FeedbackRow], format: str) -> None:
    if format == "json":
        payload: dict[str, Any] = {
            "subscriber": email,
            "feedback": [
                {
                    "key": f.key,
                    "arxiv_id": f.arxiv_id,
                    "title": f.title,
                    "value": f.value,
                    "at": f.created_at.isoformat(),
                    "via": f.via,
                }
                for f in given
            ],
        }
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"feedback of {email}")
    for col in ("", "paper", "title", "when", "via"):
        table.add_column(col, overflow="fold")
    for f in given:
        table.add_row("more" if f.value > 0 else "less", f.key, f.title, f"{f.created_at:%Y-%m-%d %H:%M}", f.via)
    out.print(table)
