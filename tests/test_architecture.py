"""docs/ARCHITECTURE.md stays true: every module under digest/ has a row, and imports only what its row allows.

sqlite-utils' habit (a test fails on an undocumented command), applied to the map of the code: a module
nobody can find in the map, or an arrow the map does not show, fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOC = ROOT / "docs" / "ARCHITECTURE.md"
ROW = re.compile(r"^\| `(digest/[\w/]+\.py)` \| (.+?) \| (.+?) \|$")


def _rows() -> dict[str, set[str]]:
    rows: dict[str, set[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            path, _job, allowed = match.groups()
            assert path not in rows, f"{path} has two rows"
            rows[path] = set() if allowed.strip() == "—" else {a.strip() for a in allowed.split(",")}
    return rows


def _modules() -> list[Path]:
    return sorted(p.relative_to(ROOT) for p in (ROOT / "digest").rglob("*.py"))


def _part(module: str) -> str:
    """`digest.store._sql` → `store`: the part of digest a dotted module belongs to."""
    return module.split(".")[1]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "digest":
            if node.module == "digest":
                found.update(f"digest.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "digest")
    return found


def test_every_module_has_a_row_and_every_row_a_module() -> None:
    rows = _rows()
    modules = {str(p) for p in _modules()}
    assert modules - rows.keys() == set(), "modules missing from docs/ARCHITECTURE.md"
    assert rows.keys() - modules == set(), "rows for modules that do not exist"


@pytest.mark.parametrize("path", _modules(), ids=str)
def test_a_module_imports_only_what_its_row_allows(path: Path) -> None:
    rows = _rows()
    own = path.parts[1].removesuffix(".py")
    used = {_part(m) for m in _imports(path)} - {own}
    assert used <= rows.get(str(path), set()), f"{path} imports {sorted(used - rows.get(str(path), set()))}"


@pytest.mark.parametrize("path", _modules(), ids=str)
def test_private_modules_are_used_only_inside_their_package(path: Path) -> None:
    own = path.parts[1]
    for module in _imports(path):
        parts = module.split(".")
        private = any(p.startswith("_") and not p.startswith("__") for p in parts)
        assert not private or parts[1] == own, f"{path} imports the private module {module}"


def test_the_readme_points_at_the_map() -> None:
    assert "docs/ARCHITECTURE.md" in (ROOT / "README.md").read_text(encoding="utf-8")
