"""The readers `digest serve` knows: the config's subscribers (re-read when the file changes) and, for each,
the pseudonym their links carry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from digest.config import Settings, SubscriberConfig
from digest.links import Directory, Signer
from digest.reload import ConfigWatcher

RECHECK_SECONDS = 5.0


class Readers:
    """Settings in force and sid → subscriber, rebuilt when the config changes (checked at most every
    `every` seconds, so a request never waits on more than a stat and, rarely, a re-read)."""

    def __init__(
        self,
        settings: Settings,
        signer: Signer,
        *,
        watch: bool = True,
        every: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.signer = signer
        self._watcher = ConfigWatcher(settings) if watch and settings.config_path else None
        self._every = every
        self._clock = clock
        self._checked = clock()
        self._lock = threading.Lock()
        self._build(settings)

    def _build(self, settings: Settings) -> None:
        self._settings = settings
        self._by_email = {s.email.lower(): s for s in settings.subscribers}
        self._directory = Directory(self.signer, self._by_email)

    def settings(self) -> Settings:
        """The config in force now."""
        if self._watcher is not None and self._clock() - self._checked >= self._every:
            with self._lock:
                if self._clock() - self._checked >= self._every:
                    self._checked = self._clock()
                    fresh = self._watcher.current()
                    if fresh is not self._settings:
                        self._build(fresh)
        return self._settings

    def lookup(self, sid: str) -> str | None:
        """The address a link's pseudonym stands for, among the subscribers configured now."""
        self.settings()
        return self._directory(sid)

    def subscriber(self, email: str) -> SubscriberConfig | None:
        self.settings()
        return self._by_email.get(email.lower())
