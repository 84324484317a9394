"""Every CLI command is documented in README.md (a command nobody can find does not exist)."""

from __future__ import annotations

import typer.main

from digest.cli import app
from tests.helpers import ROOT


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert commands
    missing = [name for name in commands if f"`digest {name}" not in readme]
    assert not missing, f"undocumented commands: {missing}"


def test_readme_shows_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
