"""The templates travel inside a non-editable wheel, and an installed digest renders from them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers import ROOT


def test_wheel_carries_templates_and_renders_from_them(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "dist")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("digest-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    for template in ("digest.html.j2", "digest.txt.j2", "paper.html.j2", "paper.txt.j2"):
        assert f"digest/templates/{template}" in names
    probe = (
        "import datetime as dt, digest.compose as c\n"
        "print(c.templates_dir())\n"
        "info = c.DigestInfo('a@example.org', 'A', dt.date(2026, 11, 23), ['x'], 'P <p@example.org>')\n"
        "print(len(c.Composer().fit(info, [], dt.datetime(2026, 11, 23, tzinfo=dt.UTC)).data))\n"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); exec({probe!r})"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    where, size = run.stdout.split()
    assert Path(where) == site / "digest" / "templates"
    assert int(size) > 1000
