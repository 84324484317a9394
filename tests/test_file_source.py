"""The file source on real data: the three corpus page dumps, HF-shape JSON, JSONL with bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.sources.base import SourceError
from digest.sources.file import read_file
from tests.helpers import papers_json


def test_corpus_page_dumps(corpus: list[Path]) -> None:
    results = [read_file(path, "corpus") for path in corpus]
    counts = [len(r.records) for r in results]
    assert counts == [212, 94, 76]
    assert all(not r.rejected for r in results)
    first = results[0].records[0]
    assert first.title == "Tight High Probability Bounds for Linear Stochastic Approximation with Fixed Stepsize"
    assert first.abstract.startswith("This paper provides a non-asymptotic analysis")
    for result in results:
        for record in result.records:
            assert record.title and len(record.title) < 300
            assert len(record.abstract) > 150
            assert record.title.casefold() not in {"subscribe", "new", "daily papers"}


def test_page_dump_title_without_abstract(tmp_path: Path) -> None:
    abstract = "A long abstract. " * 20
    path = tmp_path / "page.txt"
    path.write_text(f"new\nSubscribe\nMar 14\nFirst Title\n{abstract}\nLonely Title\nThird Title\n{abstract}\n")
    records = read_file(path, "s").records
    assert [r.title for r in records] == ["First Title", "Lonely Title", "Third Title"]
    assert records[1].abstract == ""


def test_hf_json_shape(tmp_path: Path) -> None:
    items = papers_json(
        [
            {
                "title": "A  wrapped\n title",
                "summary": "Abs.",
                "id": "2401.01234",
                "upvotes": 7,
                "authors": [{"name": "Ada", "hidden": False}, {"name": "Ghost", "hidden": True}],
            },
            {"title": "No id here", "summary": "Other."},
        ]
    )
    items.append({"paper": {"summary": "title missing"}})
    path = tmp_path / "papers.json"
    path.write_text(json.dumps(items))
    result = read_file(path, "f")
    assert [r.title for r in result.records] == ["A wrapped title", "No id here"]
    assert result.records[0].arxiv_id == "2401.01234"
    assert result.records[0].authors == ("Ada",)
    assert result.records[0].upvotes == 7
    assert result.records[1].arxiv_id is None
    assert len(result.rejected) == 1 and "no title" in result.rejected[0].reason


def test_jsonl_bad_line_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"title": "One", "summary": "x"}\n{oops\n\n{"title": "Two"}\n[1, 2]\n')
    result = read_file(path, "f")
    assert [r.title for r in result.records] == ["One", "Two"]
    assert [r.where for r in result.rejected] == [f"{path}:2", f"{path}:5"]


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("p.json", "{not json", "not valid JSON"),
        ("p.json", '{"a": 1}', "expected a JSON array"),
        ("p.csv", "a,b", "unsupported file type"),
    ],
)
def test_unreadable_files_fail_cleanly(tmp_path: Path, name: str, body: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(SourceError, match=message):
        read_file(path, "f")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        read_file(tmp_path / "nope.jsonl", "f")
