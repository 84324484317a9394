"""The command-line app and what every command shares: options, config and database loading, errors."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from digest import runlock, sending, store
from digest.config import ConfigError, Settings, load_config
from digest.logs import setup_logging

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="A daily email digest of trending research papers, ranked for each subscriber.",
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


F = TypeVar("F", bound=Callable[..., Any])


def database_errors(command: F) -> F:
    """Expected database failures (full disk, read-only file, lost server) end as one line and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except store.StoreError as exc:
            fail(str(exc), 1)
        except SQLAlchemyError as exc:
            fail(str(store.database_error(exc, f"running `digest {command.__name__}`")), 1)

    return wrapper  # type: ignore[return-value]


def load_settings(ctx: typer.Context, *, service: bool = False) -> Settings:
    """The config (loaded once per invocation, exit 2 when unusable), with logging set up for it: a `service`
    logs routine events by default (see `logs.setup_logging`)."""
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        try:
            obj["settings"] = load_config(obj.get("config"))
        except ConfigError as exc:
            fail(str(exc))
        settings: Settings = obj["settings"]
        setup_logging(obj.get("verbose", False), secrets_of(settings), service=service)
    loaded: Settings = obj["settings"]
    return loaded


def secrets_of(settings: Settings) -> list[str]:
    """Every configured secret, for the log filter that masks them."""
    return [
        settings.smtp.password.get_secret_value(),
        settings.delivery.unsubscribe_secret.get_secret_value(),
        settings.web.secret.get_secret_value(),
    ]


def open_database(settings: Settings, connections: int | None = None) -> Any:
    try:
        return store.open_engine(settings.database_url, connections=connections)
    except store.StoreError as exc:
        fail(str(exc))


def parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"--date {value!r} is not a date like 2026-11-23")


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config file (default: $DIGEST_CONFIG or ./digest.toml)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every event (debug level).")] = False,
    smtp_password: Annotated[str | None, typer.Option("--smtp-password", "--password", hidden=True)] = None,
) -> None:
    """Run `digest COMMAND --help` for a command's options."""
    if smtp_password is not None:
        fail(
            "a password on the command line is visible to every user of this machine; set DIGEST_SMTP__PASSWORD instead"
        )
    ctx.ensure_object(dict).update(config=config, verbose=verbose)


def sender_lock(settings: Settings, engine: Any, purpose: str) -> runlock.RunLock:
    """The one-sender-per-database lock, or exit 1 naming who holds it."""
    try:
        return sending.take_sender_lock(settings, engine, purpose)
    except runlock.LockError as exc:
        fail(str(exc), 1)
