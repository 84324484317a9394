"""A reader's seed library: the papers of a BibTeX or CSL-JSON export (Zotero, Mendeley, JabRef) count as liked.

BibTeX is read with pybtex (well kept, and its errors carry line numbers); CSL-JSON with the standard json
module. Each entry becomes a `LibraryPaper`: title, abstract, and whatever identifies it (arXiv id, DOI).
A file that cannot be read raises `LibraryError` naming the file and line. Parsed files are cached by
path, size and modification time, so a config reload does not parse them again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

_ARXIV = re.compile(r"(?:arxiv\.org/(?:abs|pdf)/|arxiv:)?(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(v\d+)?", re.I)
_TEX_BRACES = re.compile(r"[{}]")


class LibraryError(ValueError):
    """A library file that cannot be used; the message names the file and, when known, the line."""


@dataclass(frozen=True, slots=True)
class LibraryPaper:
    """One paper a reader keeps: enough text to learn from, and ids to recognise it among stored papers."""

    title: str
    abstract: str = ""
    arxiv_id: str | None = None
    doi: str | None = None


def read_library(path: Path) -> tuple[LibraryPaper, ...]:
    """The papers of a BibTeX (`.bib`) or CSL-JSON (`.json`) export."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise LibraryError(f"{path}: cannot read library file: {exc.strerror}") from None
    return _read(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=1024)
def _read(path: Path, _size: int, _mtime: int) -> tuple[LibraryPaper, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LibraryError(f"{path}: cannot read library file: {exc}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        return _csl_json(path, text)
    return _bibtex(path, text)


def _clean(value: Any) -> str:
    return " ".join(_TEX_BRACES.sub("", str(value or "")).split())


def _arxiv(*values: Any) -> str | None:
    for value in values:
        match = _ARXIV.search(str(value or ""))
        if match and value:
            return match.group(1)
    return None


def _bibtex(path: Path, text: str) -> tuple[LibraryPaper, ...]:
    from pybtex.database import parse_string
    from pybtex.scanner import PybtexSyntaxError

    try:
        data = parse_string(text, "bibtex")
    except PybtexSyntaxError as exc:
        detail = str(exc).split(": ", 1)[-1] if ": " in str(exc) else exc.error_type
        raise LibraryError(f"{path}:{exc.lineno}: not valid BibTeX: {detail}") from None
    except Exception as exc:  # pybtex's other errors (duplicate keys...) name the entry, not the line
        raise LibraryError(f"{path}: not valid BibTeX: {exc}") from None
    papers = []
    for entry in data.entries.values():
        fields = {k.lower(): v for k, v in entry.fields.items()}
        title = _clean(fields.get("title"))
        if not title:
            continue
        eprint = fields.get("eprint") if "arxiv" in str(fields.get("archiveprefix", "arxiv")).lower() else None
        papers.append(
            LibraryPaper(
                title=title,
                abstract=_clean(fields.get("abstract")),
                arxiv_id=_arxiv(eprint, fields.get("url"), fields.get("journal")),
                doi=_clean(fields.get("doi")).lower() or None,
            )
        )
    return tuple(papers)


def _csl_json(path: Path, text: str) -> tuple[LibraryPaper, ...]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LibraryError(f"{path}:{exc.lineno}: not valid CSL-JSON: {exc.msg}") from None
    items = data.get("items", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise LibraryError(f"{path}: CSL-JSON must be a list of items")
    papers = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise LibraryError(f"{path}: item {number} is not an object")
        title = _clean(item.get("title"))
        if not title:
            continue
        papers.append(
            LibraryPaper(
                title=title,
                abstract=_clean(item.get("abstract")),
                arxiv_id=_arxiv(item.get("number"), item.get("URL"), item.get("archive_location"), item.get("note")),
                doi=_clean(item.get("DOI")).lower() or None,
            )
        )
    return tuple(papers)
