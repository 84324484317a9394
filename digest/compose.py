"""Render a subscriber's ranked papers into one multipart/alternative email (text + HTML).

Templates are loaded (and their CSS inlined) once per `Composer`; everything a template sees is plain
data built here, so the templates hold layout only. Header values are stripped of control characters,
links are http(s) only, and the whole message is kept under `MAX_BYTES` by shortening summaries first
and leaving out the lowest-ranked papers only when that is not enough.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from digest.inliner import InliningLoader, NotInlinable, inline_rendered
from digest.logs import event
from digest.ranking import RankedPaper

log = logging.getLogger("digest.compose")

MAX_BYTES = 100_000
TOP_PAPERS = 5
SUMMARY_STEPS: tuple[tuple[int, int], ...] = ((420, 420), (420, 160), (420, 0), (280, 0), (160, 0), (0, 0))
TEXT_WIDTH = 78
HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
FIELD_LABELS = {"title": "title", "keywords": "keywords", "abstract": "abstract"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_PREHEADER_PAD = Markup(("\n" + "&#847;&zwnj;&nbsp;" * 10) * 4)


def templates_dir() -> Path:
    """`digest/templates` inside an installed wheel, else the repository's top-level `templates/`."""
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def one_line(text: str) -> str:
    """A header-safe single line: control and bidi-override characters (CR, LF, NUL, RLO, …) become spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


def clip(text: str, max_chars: int) -> str:
    """At most `max_chars` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def safe_url(url: str | None) -> str | None:
    """Only absolute http(s) links without whitespace or control characters reach an email."""
    if not url:
        return None
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")) or _CONTROL.search(url) or any(c.isspace() for c in url):
        return None
    try:
        if not urlsplit(url).hostname:
            return None
    except ValueError:
        return None
    return url


def excerpt(text: str, max_chars: int = 420, max_sentences: int = 3) -> str:
    """The first sentences of a text, cut on a sentence boundary, never longer than `max_chars` (+ …)."""
    text = " ".join(text.split())
    if max_chars <= 0:
        return ""
    out = ""
    for sentence in _SENTENCE_END.split(text)[:max_sentences]:
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > max_chars:
            break
        out = candidate
    return out or clip(text, max_chars)


def short_authors(authors: Sequence[str], keep: int = 3) -> str:
    """First `keep` authors, then "et al."; each name single-line and of sane length."""
    names = [clip(one_line(a), 60) for a in authors if one_line(a)]
    if len(names) <= keep:
        return ", ".join(names)
    return ", ".join(names[:keep]) + " et al."


def message_id(subscriber: str, digest_date: dt.date, from_addr: str) -> str:
    """Deterministic per subscriber, date and sender domain, so a resend carries the same Message-ID."""
    domain = _domain(from_addr)
    digest = hashlib.sha256(subscriber.strip().lower().encode()).hexdigest()[:16]
    return f"<digest-{digest_date.isoformat()}.{digest}@{domain}>"


def unsubscribe_token(subscriber: str, secret: str) -> str:
    """HMAC-SHA256 of the lower-cased address: proves an unsubscribe link was issued by us."""
    return hmac.new(secret.encode(), subscriber.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]


def address(name: str, addr_spec: str) -> Address | str:
    """A header address whose display name is quoted or RFC 2047-encoded as needed (`;`, `,`, non-ASCII…)."""
    name, addr_spec = one_line(name), one_line(addr_spec).replace(" ", "")
    try:
        return Address(display_name=name, addr_spec=addr_spec)
    except (ValueError, IndexError):
        return addr_spec


def _domain(from_addr: str) -> str:
    return one_line(parseaddr(from_addr)[1].rpartition("@")[2]).replace(" ", "") or "localhost"


@dataclass(frozen=True, slots=True)
class MatchView:
    """One matched interest and where in the paper it was found."""

    term: str
    fields: tuple[str, ...]

    @property
    def where(self) -> str:
        names = [FIELD_LABELS.get(f, f) for f in self.fields]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    @property
    def quoted(self) -> str:
        return f'"{self.term}" in the {self.where}'


@dataclass(frozen=True, slots=True)
class LinkView:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class PaperView:
    """What a template shows for one paper."""

    rank: int
    title: str
    url: str | None
    authors: str
    upvotes: int
    comments: int
    matched: list[str]
    summary: str
    code_url: str | None
    project_url: str | None
    why: tuple[MatchView, ...] = ()
    links: tuple[LinkView, ...] = ()

    @property
    def stats(self) -> list[str]:
        """`["214 upvotes", "17 comments"]`, leaving out what is unknown (zero)."""
        out = []
        if self.upvotes:
            out.append(f"{self.upvotes} upvote{'' if self.upvotes == 1 else 's'}")
        if self.comments:
            out.append(f"{self.comments} comment{'' if self.comments == 1 else 's'}")
        return out


@dataclass(frozen=True, slots=True)
class DigestInfo:
    """Everything about one digest besides its papers."""

    subscriber_email: str
    subscriber_name: str
    digest_date: dt.date
    interests: list[str]
    from_addr: str
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    config_hint: str = "the digest config file"


def hf_url(paper: object) -> str | None:
    """The paper's Hugging Face page when its link is one."""
    url = safe_url(getattr(paper, "url", None))
    if url and (urlsplit(url).hostname or "").endswith("huggingface.co") and "/papers/" in url:
        return url
    return None


def arxiv_url(paper: object) -> str | None:
    arxiv_id = getattr(paper, "arxiv_id", None)
    return f"https://arxiv.org/abs/{quote(one_line(arxiv_id), safe='/.')}" if arxiv_id else None


def paper_url(paper: object) -> str | None:
    """The paper's page: Hugging Face when known, else arXiv abs, else the source's link."""
    return hf_url(paper) or arxiv_url(paper) or safe_url(getattr(paper, "url", None))


def _links(paper: Any, main: str | None) -> tuple[LinkView, ...]:
    candidates = [
        ("arXiv", arxiv_url(paper)),
        ("Code", safe_url(paper.github_repo)),
        ("Project page", safe_url(paper.project_page)),
    ]
    return tuple(LinkView(label, url) for label, url in candidates if url and url != main)


def paper_views(ranked: Sequence[RankedPaper], summary_chars: tuple[int, int] = SUMMARY_STEPS[0]) -> list[PaperView]:
    """Ranked papers → what the templates show; summaries of at most `summary_chars` = (top papers, the rest)."""
    views = []
    for rank, item in enumerate(ranked, start=1):
        limit = summary_chars[0] if rank <= TOP_PAPERS else summary_chars[1]
        p = item.paper
        url = paper_url(p)
        views.append(
            PaperView(
                rank=rank,
                title=clip(one_line(p.title), 300) or "(untitled)",
                url=url,
                authors=short_authors(list(p.authors)),
                upvotes=max(p.upvotes or 0, 0),
                comments=max(p.comments or 0, 0),
                matched=[one_line(m.term) for m in item.matched],
                summary=excerpt(p.ai_summary or p.abstract or "", limit),
                code_url=safe_url(p.github_repo),
                project_url=safe_url(p.project_page),
                why=tuple(MatchView(one_line(m.term), tuple(m.fields)) for m in item.matched),
                links=_links(p, url),
            )
        )
    return views


def day_label(digest_date: dt.date) -> str:
    """`Mon 23 Nov`: the short date of subjects."""
    return f"{digest_date:%a} {digest_date.day} {digest_date:%b}"


def subject_for(digest_date: dt.date, papers: Sequence[PaperView]) -> str:
    """`Your papers for Mon 23 Nov: <top title> +9 more`, always one line."""
    day = day_label(digest_date)
    if not papers:
        return f"Your papers for {day}: nothing matched today"
    more = f" +{len(papers) - 1} more" if len(papers) > 1 else ""
    return one_line(f"Your papers for {day}: {clip(papers[0].title, 90)}{more}")


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "    ", first: str | None = None) -> str:
    """Wrap for the text part; words (and URLs) are never broken."""
    return textwrap.fill(
        " ".join(str(text).split()),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def transfer_encoding(body: str) -> str:
    """7bit when the body is ASCII with lines within RFC 5322's 998 octets (no encoding overhead), else QP."""
    if body.isascii() and all(len(line) <= 998 for line in body.splitlines()):
        return "7bit"
    return "quoted-printable"


@dataclass(frozen=True, slots=True)
class Fitted:
    """A composed message and how it was made to fit: papers shown and the summary length used."""

    message: EmailMessage
    shown: int
    summary_chars: tuple[int, int]


class Composer:
    """Loads the templates once (inlining their CSS then) and turns ranked papers into `EmailMessage`s.

    `inline="load"` inlines each HTML template's CSS when it is loaded; a template whose Jinja tags
    would not survive that falls back to `"render"`, inlining every rendered email instead.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        inline: Literal["load", "render"] = "load",
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.directory = directory or templates_dir()
        self.max_bytes = max_bytes
        self.inline_mode: Literal["load", "render"] = inline
        if inline == "load":
            try:
                self.env = self._environment(InliningLoader(FileSystemLoader(str(self.directory))))
            except NotInlinable as exc:
                event(log, "css_inlined_per_email", logging.WARNING, reason=str(exc))
                self.inline_mode = "render"
        if self.inline_mode == "render":
            self.env = self._environment(FileSystemLoader(str(self.directory)))
        self.html = self.env.get_template(HTML_TEMPLATE)
        self.text = self.env.get_template(TEXT_TEMPLATE)

    @staticmethod
    def _environment(loader: BaseLoader) -> Environment:
        env = Environment(
            loader=loader,
            autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters["wrap"] = wrap
        env.globals["preheader_pad"] = _PREHEADER_PAD
        for name in env.list_templates(filter_func=lambda n: n.endswith(".j2")):
            env.get_template(name)
        return env

    def render(self, info: DigestInfo, papers: list[PaperView], omitted: int = 0) -> tuple[str, str]:
        """(text, html) bodies for one digest; the HTML is inlined and pure ASCII (non-ASCII as &#…;)."""
        context = {
            "info": info,
            "papers": papers,
            "omitted": omitted,
            "date_label": f"{info.digest_date:%A} {info.digest_date.day} {info.digest_date:%B %Y}",
            "subject": subject_for(info.digest_date, papers),
            "preheader": clip(" · ".join(p.title for p in papers[:3]), 160) or "Nothing new matched today.",
        }
        text = self.text.render(context)
        html = self.html.render(context)
        if self.inline_mode == "render":
            html = inline_rendered(html)
        return text, html.encode("ascii", "xmlcharrefreplace").decode("ascii")

    def build(self, info: DigestInfo, papers: list[PaperView], now: dt.datetime, omitted: int = 0) -> EmailMessage:
        """The message for exactly these paper views (no size fitting)."""
        text, html = self.render(info, papers, omitted)
        msg = EmailMessage(policy=SMTP)
        from_name, from_email = parseaddr(one_line(info.from_addr))
        msg["From"] = address(from_name, from_email)
        msg["To"] = address(info.subscriber_name, info.subscriber_email)
        msg["Subject"] = subject_for(info.digest_date, papers)
        msg["Date"] = format_datetime(now if now.tzinfo else now.replace(tzinfo=dt.UTC))
        msg["Message-ID"] = message_id(info.subscriber_email, info.digest_date, info.from_addr)
        msg["List-Id"] = f"Daily papers digest <digest.{_domain(info.from_addr)}>"
        unsubscribe = [f"<{u}>" for u in (info.unsubscribe_mailto, info.unsubscribe_url) if u]
        if unsubscribe:
            msg["List-Unsubscribe"] = ", ".join(unsubscribe)
        if info.unsubscribe_url:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text, cte=transfer_encoding(text))
        msg.add_alternative(html, subtype="html", cte=transfer_encoding(html))
        msg.set_boundary("==digest-" + hashlib.sha256(msg["Message-ID"].encode()).hexdigest()[:24])
        return msg

    def fit(self, info: DigestInfo, ranked: Sequence[RankedPaper], now: dt.datetime) -> Fitted:
        """The message under `max_bytes`: summaries shrink first (lower ranks before the top ones), then
        the lowest-ranked papers are left out, found by bisection."""
        views: list[PaperView] = []
        for chars in SUMMARY_STEPS:
            views = paper_views(ranked, chars)
            msg = self.build(info, views, now)
            if len(bytes(msg)) < self.max_bytes:
                return Fitted(msg, len(views), chars)
        chars = SUMMARY_STEPS[-1]
        best = Fitted(self.build(info, [], now, omitted=len(views)), 0, chars)
        lo, hi = 0, len(views)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            msg = self.build(info, views[:mid], now, omitted=len(views) - mid)
            if len(bytes(msg)) < self.max_bytes:
                lo, best = mid, Fitted(msg, mid, chars)
            else:
                hi = mid
        event(
            log,
            "digest_too_large",
            logging.WARNING,
            subscriber=info.subscriber_email,
            shown=best.shown,
            matched=len(views),
            max_bytes=self.max_bytes,
        )
        return best

    def compose(self, info: DigestInfo, ranked: Sequence[RankedPaper], now: dt.datetime) -> EmailMessage:
        """The complete message `send` would hand to the transport."""
        return self.fit(info, ranked, now).message


def unsubscribe_links(subscriber: str, from_addr: str, url_template: str, secret: str) -> tuple[str | None, str]:
    """(https one-click URL or None, mailto) for the List-Unsubscribe header and the footer."""
    sender = one_line(parseaddr(from_addr)[1]).replace(" ", "")
    mailto = f"mailto:{sender}?subject={quote('unsubscribe ' + subscriber)}"
    if not url_template:
        return None, mailto
    token = unsubscribe_token(subscriber, secret)
    url = url_template.replace("{email}", quote(subscriber, safe="")).replace("{token}", token)
    return url, mailto


__all__ = [
    "MAX_BYTES",
    "Composer",
    "DigestInfo",
    "Fitted",
    "PaperView",
    "excerpt",
    "message_id",
    "one_line",
    "paper_url",
    "paper_views",
    "safe_url",
    "subject_for",
    "templates_dir",
    "unsubscribe_links",
    "unsubscribe_token",
]
