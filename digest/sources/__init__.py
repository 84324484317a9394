"""Paper sources: each turns a feed or a file into `PaperRecord`s; `build_source` picks one by config type."""

from __future__ import annotations

from dataclasses import dataclass

from digest.config import (
    ArxivSourceConfig,
    FileSourceConfig,
    HfDailySourceConfig,
    RssSourceConfig,
    SourceConfig,
)
from digest.sources.base import Rejection, Source, SourceError, SourceResult


@dataclass(frozen=True, slots=True)
class Finding:
    """What `digest check` says about one source without fetching it: a problem that will fail every fetch
    (`fatal`), or advice."""

    source: str
    message: str
    fatal: bool


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


def findings(config: SourceConfig) -> list[Finding]:
    """What is wrong with, or could be better in, one `[[sources]]` entry, judged offline: an arXiv category
    whose archive does not exist (arXiv answers it with an empty "Feed error" listing), a plain feed pointed
    at arXiv."""
    if isinstance(config, ArxivSourceConfig):
        from digest.sources.arxiv import category_problem

        problems = (category_problem(c) for c in config.categories)
        return [Finding(config.name, p, fatal=True) for p in problems if p]
    if isinstance(config, RssSourceConfig):
        from digest.sources.rss import config_hint

        hint = config_hint(config)
        return [Finding(config.name, hint, fatal=False)] if hint else []
    return []


__all__ = ["Finding", "Rejection", "Source", "SourceError", "SourceResult", "build_source", "findings"]
