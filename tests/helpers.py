"""Helpers shared by tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DIGEST_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus"
EVAL = SHARED / "eval"


def unavailable(what: str) -> NoReturn:
    """A test cannot run because a system package is missing: a skip that says why, or under `CI=true` a
    failure (CI installs every package, so a skip there would hide a broken install)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI must not skip: see .ci/system-deps)")
    pytest.skip(what)


def corpus_files() -> list[Path]:
    files = sorted(CORPUS.glob("*.txt"))
    if not files:
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return files


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def papers_json(items: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """Wrap flat {title, summary, id?, upvotes?} dicts in the Hugging Face daily-papers item shape."""
    out = []
    for item in items:
        paper = {"title": item["title"], "summary": item.get("summary", ""), "authors": item.get("authors", [])}
        for key in ("id", "upvotes", "ai_summary", "ai_keywords", "githubRepo", "submittedOnDailyAt", "publishedAt"):
            if key in item:
                paper[key] = item[key]
        out.append(
            {
                "paper": paper,
                "title": item["title"],
                "summary": item.get("summary", ""),
                "numComments": item.get("numComments", 0),
            }
        )
    return out
