"""Local files: `.json` (Hugging Face daily-papers shape), `.jsonl` (one record a line), `.txt` page dumps."""

from __future__ import annotations

import json
import re
from pathlib import Path

from digest.config import FileSourceConfig
from digest.models import PaperRecord
from digest.sources.base import FetchContext, RecordError, Rejection, SourceError, SourceResult, clean_text
from digest.sources.hf_daily import MAX_ABSTRACT, MAX_TITLE, parse_hf_item
from digest.sources.text import plain

_HEADER_LINES = {
    "new",
    "get trending papers in your email inbox once a day!",
    "get trending papers in your email inbox!",
    "subscribe",
    "daily papers",
    "byak and the research community",
}
_DATE_LINE = re.compile(r"^[A-Z][a-z]{2,8}\.? \d{1,2}(, \d{4})?$")
_ABSTRACT_MIN = 150


def parse_page_dump(text: str, source: str) -> SourceResult:
    """A saved papers page: header lines, then title / abstract line pairs (blank lines allowed)."""
    lines = [plain(line, markup=False) for line in text.splitlines()]
    lines = [line for line in lines if line]
    start = 0
    while start < len(lines) and (lines[start].casefold() in _HEADER_LINES or _DATE_LINE.match(lines[start])):
        start += 1
    body = lines[start:]
    if body and body[0].startswith("Subscribe") and body[0] != "Subscribe":
        body[0] = body[0].removeprefix("Subscribe").strip()
    result = SourceResult()
    i = 0
    while i < len(body):
        title = body[i]
        abstract = ""
        nxt = body[i + 1] if i + 1 < len(body) else None
        after = body[i + 2] if i + 2 < len(body) else None
        looks_like_title = (
            nxt is not None and len(nxt) < _ABSTRACT_MIN and after is not None and len(after) >= _ABSTRACT_MIN
        )
        if nxt is not None and not looks_like_title:
            abstract = nxt
            i += 2
        else:
            i += 1
        if len(title) > MAX_TITLE:
            result.rejected.append(Rejection(f"line {i}", "title line longer than 1000 characters"))
            continue
        result.records.append(PaperRecord(source=source, title=title, abstract=abstract[:MAX_ABSTRACT]))
    return result


def parse_json_items(items: object, source: str, where: str) -> SourceResult:
    """A JSON array of Hugging Face daily-papers items (or flat records)."""
    if isinstance(items, dict) and isinstance(items.get("papers"), list):
        items = items["papers"]
    if not isinstance(items, list):
        raise SourceError(f"{where}: expected a JSON array of papers, got {type(items).__name__}")
    result = SourceResult()
    for index, item in enumerate(items):
        try:
            result.records.append(parse_hf_item(item, source))
        except RecordError as exc:
            result.rejected.append(Rejection(f"{where} item {index + 1}", str(exc)))
    return result


def parse_jsonl(text: str, source: str, where: str) -> SourceResult:
    """One JSON record a line; a bad line is rejected with its line number, the rest are kept."""
    result = SourceResult()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            result.records.append(parse_hf_item(item, source))
        except (json.JSONDecodeError, RecursionError) as exc:
            result.rejected.append(Rejection(f"{where}:{number}", f"not JSON: {exc}"))
        except RecordError as exc:
            result.rejected.append(Rejection(f"{where}:{number}", str(exc)))
    return result


def read_file(path: Path, source: str) -> SourceResult:
    """Parse one file by its suffix."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{path}: file not found") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return parse_jsonl(text, source, str(path))
    if suffix == ".json":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise SourceError(f"{path}: not valid JSON: {exc}") from None
        return parse_json_items(data, source, str(path))
    if suffix in {".txt", ".text", ""}:
        return parse_page_dump(text, source)
    raise SourceError(f"{path}: unsupported file type {suffix!r} (use .json, .jsonl or .txt)")


class FileSource:
    """A file on disk, read whole on each fetch."""

    def __init__(self, config: FileSourceConfig) -> None:
        self.config = config
        self.name = config.name

    async def fetch(self, ctx: FetchContext) -> SourceResult:
        return read_file(self.config.path, self.name)


__all__ = ["FileSource", "clean_text", "parse_json_items", "parse_jsonl", "parse_page_dump", "read_file"]
