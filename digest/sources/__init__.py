"""Paper sources: each turns a feed or a file into `PaperRecord`s; `build_source` picks one by config type."""

from __future__ import annotations

from digest.config import (
    ArxivSourceConfig,
    FileSourceConfig,
    HfDailySourceConfig,
    RssSourceConfig,
    SourceConfig,
)
from digest.sources.base import Rejection, Source, SourceError, SourceResult


def build_source(config: SourceConfig) -> Source:
    """The source object for one `[[sources]]` entry."""
    if isinstance(config, FileSourceConfig):
        from digest.sources.file import FileSource

        return FileSource(config)
    if isinstance(config, HfDailySourceConfig):
        from digest.sources.hf_daily import HfDailySource

        return HfDailySource(config)
    if isinstance(config, ArxivSourceConfig):
        from digest.sources.arxiv import ArxivSource

        return ArxivSource(config)
    if isinstance(config, RssSourceConfig):
        from digest.sources.rss import RssSource

        return RssSource(config)
    raise TypeError(f"unknown source config {type(config).__name__}")


__all__ = ["Rejection", "Source", "SourceError", "SourceResult", "build_source"]
