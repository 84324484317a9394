"""Shared fixtures: the shared corpus, a config writer, a clean DIGEST_* environment."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import corpus_files, unavailable

# pytest-xdist hands its workers COLUMNS=80; the CLI's rich console would fix its width from it when first
# imported, and the CLI tests that set a wider COLUMNS per call would then see tables cut to 80 columns.
os.environ.pop("COLUMNS", None)


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
        if key.startswith("DIGEST_") and key not in {"DIGEST_SHARED", "DIGEST_SCREENSHOTS"}:
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _lexical_ranking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _clean_env: None) -> None:
    """Tests rank lexically whether or not the `semantic` extra is installed (its output depends on weights a
    machine may lack): no embedder in this process, semantic_weight 0 in every config read (and so in the
    planner's worker processes). Tests marked `semantic` keep it, or bring their own embedder."""
    if request.node.get_closest_marker("semantic") is None:
        monkeypatch.setattr("digest.ranking._index.load_embedder", lambda: None)
        monkeypatch.setenv("DIGEST_RANKING__SEMANTIC_WEIGHT", "0")


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server for the session, or a skip that says why there is none."""
    from tests.postgres import PostgresUnavailable, postgres_server

    try:
        with postgres_server() as server:
            yield server
    except PostgresUnavailable as exc:
        unavailable(f"PostgreSQL unavailable: {exc}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend: a SQLite file in tmp_path, a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    server = request.getfixturevalue("pg_server")
    return str(server.database())
