"""One log line per event, in a stable greppable shape: `event=NAME key=value key="two words"`."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

_BARE = re.compile(r"^[\w.@:/+\-]+$")


def _value(value: Any) -> str:
    text = " ".join(str(value).split())
    if text and _BARE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `name` with its fields on one line; None-valued fields are left out."""
    if not logger.isEnabledFor(level):
        return
    parts = [f"event={name}"] + [f"{k}={_value(v)}" for k, v in fields.items() if v is not None]
    logger.log(level, " ".join(parts))


class RedactingFilter(logging.Filter):
    """Replaces any configured secret in a record's final message with `***`."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, ()
        return True


def setup_logging(verbose: bool = False, secrets: list[str] | None = None, *, service: bool = False) -> None:
    """Log to stderr as `time level logger event=…`. Routine events (a line per run, start, stop) are INFO:
    shown by default for a `service` (`digest run`, `send --worker`), whose log is all an operator reads;
    a one-shot command prints its own summary, so it shows only problems (WARNING and above). `verbose`
    shows every event, one line per message and per source."""
    root = logging.getLogger("digest")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter(secrets or []))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO if service else logging.WARNING)
    root.propagate = False
