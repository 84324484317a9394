"""Shared fixtures: the shared corpus, a config writer, a clean DIGEST_* environment."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import corpus_files


@pytest.fixture
def corpus() -> list[Path]:
    return corpus_files()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a TOML config into tmp_path (dedented) and return its path."""

    def write(text: str, name: str = "digest.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("DIGEST_") and key != "DIGEST_SHARED":
            monkeypatch.delenv(key)
