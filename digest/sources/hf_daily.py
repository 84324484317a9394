"""Hugging Face Daily Papers: the item parser (shared with the file source) and the API source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from digest.config import HfDailySourceConfig
from digest.models import PaperRecord
from digest.sources.base import (
    FetchContext,
    RecordError,
    SourceError,
    SourceResult,
    clean_text,
    parse_datetime,
)

MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHORS = 500
HF_BASE = "https://huggingface.co"


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0, int(value))


def _str(value: Any, limit: int = 2_000) -> str | None:
    text = clean_text(value, limit=limit)
    return text or None


def _http_url(value: Any) -> str | None:
    text = _str(value)
    if text and text.lower().startswith(("http://", "https://")):
        return text
    return None


def parse_hf_item(item: Any, source: str, base_url: str = HF_BASE) -> PaperRecord:
    """One element of the daily_papers array (or a flat record with the same field names) as a PaperRecord."""
    if not isinstance(item, Mapping):
        raise RecordError(f"item is {type(item).__name__}, not an object")
    paper = item.get("paper")
    if paper is None:
        paper = item
    if not isinstance(paper, Mapping):
        raise RecordError("'paper' is not an object")
    title = clean_text(paper.get("title") or item.get("title"), limit=MAX_TITLE)
    if not title:
        raise RecordError("no title")
    abstract = clean_text(
        paper.get("summary") or item.get("summary") or paper.get("abstract"), limit=MAX_ABSTRACT
    )
    authors_raw = paper.get("authors") or []
    authors: list[str] = []
    if isinstance(authors_raw, list):
        for author in authors_raw[:MAX_AUTHORS]:
            if isinstance(author, Mapping):
                if author.get("hidden") is True:
                    continue
                name = _str(author.get("name"), 300)
            else:
                name = _str(author, 300)
            if name:
                authors.append(name)
    paper_id = paper.get("id")
    arxiv_id = _str(paper_id, 64) if isinstance(paper_id, str) else None
    keywords_raw = paper.get("ai_keywords") or []
    keywords = (
        tuple(k for k in (_str(k, 200) for k in keywords_raw[:100]) if k)
        if isinstance(keywords_raw, list)
        else ()
    )
    root = base_url.rstrip("/")
    return PaperRecord(
        source=source,
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        arxiv_id=arxiv_id,
        doi=_str(paper.get("doi"), 256),
        url=f"{root}/papers/{arxiv_id}" if arxiv_id else _http_url(paper.get("url") or item.get("url")),
        thumbnail=_http_url(item.get("thumbnail")),
        upvotes=_int(paper.get("upvotes")),
        comments=_int(item.get("numComments")),
        keywords=keywords,
        ai_summary=_str(paper.get("ai_summary"), MAX_ABSTRACT),
        github_repo=_http_url(paper.get("githubRepo")),
        project_page=_http_url(paper.get("projectPage")),
        published_at=parse_datetime(paper.get("publishedAt") or item.get("publishedAt")),
        featured_at=parse_datetime(paper.get("submittedOnDailyAt")),
        external_id=arxiv_id,
    )


class HfDailySource:
    """`GET {base_url}/api/daily_papers?date=…` for the last `days` days (issue: real sources)."""

    def __init__(self, config: HfDailySourceConfig) -> None:
        self.config = config
        self.name = config.name

    async def fetch(self, ctx: FetchContext) -> SourceResult:
        raise SourceError("the hf_daily source is not available yet")
