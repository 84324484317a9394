"""The config in force for a long-running process (`digest run`, `digest serve`): re-read when the file changes.

A broken edit is reported once and the last good config kept; `database_url` is fixed for the life of the
process.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from digest import store
from digest.config import ConfigError, Settings, parse_config
from digest.logs import event

log = logging.getLogger("digest.scheduler")


class ConfigWatcher:
    """The config in force: re-read when the file's content changes; a broken edit is reported once.

    `database_url` is fixed for the life of the process (the run lock is taken on it), so a changed
    one is reported and the old one kept; every other key takes effect at the next tick.
    """

    def __init__(self, settings: Settings, on_change: Callable[[Settings], None] | None = None) -> None:
        self.settings = settings
        self.path: Path | None = settings.config_path
        self.on_change = on_change
        self._fingerprint = self._read()[0] if self.path else None

    def _read(self) -> tuple[str | None, str | None]:
        assert self.path is not None
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            return f"unreadable:{exc.strerror}", None
        return hashlib.sha256(data).hexdigest(), data.decode("utf-8", errors="replace")

    def current(self) -> Settings:
        """The settings to use for this tick (reloading first when the file changed)."""
        if self.path is None:
            return self.settings
        fingerprint, text = self._read()
        if fingerprint == self._fingerprint:
            return self.settings
        self._fingerprint = fingerprint
        if text is None:
            event(log, "config_unreadable", logging.ERROR, path=self.path, keeping="last good config")
            return self.settings
        try:
            fresh = parse_config(text, self.path)
        except ConfigError as exc:
            event(log, "config_rejected", logging.ERROR, error=str(exc), keeping="last good config")
            return self.settings
        if fresh.database_url != self.settings.database_url:
            event(
                log,
                "config_database_changed",
                logging.ERROR,
                error="database_url cannot change while running; restart `digest run` to use the new one",
                keeping=store.masked_database_url(self.settings.database_url),
            )
            fresh.database_url = self.settings.database_url
        self.settings = fresh
        event(log, "config_reloaded", logging.INFO, path=self.path, subscribers=len(fresh.subscribers))
        if self.on_change:
            self.on_change(fresh)
        return fresh
