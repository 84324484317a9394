"""Signed links: the URLs a digest carries to `digest serve`, and the tokens that prove we issued them.

A token binds an action, a reader, and where it applies (a paper, a digest date) with HMAC-SHA256 under one
secret, so it can be neither forged nor turned on another reader or paper. The reader appears in it only as
a pseudonym (`sid`, itself an HMAC of the address), never as an address. Changing the secret invalidates
every link already sent. `Signer` is pure (the secret comes in as a value); `signer_of` finds the secret a
deployment uses.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from digest.config import Settings


class Action(StrEnum):
    """What a link does; the value is its one-letter code in tokens."""

    unsubscribe = "u"
    more = "m"
    less = "l"
    view = "v"
    prefs = "p"
    feed = "a"


# the path segment each action is served under
ROUTES: dict[Action, str] = {
    Action.unsubscribe: "u",
    Action.more: "f",
    Action.less: "f",
    Action.view: "v",
    Action.prefs: "p",
    Action.feed: "a",
}

_TOKEN = re.compile(r"^([umlvpa])\.([a-z2-7]{16})\.(\d{8}|-)\.(\d{1,18}|-)\.([A-Za-z0-9_-]{22})$")


@dataclass(frozen=True, slots=True)
class Claim:
    """What a verified token allows: this action, for this reader, on this paper and digest."""

    action: Action
    subscriber: str
    paper_id: int | None
    digest_date: dt.date | None


@dataclass(frozen=True, slots=True)
class Signer:
    """Makes and checks the links of one deployment (its public `base_url` and secret)."""

    base_url: str
    secret: bytes

    def sid(self, subscriber: str) -> str:
        """The reader's pseudonym in links: 80 bits of HMAC of the lower-cased address, base32."""
        mac = hmac.digest(self.secret, b"sid\0" + subscriber.strip().lower().encode(), "sha256")
        return base64.b32encode(mac[:10]).decode("ascii").lower()

    def _mac(self, action: Action, subscriber: str, day: str, paper: str) -> str:
        if action is Action.more or action is Action.less:
            return self._feedback_macs(subscriber, day, paper)[action is Action.less]
        return self._own_mac(action, subscriber, day, paper)

    def _own_mac(self, action: Action, subscriber: str, day: str, paper: str) -> str:
        """A MAC of its own for one action (every action's scheme, and "more"/"less" before they were paired)."""
        message = f"{action.value}\0{subscriber.strip().lower()}\0{day}\0{paper}".encode()
        return _b64(hmac.digest(self.secret, message, "sha256")[:16])

    def _feedback_macs(self, subscriber: str, day: str, paper: str) -> tuple[str, str]:
        """The "more" and "less" MACs of one paper: the two halves of one HMAC (neither tells the other),
        so a digest pays one HMAC a paper for its pair of links."""
        return self._paired_macs(_feedback_prefix(subscriber, day), paper)

    def _paired_macs(self, prefix: bytes, paper: str) -> tuple[str, str]:
        mac = hmac.digest(self.secret, prefix + paper.encode(), "sha256")
        return _b64(mac[:16]), _b64(mac[16:])

    def token(
        self,
        action: Action,
        subscriber: str,
        *,
        paper_id: int | None = None,
        digest_date: dt.date | None = None,
        sid: str | None = None,
    ) -> str:
        """A signed token; `sid` may pass the reader's pseudonym when the caller signs several for them."""
        day = digest_date.strftime("%Y%m%d") if digest_date else "-"
        paper = str(paper_id) if paper_id is not None else "-"
        return self._token(action, subscriber, sid or self.sid(subscriber), day, paper)

    def _token(self, action: Action, subscriber: str, sid: str, day: str, paper: str) -> str:
        return f"{action.value}.{sid}.{day}.{paper}.{self._mac(action, subscriber, day, paper)}"

    def feedback_links(self, subscriber: str, digest_date: dt.date, sid: str | None = None) -> FeedbackLinks:
        """A reader's "more / less like this" links for one digest, with what they share computed once (`sid`
        may pass the reader's pseudonym when the caller has it)."""
        route, day = f"{self.base_url}/{ROUTES[Action.more]}/", digest_date.strftime("%Y%m%d")
        return FeedbackLinks(
            self,
            subscriber,
            sid or self.sid(subscriber),
            day,
            route + Action.more.value,
            route + Action.less.value,
            _feedback_prefix(subscriber, day),
        )

    def url(
        self,
        action: Action,
        subscriber: str,
        *,
        paper_id: int | None = None,
        digest_date: dt.date | None = None,
        sid: str | None = None,
    ) -> str:
        token = self.token(action, subscriber, paper_id=paper_id, digest_date=digest_date, sid=sid)
        return f"{self.base_url}/{ROUTES[action]}/{token}"

    def verify(self, token: str, lookup: Callable[[str], str | None]) -> Claim | None:
        """The claim a token makes, if we signed it for a reader `lookup` (sid → address) knows; else None.
        The MAC is compared in constant time."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        code, sid, day, paper, mac = match.groups()
        subscriber = lookup(sid)
        if subscriber is None:
            return None
        action = Action(code)
        if not hmac.compare_digest(mac, self._mac(action, subscriber, day, paper)) and not (
            # feedback links in digests sent before their MACs were paired: one HMAC per action
            action in (Action.more, Action.less)
            and hmac.compare_digest(mac, self._own_mac(action, subscriber, day, paper))
        ):
            return None
        try:
            date = dt.datetime.strptime(day, "%Y%m%d").date() if day != "-" else None
        except ValueError:
            return None
        return Claim(action, subscriber, int(paper) if paper != "-" else None, date)


@dataclass(frozen=True, slots=True)
class FeedbackLinks:
    """paper id → ("more like this" URL, "less like this" URL) for one reader and digest, made on demand
    (only for the papers a digest shows), the reader's pseudonym and the date computed once."""

    signer: Signer
    subscriber: str
    sid: str
    day: str
    more_head: str  # the links up to their token's action code: the same for every paper
    less_head: str
    prefix: bytes  # what the paper's MAC signs, but for the paper
    made: dict[int, tuple[str, str]] = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, paper_id: int) -> tuple[str, str]:
        made = self.made.get(paper_id)
        if made is None:
            made = self.made[paper_id] = self._make(paper_id)
        return made

    def _make(self, paper_id: int) -> tuple[str, str]:
        paper = str(paper_id)
        more, less = self.signer._paired_macs(self.prefix, paper)
        tail = f".{self.sid}.{self.day}.{paper}."
        return f"{self.more_head}{tail}{more}", f"{self.less_head}{tail}{less}"


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _feedback_prefix(subscriber: str, day: str) -> bytes:
    """The start of what a feedback link's MAC signs: the scheme, the reader's address and the digest's day."""
    return f"f\0{subscriber.strip().lower()}\0{day}\0".encode()


def _b64(mac: bytes) -> str:
    """16 MAC bytes as 22 URL-safe base64 characters (no padding), what `base64.urlsafe_b64encode` gives, in C
    calls only: a digest makes two a paper."""
    return binascii.b2a_base64(mac, newline=False).translate(_URL_SAFE)[:22].decode("ascii")


class Directory:
    """sid → address for a set of readers (the config's subscribers), built once per set."""

    def __init__(self, signer: Signer, subscribers: Iterable[str]) -> None:
        self._by_sid = {signer.sid(s): s for s in subscribers}

    def __call__(self, sid: str) -> str | None:
        return self._by_sid.get(sid)

    def __len__(self) -> int:
        return len(self._by_sid)


def signer_for(base_url: str, configured_secret: str, stored_secret: Callable[[], str]) -> Signer | None:
    """The deployment's signer: None without a `base_url` (emails then carry no web links). The configured
    secret wins; else the one kept in the database (`stored_secret` is only called then)."""
    if not base_url:
        return None
    return Signer(base_url.rstrip("/"), (configured_secret or stored_secret()).encode())


def signer_of(settings: Settings, engine: Engine, *, always: bool = False) -> Signer | None:
    """The signer `settings` call for: the configured secret (`[web] secret`, else `[delivery]
    unsubscribe_secret`), else the one kept in the database, read (or made) in its own committed
    transaction, so a preview's rolled-back work never makes a key nobody keeps. None without a
    `base_url`, unless `always` (the server checks links whatever URL it is reached at)."""
    from digest import store

    def stored() -> str:
        with engine.begin() as conn:
            return store.web_secret(conn)

    configured = settings.web.secret.get_secret_value() or settings.delivery.unsubscribe_secret.get_secret_value()
    if always and not settings.web.base_url:
        return Signer("", (configured or stored()).encode())
    return signer_for(settings.web.base_url, configured, stored)
