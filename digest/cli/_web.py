"""`digest serve`: the reader-facing web endpoint (uvicorn running the Starlette app)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from digest.cli._app import app, database_errors, load_settings, open_database
from digest.links import signer_of
from digest.logs import event

log = logging.getLogger("digest.web")

# Database work runs in a thread pool this size, each thread with a pooled connection: SQLite answers in well
# under a millisecond, and more threads only fight over the GIL (16 threads: p99 144 ms at 300 requests/s, 4: 77 ms)
THREADS = 4


@app.command()
@database_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (behind a reverse proxy: loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
) -> None:
    """Serve the pages digest links lead to: one-click unsubscribe, feedback, view online, preferences."""
    import uvicorn

    from digest.web import create_app

    settings = load_settings(ctx, service=True)
    engine = open_database(settings, connections=THREADS)
    signer = signer_of(settings, engine, always=True)
    assert signer is not None
    if not settings.web.base_url:
        event(
            log,
            "web_base_url_unset",
            logging.WARNING,
            detail="set [web] base_url to this server's public URL, or digests will carry no links to it",
        )
    event(log, "serving", host=host, port=port, base_url=settings.web.base_url or None)
    uvicorn.run(
        create_app(settings, engine, signer, threads=THREADS),
        host=host,
        port=port,
        access_log=False,  # request lines carry tokens: they are never logged
        log_level="warning",
        proxy_headers=True,
        server_header=False,
    )
