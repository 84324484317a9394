"""Config loading: defaults, env overrides, relative paths, and one clear error per kind of mistake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from digest.cli import app
from digest.config import ConfigError, check_email, load_config

GOOD = """
    [[subscribers]]
    email = "ada@example.org"
    keywords = ["mamba"]
"""


def test_defaults_and_relative_paths(write_config) -> None:
    path = write_config(GOOD + '\n[[sources]]\nname = "s"\ntype = "file"\npath = "data/p.jsonl"\n')
    settings = load_config(path)
    assert settings.schedule.send_at == dt.time(7, 0)
    assert settings.lookback_days == 7
    assert settings.database_url == f"sqlite:///{path.parent / 'digest.db'}"
    assert settings.delivery.maildir == path.parent / "outbox"
    assert settings.sources[0].path == path.parent / "data" / "p.jsonl"  # type: ignore[union-attr]


def test_env_overrides_file(write_config, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config('[smtp]\nhost = "mail.example.org"\nport = 2525\n' + GOOD)
    monkeypatch.setenv("DIGEST_SMTP__PASSWORD", "s3cret")
    monkeypatch.setenv("DIGEST_SMTP__PORT", "465")
    settings = load_config(path)
    assert settings.smtp.host == "mail.example.org"
    assert settings.smtp.port == 465
    assert settings.smtp.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_config_from_env_var_path(write_config, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(GOOD, name="other.toml")
    monkeypatch.setenv("DIGEST_CONFIG", str(path))
    assert load_config().subscribers[0].email == "ada@example.org"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('colour = "blue"\n' + GOOD, "colour: unknown key"),
        ('[[subscribers]]\nemail = "not-an-address"\n', "subscribers[1] (not-an-address).email"),
        ('[[subscribers]]\nemail = "a@example.org"\nsend_at = "25:00"\n', "subscribers[1] (a@example.org).send_at"),
        ('[[subscribers]]\nemail = "a@example.org"\ntimezone = "Mars/Olympus"\n', "not an IANA time zone"),
        ('[schedule]\ntimezone = "Nowhere"\n' + GOOD, "schedule.timezone"),
        ('[[subscribers]]\nemail = "a@example.org"\nmax_papers = 0\n', "max_papers"),
        ('[[subscribers]]\nemail = "a@example.org"\nkeywords = "mamba"\n', "keywords"),
        ('[[subscribers]]\nemail = "a@example.org"\nwat = 1\n', "subscribers[1] (a@example.org).wat: unknown key"),
        (GOOD + GOOD, "listed twice"),
        ("lookback_days = 3\n", "subscribers: is required"),
        ('[delivery]\ntransport = "pigeon"\n' + GOOD, "delivery.transport"),
        ('[[sources]]\nname = "x"\ntype = "ftp"\n' + GOOD, "sources[1] (x)"),
    ],
)
def test_bad_config_names_the_key(write_config, text: str, expected: str) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_error_has_line_number(write_config) -> None:
    path = write_config('[[subscribers]]\nemail = "a@example.org"\nsend_at = "7am"\n')
    with pytest.raises(ConfigError, match=rf"{path}:3: "):
        load_config(path)


def test_toml_syntax_error_shows_line_and_column(write_config) -> None:
    path = write_config('[[subscribers]]\nemail = "a@example.org\n')
    with pytest.raises(ConfigError, match=r"TOML syntax error: .*line 2, column"):
        load_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Path("/nonexistent/digest.toml"))


@pytest.mark.parametrize("verb", ["check", "subscribers", "preview", "send", "fetch", "history"])
def test_cli_bad_config_exits_2_without_traceback(write_config, verb: str) -> None:
    path = write_config('[[subscribers]]\nemail = "nope"\n')
    result = CliRunner().invoke(app, ["--config", str(path), verb])
    assert result.exit_code == 2
    assert "subscribers[1] (nope).email" in result.output
    assert "Traceback" not in result.output


_ATEXT = "abcXYZ09!#$%&'*+/=?^_`{|}~-."
_address = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(alphabet=st.sampled_from(_ATEXT + '@" é'), min_size=0, max_size=70),
    st.sampled_from(
        [
            "example.org",
            "Example.ORG",
            "sub.example.co.uk",
            "localhost",
            "x_y.org",
            "-x.org",
            "example.123",
            "xn--bcher-kva.example",
            "bücher.example",
            "a" * 250 + ".org",
            "",
            "example..org",
        ]
    ),
)


@settings(max_examples=500, deadline=None)
@given(_address)
def test_the_email_fast_path_agrees_with_email_validator(address: str) -> None:
    """Subscriber addresses take a per-domain fast path; it must accept, normalise and refuse exactly
    as `email_validator` does on its own."""
    try:
        expected: str | None = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = check_email(address)
    except ValueError:
        got = None
    assert got == expected


def test_errors_name_the_line_of_the_entry_at_fault(write_config) -> None:
    path = write_config(
        """[[subscribers]]
email = "ada@example.org"
keywords = ["mamba"]
[[subscribers]]
email = "grace@example.org"
max_papers = 5
[[subscribers]]
email = "not an address"
max_papers = 0
[[sources]]
name = "hf"
type = "hf_daily"
[[sources]]
name = "bad"
type = "arxiv"
categories = "cs.LG"
[[sources]]
name = "lost"
type = "rss"
"""
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert any(line.startswith(f"{path}:8: subscribers[3]") and "email" in line for line in lines), lines
    assert any(line.startswith(f"{path}:9: subscribers[3]") and "max_papers" in line for line in lines), lines
    assert any(line.startswith(f"{path}:16: sources[2] (bad).categories") for line in lines), lines
    assert any(line.startswith(f"{path}:17: sources[3] (lost).url") for line in lines), lines
