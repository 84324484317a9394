"""Config files written by tired people: every mistake exits 2 with one clear sentence, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app

OK_SUB = '[[subscribers]]\nemail = "ada@example.org"\n'


def _check(path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--config", str(path), *extra, "check"])
    return result.exit_code, result.output


CASES = {
    "toml syntax": ('[[subscribers]\nemail = "a@example.org"\n', r"TOML syntax error: .*\(at line 1, column \d+\)"),
    "unknown top-level key": ('colour = "blue"\n' + OK_SUB, r":1: colour: unknown key"),
    "unknown nested key": ('[smtp]\nhots = "x"\n' + OK_SUB, r":2: smtp.hots: unknown key"),
    "wrong type int": ('[smtp]\nport = "twenty-five"\n' + OK_SUB, r"smtp.port: Input should be a valid integer"),
    "wrong type list": (
        '[[subscribers]]\nemail = "a@example.org"\nkeywords = 5\n',
        r"keywords: Input should be a valid list",
    ),
    "wrong type table": ("schedule = 5\n" + OK_SUB, r"schedule: Input should be"),
    "duplicate subscriber": (OK_SUB + '[[subscribers]]\nemail = "ADA@example.org"\n', r"listed twice"),
    "invalid address": (
        '[[subscribers]]\nemail = "ada@@example"\n',
        r"\(ada@@example\).email: 'ada@@example' is not a valid",
    ),
    "invalid from": ('[delivery]\nfrom = "Papers <nope>"\n' + OK_SUB, r"delivery.from: .* is not a valid e-mail"),
    "invalid timezone": (
        '[[subscribers]]\nemail = "a@example.org"\ntimezone = "Europe/Atlantis"\n',
        r"timezone: 'Europe/Atlantis' is not an IANA time zone",
    ),
    "invalid time": ('[schedule]\nsend_at = "7:75"\n' + OK_SUB, r"schedule.send_at: '7:75' is not a time of day"),
    "max_papers zero": (
        '[[subscribers]]\nemail = "a@example.org"\nmax_papers = 0\n',
        r"max_papers: Input should be greater than or equal to 1",
    ),
    "max_papers negative": ('[[subscribers]]\nemail = "a@example.org"\nmax_papers = -3\n', r"max_papers"),
    "bad day": ('[[subscribers]]\nemail = "a@example.org"\ndays = ["funday"]\n', r"unknown day 'funday'"),
    "no subscribers": ("lookback_days = 2\n", r"subscribers: is required"),
    "bad source type": ('[[sources]]\nname = "x"\ntype = "gopher"\n' + OK_SUB, r"sources\[1\] \(x\).*type"),
    "file source without path": (
        '[[sources]]\nname = "x"\ntype = "file"\n' + OK_SUB,
        r"sources\[1\] \(x\).path: is required",
    ),
    "http unsubscribe url": ('[delivery]\nunsubscribe_url = "http://x/{email}"\n' + OK_SUB, r"must be an https:// URL"),
    "binary garbage": ("\x00\x01\x02 = \xff", r"TOML syntax error"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_config_one_clear_sentence(tmp_path: Path, name: str) -> None:
    text, pattern = CASES[name]
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    code, out = _check(path)
    assert code == 2, out
    assert "Traceback" not in out
    import re

    assert re.search(pattern, out), out
    assert str(path) in out


def test_missing_file(tmp_path: Path) -> None:
    code, out = _check(tmp_path / "nope.toml")
    assert code == 2
    assert "config file not found" in out and "Traceback" not in out


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_bytes(b'[[subscribers]]\nemail = "\xff\xfe"\n')
    code, out = _check(path)
    assert code == 2 and "Traceback" not in out


def test_config_is_a_directory(tmp_path: Path) -> None:
    code, out = _check(tmp_path)
    assert code == 2 and "cannot read config file" in out


def test_smtp_password_on_the_command_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(OK_SUB)
    result = CliRunner().invoke(app, ["--config", str(path), "--smtp-password", "hunter2", "check"])
    assert result.exit_code == 2
    assert "DIGEST_SMTP__PASSWORD" in result.output
    assert "hunter2" not in result.output


def test_secrets_never_printed_by_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "digest.toml"
    path.write_text('database_url = "sqlite:///d.db"\n[smtp]\nusername = "u"\n' + OK_SUB)
    monkeypatch.setenv("DIGEST_SMTP__PASSWORD", "pa55-w0rd-XYZ")
    monkeypatch.setenv("DIGEST_DELIVERY__UNSUBSCRIBE_SECRET", "unsub-SECRET-123")
    code, out = _check(path, "--verbose")
    assert code == 0, out
    assert "pa55-w0rd-XYZ" not in out and "unsub-SECRET-123" not in out
    assert os.environ["DIGEST_SMTP__PASSWORD"] == "pa55-w0rd-XYZ"


def test_secret_in_bad_config_value_is_not_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "digest.toml"
    path.write_text('[smtp]\npassword = ["hunter2-in-a-list"]\n' + OK_SUB)
    code, out = _check(path)
    assert code == 2
    assert "smtp.password" in out
    assert "hunter2-in-a-list" not in out
