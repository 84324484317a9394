"""Commands that keep a database healthy: `prune` (retention now) and `backup` (a consistent SQLite copy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest import pipeline, store
from digest.cli._app import app, database_errors, fail, load_settings, open_database, out


@app.command()
@database_errors
def prune(
    ctx: typer.Context,
    vacuum: Annotated[
        bool, typer.Option("--vacuum", help="Also rewrite a SQLite file whole (returns all free space; slow).")
    ] = False,
) -> None:
    """Apply `[delivery] keep_message_days` now: drop old message bodies (rows stay) and return the space."""
    settings = load_settings(ctx)
    report = pipeline.prune(open_database(settings), settings, pipeline.utcnow(), full_vacuum=vacuum)
    out.print(
        f"dropped the bytes of {report.messages} digests sent before {report.before:%Y-%m-%d %H:%M} UTC "
        f"(keep_message_days = {settings.delivery.keep_message_days}); {report.freed_bytes / 1e6:.1f} MB returned",
        highlight=False,
    )


@app.command()
@database_errors
def backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A new file for the copy (never overwritten).")],
) -> None:
    """Copy the SQLite database consistently, even while `digest run` or `digest send` works on it."""
    settings = load_settings(ctx)
    try:
        size = store.backup(open_database(settings), path)
    except store.StoreError as exc:
        fail(str(exc), 1)
    out.print(f"backed up to {path} ({size / 1e6:.1f} MB)", highlight=False)
