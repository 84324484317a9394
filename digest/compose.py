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
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape
from markupsafe import Markup, escape

from digest import mime
from digest.inliner import InliningLoader, NotInlinable, inline_rendered
from digest.logs import event
from digest.models import Paper
from digest.ranking import Match, RankedPaper

log = logging.getLogger("digest.compose")

MAX_BYTES = 100_000
TOP_PAPERS = 5
SUMMARY_STEPS: tuple[tuple[int, int], ...] = ((420, 420), (420, 160), (420, 0), (280, 0), (160, 0), (0, 0))
TEXT_WIDTH = 78
HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
PAPER_HTML = "paper.html.j2"
PAPER_TEXT = "paper.txt.j2"
LAYOUT_HTML = "base.html.j2"
CACHE_SIZE = 20_000
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
    return hmac.digest(secret.encode(), subscriber.strip().lower().encode(), "sha256").hex()[:32]


def address(name: str, addr_spec: str) -> Address | str:
    """A header address whose display name is quoted or RFC 2047-encoded as needed (`;`, `,`, non-ASCII…)."""
    name, addr_spec = one_line(name), one_line(addr_spec).replace(" ", "")
    try:
        return Address(display_name=name, addr_spec=addr_spec)
    except (ValueError, IndexError):
        return addr_spec


@lru_cache(maxsize=64)
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
    matched: tuple[str, ...]
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


@dataclass(frozen=True, slots=True)
class PaperFacts:
    """What a digest shows of one paper whatever its rank or the reader's interests."""

    title: str
    url: str | None
    authors: str
    upvotes: int
    comments: int
    summary: str
    code_url: str | None
    project_url: str | None
    links: tuple[LinkView, ...]


def paper_facts(p: Paper, summary_chars: int) -> PaperFacts:
    """Clean, clip and link one paper for display, its summary at most `summary_chars` long."""
    url = paper_url(p)
    return PaperFacts(
        title=clip(one_line(p.title), 300) or "(untitled)",
        url=url,
        authors=short_authors(list(p.authors)),
        upvotes=max(p.upvotes or 0, 0),
        comments=max(p.comments or 0, 0),
        summary=excerpt(p.ai_summary or p.abstract or "", summary_chars),
        code_url=safe_url(p.github_repo),
        project_url=safe_url(p.project_page),
        links=_links(p, url),
    )


@lru_cache(maxsize=65536)
def match_views(matched: tuple[Match, ...]) -> tuple[tuple[str, ...], tuple[MatchView, ...]]:
    """The matched terms as shown (single-line) and where each was found; shared by many digests."""
    return (
        tuple(one_line(m.term) for m in matched),
        tuple(MatchView(one_line(m.term), tuple(m.fields)) for m in matched),
    )


def paper_view(rank: int, item: RankedPaper, facts: PaperFacts) -> PaperView:
    matched, why = match_views(tuple(item.matched))
    return PaperView(
        rank=rank,
        title=facts.title,
        url=facts.url,
        authors=facts.authors,
        upvotes=facts.upvotes,
        comments=facts.comments,
        matched=matched,
        summary=facts.summary,
        code_url=facts.code_url,
        project_url=facts.project_url,
        why=why,
        links=facts.links,
    )


def summary_limit(rank: int, summary_chars: tuple[int, int]) -> int:
    return summary_chars[0] if rank <= TOP_PAPERS else summary_chars[1]


def paper_views(ranked: Sequence[RankedPaper], summary_chars: tuple[int, int] = SUMMARY_STEPS[0]) -> list[PaperView]:
    """Ranked papers → what the templates show; summaries of at most `summary_chars` = (top papers, the rest)."""
    return [
        paper_view(rank, item, paper_facts(item.paper, summary_limit(rank, summary_chars)))
        for rank, item in enumerate(ranked, start=1)
    ]


class Memo:
    """A bounded map for rendered pieces that many digests share; when full, the oldest entry goes.

    A plain dict: a lookup is one C call (`get`), which matters at ~50 lookups per digest."""

    __slots__ = ("data", "get", "size")

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.data: dict[Hashable, Any] = {}
        self.get = self.data.get

    def put(self, key: Hashable, value: Any) -> Any:
        data = self.data
        if len(data) >= self.size:
            del data[next(iter(data))]
        data[key] = value
        return value


@lru_cache(maxsize=64)
def day_label(digest_date: dt.date) -> str:
    """`Mon 23 Nov`: the short date of subjects."""
    return f"{digest_date:%a} {digest_date.day} {digest_date:%b}"


@lru_cache(maxsize=64)
def long_date(digest_date: dt.date) -> str:
    """`Monday 23 November 2026`: the date heading the digest."""
    return f"{digest_date:%A} {digest_date.day} {digest_date:%B %Y}"


def subject_for(digest_date: dt.date, papers: Sequence[PaperView]) -> str:
    """`Your papers for Mon 23 Nov: <top title> +9 more`, always one line."""
    day = day_label(digest_date)
    if not papers:
        return f"Your papers for {day}: nothing matched today"
    more = f" +{len(papers) - 1} more" if len(papers) > 1 else ""
    return one_line(f"Your papers for {day}: {clip(papers[0].title, 90)}{more}")


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "    ", first: str | None = None) -> str:
    """Wrap for the text part; words (and URLs) are never broken. Same output as `textwrap.fill` with
    `break_long_words=False, break_on_hyphens=False` on whitespace-collapsed text, several times faster."""
    words = str(text).split()
    if not words:
        return ""
    lines = []
    line = (indent if first is None else first) + words[0]
    for word in words[1:]:
        if len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = indent + word
    lines.append(line)
    return "\n".join(lines)


transfer_encoding = mime.transfer_encoding


@dataclass(frozen=True, slots=True)
class Fitted:
    """A composed message (its exact bytes) and how it was made to fit: papers shown, summary length used."""

    data: bytes
    message_id: str
    shown: int
    summary_chars: tuple[int, int]

    @property
    def message(self) -> EmailMessage:
        """The message parsed back from its bytes (for previews and tests; sending uses `data`)."""
        msg = message_from_bytes(self.data, policy=SMTP)
        assert isinstance(msg, EmailMessage)
        return msg


class Composer:
    """Loads the templates once (inlining their CSS then) and turns ranked papers into messages.

    `inline="load"` inlines each HTML template's CSS when it is loaded; a template whose Jinja tags
    would not survive that falls back to `"render"`, inlining every rendered email instead. Each paper
    is rendered once (`paper.*.j2`) and the pieces are reused by every digest that shows it, so the
    cost per digest is the page around them and the MIME bytes, built directly (`digest.mime`).
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        inline: Literal["load", "render"] = "load",
        max_bytes: int = MAX_BYTES,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.directory = directory or templates_dir()
        self.max_bytes = max_bytes
        self.inline_mode: Literal["load", "render"] = inline
        if inline == "load":
            try:
                loader = InliningLoader(FileSystemLoader(str(self.directory)), partials={PAPER_HTML: LAYOUT_HTML})
                self.env = self._environment(loader)
            except NotInlinable as exc:
                event(log, "css_inlined_per_email", logging.WARNING, reason=str(exc))
                self.inline_mode = "render"
        if self.inline_mode == "render":
            self.env = self._environment(FileSystemLoader(str(self.directory)))
        self.html = self.env.get_template(HTML_TEMPLATE)
        self.text = self.env.get_template(TEXT_TEMPLATE)
        try:
            self.paper_html: Any = self.env.get_template(PAPER_HTML).module
            self.paper_text: Any = self.env.get_template(PAPER_TEXT).module
        except TemplateNotFound:
            self.paper_html = self.paper_text = None
        self.facts = Memo(cache_size)
        self.heads = Memo(cache_size)
        self.bodies = Memo(cache_size)

    @staticmethod
    def _environment(loader: BaseLoader) -> Environment:
        env = Environment(
            loader=loader,
            auto_reload=False,  # else every `extends` stats the layout file, once per digest
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

    def views(
        self, ranked: Sequence[RankedPaper], summary_chars: tuple[int, int] = SUMMARY_STEPS[0]
    ) -> list[PaperView]:
        """`paper_views`, with each paper's cleaned facts computed once per summary length.

        Facts are keyed by the paper object itself (kept alive in the cache, so its id cannot be reused):
        papers are treated as unchanging while a Composer holds them.
        """
        views = []
        facts_memo = self.facts
        for rank, item in enumerate(ranked, start=1):
            limit = summary_limit(rank, summary_chars)
            paper = item.paper
            key = (id(paper), limit)
            held = facts_memo.get(key)
            if held is None or held[0] is not paper:
                held = facts_memo.put(key, (paper, paper_facts(paper, limit)))
            views.append(paper_view(rank, item, held[1]))
        return views

    def blocks(self, papers: Sequence[PaperView]) -> tuple[list[tuple[Markup, Markup]], list[tuple[str, str]]]:
        """(html, text) pieces of each paper: `head` (rank, title, link) and its body, assembled from three
        cached parts so only the subscriber-specific "why" line varies between readers of one paper."""
        html: list[tuple[Markup, Markup]] = []
        text: list[tuple[str, str]] = []
        ph, pt = self.paper_html, self.paper_text
        heads, bodies = self.heads, self.bodies
        for p in papers:
            key: Hashable = (p.rank, p.title, p.url)
            head = heads.get(key) or heads.put(key, _render_pair(ph.head, pt.head, p))
            key = ("top", p.authors, p.upvotes, p.comments)
            top = bodies.get(key) or bodies.put(key, _render_pair(ph.top, pt.top, p))
            key = ("why", p.why)
            why = bodies.get(key) or bodies.put(key, _render_pair(ph.why, pt.why, p))
            key = ("rest", p.url, p.summary, p.links)
            rest = bodies.get(key) or bodies.put(key, _render_pair(ph.rest, pt.rest, p))
            html.append((head[0], Markup("".join((top[0], why[0], rest[0])))))
            text.append((head[1], "".join((top[1], why[1], rest[1]))))
        return html, text

    def render(self, info: DigestInfo, papers: list[PaperView], omitted: int = 0) -> tuple[str, str]:
        """(text, html) bodies for one digest; the HTML is inlined and pure ASCII (non-ASCII as &#…;)."""
        context = {
            "info": info,
            "papers": papers,
            "omitted": omitted,
            "date_label": long_date(info.digest_date),
            "subject": _ascii_html(escape(subject_for(info.digest_date, papers))),
            "preheader": _ascii_html(escape(clip(" · ".join(p.title for p in papers[:3]), 160)))
            or "Nothing new matched today.",
        }
        html_blocks: list[tuple[Markup, Markup]] = []
        text_blocks: list[tuple[str, str]] = []
        if self.paper_html is not None:
            html_blocks, text_blocks = self.blocks(papers)
        text = self.text.render(context, paper_blocks=text_blocks)
        html = self.html.render(context, paper_blocks=html_blocks)
        if self.inline_mode == "render":
            html = inline_rendered(html)
        if not html.isascii():
            html = html.encode("ascii", "xmlcharrefreplace").decode("ascii")
        return text, html

    def build(self, info: DigestInfo, papers: list[PaperView], now: dt.datetime, omitted: int = 0) -> EmailMessage:
        """The message for exactly these paper views, built with the `email` package: the reference that
        `build_bytes` must match byte for byte."""
        text, html = self.render(info, papers, omitted)
        msg = EmailMessage(policy=DIGEST_POLICY)
        from_name, from_email = parseaddr(one_line(info.from_addr))
        msg["From"] = address(from_name, from_email)
        msg["To"] = address(info.subscriber_name, info.subscriber_email)
        msg["Subject"] = subject_for(info.digest_date, papers)
        msg["Date"] = format_datetime(now if now.tzinfo else now.replace(tzinfo=dt.UTC))
        msg["Message-ID"] = message_id(info.subscriber_email, info.digest_date, info.from_addr)
        msg["List-Id"] = f"Daily papers digest <digest.{_domain(info.from_addr)}>"
        unsubscribe = [u for u in (info.unsubscribe_mailto, info.unsubscribe_url) if u]
        if unsubscribe:
            msg["List-Unsubscribe"] = ", ".join(f"<{u}>" for u in unsubscribe)
        if info.unsubscribe_url:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text, cte=transfer_encoding(text))
        msg.add_alternative(html, subtype="html", cte=transfer_encoding(html))
        msg.set_boundary(boundary_for(msg["Message-ID"]))
        return msg

    def build_bytes(
        self, info: DigestInfo, papers: list[PaperView], now: dt.datetime, omitted: int = 0
    ) -> tuple[bytes, str]:
        """(message bytes, Message-ID) for exactly these paper views, without building an `EmailMessage`."""
        text, html = self.render(info, papers, omitted)
        mid = message_id(info.subscriber_email, info.digest_date, info.from_addr)
        headers = [
            _from_line(info.from_addr),
            _to_line(info.subscriber_name, info.subscriber_email),
            mime.fold_unstructured("Subject", subject_for(info.digest_date, papers)),
            _date_line(now if now.tzinfo else now.replace(tzinfo=dt.UTC)),
            mime.fold_message_id(mid),
            _list_id_line(info.from_addr),
        ]
        unsubscribe = [u for u in (info.unsubscribe_mailto, info.unsubscribe_url) if u]
        if unsubscribe:
            headers.append(mime.fold_uri_list("List-Unsubscribe", unsubscribe))
        if info.unsubscribe_url:
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        headers.append("Auto-Submitted: auto-generated\r\n")
        return mime.alternative(headers, boundary_for(mid), text, html), mid

    def fit(self, info: DigestInfo, ranked: Sequence[RankedPaper], now: dt.datetime) -> Fitted:
        """The message under `max_bytes`: summaries shrink first (lower ranks before the top ones), then
        the lowest-ranked papers are left out, found by bisection."""
        views: list[PaperView] = []
        for chars in SUMMARY_STEPS:
            views = self.views(ranked, chars)
            data, mid = self.build_bytes(info, views, now)
            if len(data) < self.max_bytes:
                return Fitted(data, mid, len(views), chars)
        chars = SUMMARY_STEPS[-1]
        best = Fitted(*self.build_bytes(info, [], now, omitted=len(views)), 0, chars)
        lo, hi = 0, len(views)
        while hi - lo > 1:
            mid_count = (lo + hi) // 2
            data, mid = self.build_bytes(info, views[:mid_count], now, omitted=len(views) - mid_count)
            if len(data) < self.max_bytes:
                lo, best = mid_count, Fitted(data, mid, mid_count, chars)
            else:
                hi = mid_count
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
        """The complete message `send` would hand to the transport, parsed back into an `EmailMessage`."""
        return self.fit(info, ranked, now).message


def _render_pair(
    html: Callable[[PaperView], Markup], text: Callable[[PaperView], str], p: PaperView
) -> tuple[Markup, str]:
    return _ascii_html(html(p)), text(p)


def _ascii_html(value: str) -> Markup:
    """Escaped HTML with non-ASCII as character references: done once per cached piece, so most pages
    come out ASCII and skip that pass over the whole page."""
    return Markup(value if value.isascii() else value.encode("ascii", "xmlcharrefreplace").decode("ascii"))


class _DigestPolicy(EmailPolicy):
    """The SMTP policy, except that URI-list headers keep each URI whole (see `mime.fold_uri_list`)."""

    def fold(self, name: str, value: Any) -> str:
        if name.lower() == "list-unsubscribe":
            return mime.fold_uri_list(name, re.findall(r"<([^<>]*)>", str(value)))
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() == "list-unsubscribe":
            return self.fold(name, value).encode("ascii")
        return bytes(super().fold_binary(name, value))


DIGEST_POLICY = _DigestPolicy(linesep="\r\n")


def boundary_for(message_id: str) -> str:
    """The MIME boundary: derived from the Message-ID, so a message's bytes are the same every time."""
    return "==digest-" + hashlib.sha256(message_id.encode()).hexdigest()[:24]


@lru_cache(maxsize=64)
def _from_line(from_addr: str) -> str:
    name, addr = parseaddr(one_line(from_addr))
    return str(SMTP.header_factory("From", address(name, addr)).fold(policy=SMTP))


def _to_line(name: str, addr: str) -> str:
    return mime.fold_address("To", one_line(name), one_line(addr).replace(" ", ""))


@lru_cache(maxsize=64)
def _date_line(now: dt.datetime) -> str:
    return mime.fold_slow("Date", format_datetime(now))


@lru_cache(maxsize=64)
def _list_id_line(from_addr: str) -> str:
    return mime.fold_unstructured("List-Id", f"Daily papers digest <digest.{_domain(from_addr)}>")


@lru_cache(maxsize=64)
def _sender(from_addr: str) -> str:
    return one_line(parseaddr(from_addr)[1]).replace(" ", "")


def unsubscribe_links(subscriber: str, from_addr: str, url_template: str, secret: str) -> tuple[str | None, str]:
    """(https one-click URL or None, mailto) for the List-Unsubscribe header and the footer."""
    sender = _sender(from_addr)
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
