"""Settings from a TOML file plus `DIGEST_*` environment overrides (pydantic-settings).

`load_config` is the one entry point: it reads the file, applies the environment, validates, resolves
relative paths against the file's folder, and turns every problem into a `ConfigError` whose message
names the file, the key (and subscriber) at fault.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_CONFIG_NAME = "digest.toml"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(Exception):
    """A config that cannot be used; the message is one sentence naming what is wrong and where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _parse_time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(part) for part in value.strip().split(":"))
        if hours < 24 and minutes < 60:
            return dt.time(hours, minutes)
    raise ValueError(f'{value!r} is not a time of day like "07:00"')


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'{value!r} is not an IANA time zone name like "Europe/Berlin"') from None
    return value


_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


@lru_cache(maxsize=1024)
def _ascii_domain(domain: str) -> str | None:
    """An ASCII domain as `validate_email` normalises it, or None when it is invalid or not ASCII."""
    if not domain.isascii():
        return None
    try:
        return validate_email("a@" + domain, check_deliverability=False).domain
    except EmailNotValidError:
        return None


def check_email(value: str) -> str:
    """The address normalised by `email_validator`. A plain ASCII address has only its domain validated
    (once per domain): 100,000 subscribers load in a fraction of the time, with the same results."""
    local, at, domain = value.rpartition("@")
    if at and len(local) <= 64 and len(value) <= 254 and _DOT_ATOM.match(local):
        normal = _ascii_domain(domain)
        if normal is not None:
            return f"{local}@{normal}"
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid e-mail address ({exc})") from None


class ScheduleConfig(_Strict):
    """Defaults for every subscriber's send time and time zone."""

    send_at: dt.time = dt.time(7, 0)
    timezone: str = "UTC"
    fetch_every_minutes: int = Field(default=60, ge=1)

    _time = field_validator("send_at", mode="before")(_parse_time)
    _tz = field_validator("timezone")(_check_timezone)


class DeliveryConfig(_Strict):
    """Which transport sends the digests, and what every message carries."""

    transport: Literal["maildir", "smtp", "stdout"] = "maildir"
    maildir: Path = Path("outbox")
    from_: str = Field(default="Daily Papers <papers@example.org>", alias="from")
    unsubscribe_url: str = ""
    unsubscribe_secret: SecretStr = SecretStr("")
    send_empty: bool = False
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=60.0, gt=0)
    claim_lease_seconds: float = Field(default=120.0, gt=0)
    keep_message_days: int = Field(default=30, ge=1, le=36500)
    operator: str = ""
    trending: int = Field(default=3, ge=0, le=20)

    @field_validator("operator")
    @classmethod
    def _operator_address(cls, value: str) -> str:
        return check_email(value.strip()) if value.strip() else ""

    @field_validator("from_")
    @classmethod
    def _from_has_address(cls, value: str) -> str:
        from email.utils import parseaddr

        _, address = parseaddr(value)
        check_email(address)
        return value

    @field_validator("unsubscribe_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError("must be an https:// URL (with {email} and {token} placeholders)")
        return value

    @model_validator(mode="after")
    def _token_is_signed(self) -> DeliveryConfig:
        secret = self.unsubscribe_secret.get_secret_value()
        if self.unsubscribe_url and "{token}" in self.unsubscribe_url and not secret:
            raise ValueError(
                "unsubscribe_url uses {token} but unsubscribe_secret is empty: set it (better: "
                "DIGEST_DELIVERY__UNSUBSCRIBE_SECRET) so unsubscribe links cannot be forged"
            )
        return self


_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class WebConfig(_Strict):
    """`digest serve`, the reader's side of the email: where it is reached, and the key that signs its links."""

    base_url: str = ""
    secret: SecretStr = SecretStr("")

    @field_validator("base_url")
    @classmethod
    def _public_https(cls, value: str) -> str:
        from urllib.parse import urlsplit

        value = value.strip().rstrip("/")
        if not value:
            return value
        try:
            parts = urlsplit(value)
            host = parts.hostname or ""
        except ValueError:
            raise ValueError(f"{value!r} is not a URL") from None
        if parts.query or parts.fragment or not host:
            raise ValueError(f"{value!r} must be a plain URL like https://papers.example.org (no query)")
        if parts.scheme == "https" or (parts.scheme == "http" and host in _LOCAL_HOSTS):
            return value
        raise ValueError(f"{value!r} must be an https:// URL (http:// only for 127.0.0.1 or localhost, for local use)")


class SmtpConfig(_Strict):
    """How to reach the SMTP server; the password belongs in DIGEST_SMTP__PASSWORD, not in the file."""

    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=4, ge=1, le=64)
    validate_certs: bool = True


class RankingConfig(_Strict):
    """How papers are scored for a subscriber: field weights, partial matches, idf window, trending blend."""

    title_weight: float = Field(default=3.0, ge=0)
    keywords_weight: float = Field(default=2.0, ge=0)
    abstract_weight: float = Field(default=1.0, ge=0)
    unordered_match: float = Field(default=0.6, ge=0, le=1)
    partial_match: float = Field(default=0.5, ge=0, le=1)
    narrower_match: float = Field(default=0.7, ge=0, le=1)
    min_match: float = Field(default=0.2, ge=0, le=1)
    tf_saturation: float = Field(default=1.2, ge=0)
    length_norm: float = Field(default=0.75, ge=0, le=1)
    trend_weight: float = Field(default=0.15, ge=0)
    recency_weight: float = Field(default=0.05, ge=0)
    recency_half_life_hours: float = Field(default=72.0, ge=0)
    keyword_mix: float = Field(default=0.7, ge=0, le=1)
    semantic_weight: float = Field(default=0.1, ge=0)
    semantic_threshold: float = Field(default=0.35, ge=0, lt=1)
    idf_window_days: int = Field(default=30, ge=1, le=3650)
    learn: bool = True  # use readers' feedback and libraries to rank (per subscriber too)
    # a learning reader's model beside their keywords: keyword (0-1) + feedback_weight x trust x (2p - 1)
    feedback_weight: float = Field(default=0.8, ge=0, le=10)


class _SourceBase(_Strict):
    name: str = Field(min_length=1)
    enabled: bool = True


class _HttpSource(_SourceBase):
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    max_total_seconds: float = Field(default=300.0, gt=0)
    backoff_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=60.0, ge=0)


class HfDailySourceConfig(_HttpSource):
    """Hugging Face Daily Papers API."""

    type: Literal["hf_daily"]
    base_url: str = "https://huggingface.co"
    limit: int = Field(default=50, ge=1, le=1000)
    days: int = Field(default=3, ge=1, le=60)


class ArxivSourceConfig(_HttpSource):
    """arXiv: the Atom query API (`mode = "api"`) or the RSS listing (`mode = "rss"`)."""

    type: Literal["arxiv"]
    mode: Literal["api", "rss"] = "rss"
    categories: list[str] = Field(default_factory=lambda: ["cs.LG"], min_length=1)
    base_url: str = ""
    days: int = Field(default=3, ge=1, le=60)
    max_results: int = Field(default=500, ge=1, le=30000)
    page_size: int = Field(default=200, ge=1, le=2000)
    delay_seconds: float = Field(default=3.0, ge=0)
    include_replacements: bool = False


class RssSourceConfig(_HttpSource):
    """Any RSS 2.0 / Atom feed."""

    type: Literal["rss"]
    url: str = Field(min_length=1)
    base_url: str = ""


class FileSourceConfig(_SourceBase):
    """A local file: `.json` (Hugging Face shape), `.jsonl`, or a `.txt` page dump."""

    type: Literal["file"]
    path: Path


SourceConfig = Annotated[
    HfDailySourceConfig | ArxivSourceConfig | RssSourceConfig | FileSourceConfig,
    Field(discriminator="type"),
]


@pydantic_dataclass(slots=True, config=ConfigDict(extra="forbid"))
class SubscriberConfig:
    """One reader: where to send, what they care about, when.

    A slotted dataclass rather than a model: a config lists up to 100,000 of them, and this holds
    each in a third of a model's memory (no `__dict__`, no fields-set record)."""

    email: str
    name: str = ""
    keywords: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    max_papers: int = Field(default=10, ge=1, le=100)
    send_at: dt.time | None = None
    timezone: str | None = None
    days: list[str] = Field(default_factory=list)
    synonyms: bool = True
    send_empty: bool | None = None
    authors: list[str] = Field(default_factory=list)
    library: Path | None = None
    learn: bool | None = None
    min_relevance: float = Field(default=0.0, ge=0.0, le=1.0)
    trending: int | None = Field(default=None, ge=0, le=20)

    _email = field_validator("email")(check_email)

    @field_validator("send_at", mode="before")
    @classmethod
    def _time(cls, value: Any) -> dt.time | None:
        return None if value is None else _parse_time(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [day.strip().lower()[:3] for day in value]
        bad = [orig for orig, day in zip(value, days, strict=True) if day not in WEEKDAYS]
        if bad:
            raise ValueError(f"unknown day {bad[0]!r}; use mon, tue, wed, thu, fri, sat, sun")
        return days

    @field_validator("authors")
    @classmethod
    def _people(cls, value: list[str]) -> list[str]:
        for name in value:
            if not any(c.isalpha() for c in name):
                raise ValueError(f"{name!r} is not a person's name")
        return [sys.intern(name.strip()) for name in value]

    @field_validator("keywords", "exclude")
    @classmethod
    def _terms(cls, value: list[str]) -> list[str]:
        for term in value:
            if not term.strip():
                raise ValueError("an empty keyword is not allowed")
        return [sys.intern(term) for term in value]  # readers share a vocabulary: one copy of each keyword


class Settings(BaseSettings):
    """The whole configuration; see config.example.toml for every key."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_",
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    database_url: str = "sqlite:///digest.db"
    lookback_days: int = Field(default=7, ge=1, le=365)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    ranking: RankingConfig = Field(default_factory=RankingConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    subscribers: list[SubscriberConfig]
    config_path: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: set[str] = set()
        for sub in self.subscribers:
            if sub.email.casefold() in seen:
                raise ValueError(f"subscriber {sub.email} is listed twice")
            seen.add(sub.email.casefold())
        names: set[str] = set()
        for source in self.sources:
            if source.name in names:
                raise ValueError(f"source name {source.name!r} is used twice")
            names.add(source.name)
        return self

    def subscriber(self, email: str) -> SubscriberConfig:
        """The subscriber with this address (case-insensitive), or ConfigError."""
        for sub in self.subscribers:
            if sub.email.casefold() == email.strip().casefold():
                return sub
        raise ConfigError(f"no subscriber {email!r} in {self.config_path or 'the config'}")

    def learns(self, sub: SubscriberConfig) -> bool:
        """Whether the reader's feedback and library shape their ranking: their `learn`, else `[ranking] learn`."""
        return self.ranking.learn if sub.learn is None else sub.learn

    def trending_for(self, sub: SubscriberConfig) -> int:
        """How many trending papers the reader's digest adds: their own setting, else `[delivery] trending`."""
        return self.delivery.trending if sub.trending is None else sub.trending

    def send_time(self, sub: SubscriberConfig) -> dt.time:
        return sub.send_at or self.schedule.send_at

    def timezone(self, sub: SubscriberConfig) -> ZoneInfo:
        return ZoneInfo(sub.timezone or self.schedule.timezone)


def resolve_config_path(path: str | os.PathLike[str] | None) -> Path:
    """`--config PATH`, else `$DIGEST_CONFIG`, else `./digest.toml`."""
    if path:
        return Path(path)
    env = os.environ.get("DIGEST_CONFIG")
    return Path(env) if env else Path(DEFAULT_CONFIG_NAME)


def _loc(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    """Render a pydantic error location as a TOML-ish key, naming the subscriber or source by its own id."""
    parts: list[str] = []
    node: Any = data
    for i, part in enumerate(loc):
        if isinstance(part, int):
            label = f"[{part + 1}]"
            if isinstance(node, list) and part < len(node) and isinstance(node[part], Mapping):
                item = node[part]
                ident = item.get("email") or item.get("name")
                if isinstance(ident, str):
                    label = f"[{part + 1}] ({ident})"
            parts.append(label)
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            if i >= 2 and loc[i - 2] == "sources" and part in {"hf_daily", "arxiv", "rss", "file"}:
                continue
            parts.append(("." if parts else "") + str(part))
            node = node.get(part) if isinstance(node, Mapping) else None
    return "".join(parts)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\s\"']+?)\s*\]\]?\s*(#.*)?$")


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of the key an error location names, inside the right table: for `("subscribers", 2, "email")`
    the `email =` line of the third `[[subscribers]]` entry (or that entry's header when the key is missing)."""
    table: list[str] = []
    index: int | None = None
    key: str | None = None
    for part in loc:
        if isinstance(part, int):
            index = part
        elif index is None and key is None and (not table or part not in {"hf_daily", "arxiv", "rss", "file"}):
            table.append(str(part))
        elif index is not None and str(part) in {"hf_daily", "arxiv", "rss", "file"} and key is None:
            continue
        elif key is None:
            key = str(part)
    if index is None:  # a key of a plain table, or of the top level
        *table, key = table or [""]
    wanted = ".".join(table)
    current, seen, header_line = "", -1, None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = re.sub(r"\s+", "", header.group(2)).replace('"', "").replace("'", "")
            if header.group(1) == "[[" and current == wanted:
                seen += 1
                if seen == index:
                    header_line = number
            elif current == wanted and index is None:
                header_line = number
            continue
        inside = current == wanted and (index is None or seen == index)
        if inside and key and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return header_line


def format_validation_error(exc: ValidationError, data: Mapping[str, Any], path: Path, text: str) -> str:
    """One line per problem: `file:line: key: message`."""
    lines = []
    for err in exc.errors():
        key = _loc(tuple(err["loc"]), data)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in {"extra_forbidden", "unexpected_keyword_argument"}:
            msg = "unknown key"
        elif err["type"] in {"missing", "missing_argument"}:
            msg = "is required"
        line = _line_of(text, tuple(err["loc"])) if key else None
        where = f"{path}:{line}" if line else str(path)
        lines.append(f"{where}: {key or 'config'}: {msg}")
    return "\n".join(lines)


def parse_config(text: str, path: Path) -> Settings:
    """Validate TOML text as the config at `path` (for messages and relative paths), with `DIGEST_*`
    environment overrides applied."""
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    try:
        settings = Settings(**data, config_path=path)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, data, path, text)) from None
    resolved = _resolve_paths(settings, path.parent)
    _check_libraries(resolved)
    return resolved


def load_config(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, validate and resolve the config file; every problem becomes a ConfigError."""
    resolved = resolve_config_path(path)
    try:
        text = resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{resolved}: config file not found (pass --config PATH or set DIGEST_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{resolved}: cannot read config file: {exc}") from None
    return parse_config(text, resolved.absolute())


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Relative paths in the config are relative to the config file's folder."""
    url = settings.database_url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        settings.database_url = prefix + str((base / url[len(prefix) :]).resolve())
    settings.delivery.maildir = (base / settings.delivery.maildir).resolve()
    for source in settings.sources:
        if isinstance(source, FileSourceConfig):
            source.path = (base / source.path).resolve()
    for sub in settings.subscribers:
        if sub.library is not None:
            sub.library = (base / sub.library).resolve()
    return settings


def _check_libraries(settings: Settings) -> None:
    """Read every subscriber's library once now, so a broken export is named (file and line) at load time."""
    from digest.library import LibraryError, read_library

    for sub in settings.subscribers:
        if sub.library is not None:
            try:
                read_library(sub.library)
            except LibraryError as exc:
                raise ConfigError(f"{exc} (the library of {sub.email})") from None
