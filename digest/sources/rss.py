"""Placeholder until the real-sources work lands: configured rss sources fail cleanly."""

from __future__ import annotations

from digest.sources.base import FetchContext, SourceError, SourceResult


class RssSource:
    def __init__(self, config: object) -> None:
        self.config = config
        self.name: str = getattr(config, "name", "rss")

    async def fetch(self, ctx: FetchContext) -> SourceResult:
        raise SourceError("the rss source is not available yet")
