"""The `digest` command line: parses arguments, calls the core, prints tables. Nothing else lives here.

`_app` holds the Typer app and what commands share; each other module registers a group of commands on it.
"""

from __future__ import annotations

from digest.cli import _daily, _info, _readers, _upkeep, _web  # noqa: F401  (registers their commands on `app`)
from digest.cli._app import app
from digest.memory import limit_arenas

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: usage errors exit 2, config errors exit 2, failed runs exit 1.

    Process-wide tuning happens here, once, before any thread allocates (see `memory.limit_arenas`)."""
    limit_arenas()
    app()


if __name__ == "__main__":
    main()
