"""Rendering: templates (loaded and CSS-inlined once) turn view models into message bytes under a size cap.

Each paper is rendered once (`paper.*.j2`) and the pieces are reused by every digest that shows it, so the
cost per digest is the page around them and the MIME bytes, built directly (`digest.mime`). The whole
message is kept under `MAX_BYTES` by shortening summaries first and leaving out the lowest-ranked papers
only when that is not enough.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any, Literal

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape
from markupsafe import Markup, escape

from digest import mime
from digest.compose._headers import boundary_for, header_lines, headers_for
from digest.compose._views import (
    SECTION_TITLES,
    SUMMARY_STEPS,
    DigestInfo,
    PaperView,
    clip,
    long_date,
    paper_facts,
    paper_of,
    paper_view,
    personal,
    subject_for,
    summary_limit,
    wrap,
)
from digest.inliner import InliningLoader, NotInlinable, inline_rendered
from digest.logs import event
from digest.memo import Memo
from digest.ranking import RankedPaper
from digest.sections import Pick, Section

log = logging.getLogger("digest.compose")

MAX_BYTES = 100_000
HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
PAPER_HTML = "paper.html.j2"
PAPER_TEXT = "paper.txt.j2"
LAYOUT_HTML = "base.html.j2"
CACHE_SIZE = 20_000
_PREHEADER_PAD = Markup(("\n" + "&#847;&zwnj;&nbsp;" * 10) * 4)


def templates_dir() -> Path:
    """`digest/templates` inside an installed wheel, else the repository's top-level `templates/`."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "templates"
    if packaged.is_dir():
        return packaged
    return package.parent / "templates"


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
        self.actions = self._actions()
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
        # the email's templates only: web pages (web/) have an environment of their own
        for name in env.list_templates(filter_func=lambda n: n.endswith(".j2") and "/" not in n):
            env.get_template(name)
        return env

    def views(
        self,
        ranked: Sequence[RankedPaper | Pick],
        summary_chars: tuple[int, int] = SUMMARY_STEPS[0],
        feedback: Callable[[int], tuple[str, str]] | None = None,
    ) -> list[PaperView]:
        """`paper_views`, with each paper's cleaned facts computed once per summary length.

        Facts are keyed by the paper object itself (kept alive in the cache, so its id cannot be reused):
        papers are treated as unchanging while a Composer holds them.
        """
        views = []
        facts_memo = self.facts
        for rank, item in enumerate(ranked, start=1):
            extra = isinstance(item, Pick) and item.section is Section.trending
            limit = summary_chars[1] if extra else summary_limit(rank, summary_chars)  # extras are kept short
            paper = paper_of(item)
            key = (id(paper), limit)
            held = facts_memo.get(key)
            if held is None or held[0] is not paper:
                held = facts_memo.put(key, (paper, paper_facts(paper, limit)))
            views.append(paper_view(rank, item, held[1], feedback))
        return views

    def blocks(self, papers: Sequence[PaperView]) -> tuple[list[tuple[Markup, Markup]], list[tuple[str, str]]]:
        """(html, text) pieces of each paper: `head` (rank, title, link) and its body, assembled from three
        cached parts, so only the reader's own "why" line and feedback links are rendered per digest."""
        html: list[tuple[Markup, Markup]] = []
        text: list[tuple[str, str]] = []
        ph, pt = self.paper_html, self.paper_text
        heads, bodies = self.heads, self.bodies
        for p in papers:
            key: Hashable = (p.rank, p.title, p.url)
            head = heads.get(key) or heads.put(key, _render_pair(ph.head, pt.head, p))
            key = ("top", p.authors, p.upvotes, p.comments)
            top = bodies.get(key) or bodies.put(key, _render_pair(ph.top, pt.top, p))
            key = ("why", p.why, p.because, p.liked)
            why = bodies.get(key) or bodies.put(key, _render_pair(ph.why, pt.why, p))
            key = ("rest", p.url, p.summary, p.links)
            rest = bodies.get(key) or bodies.put(key, _render_pair(ph.rest, pt.rest, p))
            act = self._act(p.more_url, p.less_url) if p.more_url and p.less_url else _NO_ACTIONS
            html.append((head[0], Markup("".join((top[0], why[0], rest[0], act[0])))))
            text.append((head[1], "".join((top[1], why[1], rest[1], act[1]))))
        return html, text

    def _actions(self) -> tuple[str, str] | None:
        """The feedback links' (html, text), rendered once with stand-in URLs that each digest fills in:
        the template stays the source of truth, and a digest pays two `str.replace`s a paper for it."""
        if self.paper_html is None or not hasattr(self.paper_html, "act") or not hasattr(self.paper_text, "act"):
            return None
        stand_in = PaperView(0, "", None, "", 0, 0, (), "", None, None, more_url=_MORE, less_url=_LESS)
        html, text = _render_pair(self.paper_html.act, self.paper_text.act, stand_in)
        return str(html), text

    def _act(self, more: str, less: str) -> tuple[str, str]:
        if self.actions is None:
            return _NO_ACTIONS
        html, text = self.actions
        return (
            html.replace(_MORE, _escaped(more)).replace(_LESS, _escaped(less)),
            text.replace(_MORE, more).replace(_LESS, less),
        )

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
        context["picked"] = len(personal(papers))
        text = self.text.render(context, paper_blocks=text_blocks, sections=_sections(papers, text_blocks))
        html = self.html.render(context, paper_blocks=html_blocks, sections=_sections(papers, html_blocks))
        if self.inline_mode == "render":
            html = inline_rendered(html)
        if not html.isascii():
            html = html.encode("ascii", "xmlcharrefreplace").decode("ascii")
        return text, html

    def build_bytes(
        self, info: DigestInfo, papers: list[PaperView], now: dt.datetime, omitted: int = 0
    ) -> tuple[bytes, str]:
        """(message bytes, Message-ID) for exactly these paper views."""
        text, html = self.render(info, papers, omitted)
        headers = headers_for(info, papers, now)
        data = mime.alternative(header_lines(headers), boundary_for(headers.message_id), text, html)
        return data, headers.message_id

    def fit(self, info: DigestInfo, ranked: Sequence[RankedPaper | Pick], now: dt.datetime) -> Fitted:
        """The message under `max_bytes`: summaries shrink first (lower ranks before the top ones), then
        the last papers are left out (trending first, then the lowest-ranked), found by bisection."""
        views: list[PaperView] = []
        for chars in SUMMARY_STEPS:
            views = self.views(ranked, chars, info.feedback)
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

    def compose(self, info: DigestInfo, ranked: Sequence[RankedPaper | Pick], now: dt.datetime) -> EmailMessage:
        """The complete message `send` would hand to the transport, parsed back into an `EmailMessage`."""
        return self.fit(info, ranked, now).message


_NO_ACTIONS = ("", "")


def _sections(papers: Sequence[PaperView], blocks: Sequence[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """The blocks grouped by section, in order, each with its heading and note (the template decides
    whether a lone section is worth a heading)."""
    out: list[dict[str, Any]] = []
    if not blocks:  # templates without paper pieces lay papers out themselves
        return out
    for view, block in zip(papers, blocks, strict=True):
        if not out or out[-1]["key"] != view.section:
            title, note = SECTION_TITLES.get(view.section, (view.section, ""))
            out.append({"key": view.section, "title": title, "note": note, "blocks": []})
        out[-1]["blocks"].append(block)
    return out


_MORE, _LESS = "digest-more-url-stand-in", "digest-less-url-stand-in"


def _render_pair(
    html: Callable[[PaperView], Markup], text: Callable[[PaperView], str], p: PaperView
) -> tuple[Markup, str]:
    return _ascii_html(html(p)), text(p)


_HTML_SPECIAL = re.compile("[&<>\"']")


def _escaped(value: str) -> str:
    """`escape(value)`, as cheaply as a search when there is nothing to escape (signed links never have)."""
    return value if _HTML_SPECIAL.search(value) is None else str(escape(value))


def _ascii_html(value: str) -> Markup:
    """Escaped HTML with non-ASCII as character references: done once per cached piece, so most pages
    come out ASCII and skip that pass over the whole page."""
    return Markup(value if value.isascii() else value.encode("ascii", "xmlcharrefreplace").decode("ascii"))
