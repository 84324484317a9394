"""Placeholder until the real-sources work lands: configured arxiv sources fail cleanly."""

from __future__ import annotations

from digest.sources.base import FetchContext, SourceError, SourceResult


class ArxivSource:
    def __init__(self, config: object) -> None:
        self.config = config
        self.name: str = getattr(config, "name", "arxiv")

    async def fetch(self, ctx: FetchContext) -> SourceResult:
        raise SourceError("the arxiv source is not available yet")
