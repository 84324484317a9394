"""Render a subscriber's ranked papers into one multipart/alternative email (text + HTML).

Templates are loaded once per `Composer`; everything a template sees is plain data built here, so
the templates hold layout only. Header values are stripped of control characters before use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest.ranking import RankedPaper

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def templates_dir() -> Path:
    """`digest/templates` inside an installed wheel, else the repository's top-level `templates/`."""
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def one_line(text: str) -> str:
    """A header-safe single line: control characters (CR, LF, NUL, …) become spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


def safe_url(url: str | None) -> str | None:
    """Only http(s) links reach an email."""
    if url and url.strip().lower().startswith(("http://", "https://")) and not _CONTROL.search(url):
        return url.strip()
    return None


def excerpt(text: str, max_chars: int = 420, max_sentences: int = 3) -> str:
    """The first sentences of a text, cut on a sentence boundary, never longer than `max_chars` (+ …)."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    out = ""
    for sentence in _SENTENCE_END.split(text)[:max_sentences]:
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > max_chars:
            break
        out = candidate
    if not out:
        cut = text[:max_chars].rsplit(" ", 1)[0]
        out = cut.rstrip(",;:") + "…"
    return out


def short_authors(authors: list[str], keep: int = 3) -> str:
    if len(authors) <= keep:
        return ", ".join(authors)
    return ", ".join(authors[:keep]) + " et al."


def message_id(subscriber: str, digest_date: dt.date, from_addr: str) -> str:
    """Deterministic per subscriber, date and sender domain, so a resend carries the same Message-ID."""
    domain = parseaddr(from_addr)[1].rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(subscriber.strip().lower().encode()).hexdigest()[:16]
    return f"<digest-{digest_date.isoformat()}.{digest}@{domain}>"


def unsubscribe_token(subscriber: str, secret: str) -> str:
    return hmac.new(secret.encode(), subscriber.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]


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


def paper_url(paper: object) -> str | None:
    """The paper's page: Hugging Face when known, else arXiv abs, else the source's link."""
    url = safe_url(getattr(paper, "url", None))
    arxiv_id = getattr(paper, "arxiv_id", None)
    if url and "/papers/" in url:
        return url
    if arxiv_id:
        return f"https://arxiv.org/abs/{arxiv_id}"
    return url


def paper_views(ranked: list[RankedPaper]) -> list[PaperView]:
    views = []
    for rank, item in enumerate(ranked, start=1):
        p = item.paper
        views.append(
            PaperView(
                rank=rank,
                title=one_line(p.title),
                url=paper_url(p),
                authors=short_authors(list(p.authors)),
                upvotes=p.upvotes,
                comments=p.comments,
                matched=[m.term for m in item.matched],
                summary=excerpt(p.ai_summary or p.abstract),
                code_url=safe_url(p.github_repo),
                project_url=safe_url(p.project_page),
            )
        )
    return views


def subject_for(digest_date: dt.date, papers: list[PaperView]) -> str:
    day = digest_date.strftime("%a %d %b")
    if not papers:
        return f"Your papers for {day}: nothing matched today"
    top = papers[0].title
    if len(top) > 90:
        top = top[:89].rstrip() + "…"
    more = f" +{len(papers) - 1} more" if len(papers) > 1 else ""
    return one_line(f"Your papers for {day}: {top}{more}")


class Composer:
    """Loads the templates once and turns ranked papers into `EmailMessage`s."""

    def __init__(self, directory: Path | None = None) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(directory or templates_dir())),
            autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.html = self.env.get_template("digest.html.j2")
        self.text = self.env.get_template("digest.txt.j2")

    def render(self, info: DigestInfo, papers: list[PaperView]) -> tuple[str, str]:
        """(text, html) bodies for one digest."""
        context = {"info": info, "papers": papers, "date_label": info.digest_date.strftime("%A %d %B %Y")}
        return self.text.render(context), self.html.render(context)

    def compose(self, info: DigestInfo, ranked: list[RankedPaper], now: dt.datetime) -> EmailMessage:
        """The complete message `send` would hand to the transport."""
        papers = paper_views(ranked)
        text, html = self.render(info, papers)
        msg = EmailMessage(policy=SMTP)
        msg["From"] = one_line(info.from_addr)
        name = one_line(info.subscriber_name)
        msg["To"] = formataddr((name, info.subscriber_email)) if name else info.subscriber_email
        msg["Subject"] = subject_for(info.digest_date, papers)
        msg["Date"] = format_datetime(now if now.tzinfo else now.replace(tzinfo=dt.UTC))
        msg["Message-ID"] = message_id(info.subscriber_email, info.digest_date, info.from_addr)
        domain = parseaddr(info.from_addr)[1].rpartition("@")[2] or "localhost"
        msg["List-Id"] = f"Daily papers digest <digest.{domain}>"
        unsubscribe = []
        if info.unsubscribe_mailto:
            unsubscribe.append(f"<{info.unsubscribe_mailto}>")
        if info.unsubscribe_url:
            unsubscribe.append(f"<{info.unsubscribe_url}>")
        if unsubscribe:
            msg["List-Unsubscribe"] = ", ".join(unsubscribe)
        if info.unsubscribe_url:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        msg.set_boundary("==digest-" + hashlib.sha256(msg["Message-ID"].encode()).hexdigest()[:24])
        return msg


def unsubscribe_links(
    subscriber: str, from_addr: str, url_template: str, secret: str
) -> tuple[str | None, str]:
    """(https one-click URL or None, mailto) for the List-Unsubscribe header and the footer."""
    address = parseaddr(from_addr)[1]
    mailto = f"mailto:{address}?subject={quote('unsubscribe ' + subscriber)}"
    if not url_template:
        return None, mailto
    token = unsubscribe_token(subscriber, secret)
    url = url_template.replace("{email}", quote(subscriber, safe="")).replace("{token}", token)
    return url, mailto


__all__ = ["Composer", "DigestInfo", "PaperView", "message_id", "one_line", "paper_views", "templates_dir"]
