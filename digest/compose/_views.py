"""What a digest shows: plain view models of papers and of the digest, cleaned, clipped and linked.

Everything a template sees is built here from a paper and its ranking, so templates hold layout only:
text is single-line where it must be, links are http(s) only, summaries are cut on sentence boundaries.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from digest.models import Paper
from digest.ranking import Match, RankedPaper
from digest.sections import Pick, Section

TOP_PAPERS = 5
SUMMARY_STEPS: tuple[tuple[int, int], ...] = ((420, 420), (420, 160), (420, 0), (280, 0), (160, 0), (0, 0))
TEXT_WIDTH = 78
FIELD_LABELS = {"title": "title", "keywords": "keywords", "abstract": "abstract"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def one_line(text: str) -> str:
    """A header-safe single line: control and bidi-override characters (CR, LF, NUL, RLO, …) become spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


def clip(text: str, max_chars: int) -> str:
    """At most `max_chars` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def link_for_email(url: str | None) -> str | None:
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


@dataclass(frozen=True, slots=True)
class MatchView:
    """One matched interest, where in the paper it was found, and whether only some of its words were
    (`partial`: a reader takes "in the title" literally, so a partial match says "partly") or none of them, a
    sentence there being close to it in meaning (`related`: the semantic signal, and the email says so)."""

    term: str
    fields: tuple[str, ...]
    partial: bool = False
    related: bool = False

    @property
    def where(self) -> str:
        names = [FIELD_LABELS.get(f, f) for f in self.fields]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    @property
    def placed(self) -> str:
        """`in the title`, or `partly in the title` when only some of the interest's words matched."""
        return f"{'partly ' if self.partial else ''}in the {self.where}"

    @property
    def quoted(self) -> str:
        if self.related:
            return f'related in meaning to "{self.term}" (the {self.where})'
        return f'"{self.term}" {self.placed}'


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
    more_url: str | None = None
    less_url: str | None = None
    section: str = Section.for_you.value
    because: str | None = None  # the followed author who wrote it
    liked: str | None = None  # the liked paper it is closest to

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
    view_url: str | None = None
    prefs_url: str | None = None
    feed_url: str | None = None
    notices: tuple[str, ...] = ()  # one line each: what this digest lacks and why (a source that failed)
    # paper id → ("more like this" URL, "less like this" URL), asked only for the papers this reader is shown
    feedback: Callable[[int], tuple[str, str]] | None = None
    sid: str | None = None  # the reader's pseudonym in signed links (made with them, reused for the feedback ones)


def hf_url(paper: object) -> str | None:
    """The paper's Hugging Face page when its link is one."""
    url = link_for_email(getattr(paper, "url", None))
    if url and (urlsplit(url).hostname or "").endswith("huggingface.co") and "/papers/" in url:
        return url
    return None


def arxiv_url(paper: object) -> str | None:
    arxiv_id = getattr(paper, "arxiv_id", None)
    return f"https://arxiv.org/abs/{quote(one_line(arxiv_id), safe='/.')}" if arxiv_id else None


def paper_url(paper: object) -> str | None:
    """The paper's page: Hugging Face when known, else arXiv abs, else the source's link."""
    return hf_url(paper) or arxiv_url(paper) or link_for_email(getattr(paper, "url", None))


def _links(paper: Any, main: str | None) -> tuple[LinkView, ...]:
    candidates = [
        ("arXiv", arxiv_url(paper)),
        ("Code", link_for_email(paper.github_repo)),
        ("Project page", link_for_email(paper.project_page)),
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
        code_url=link_for_email(p.github_repo),
        project_url=link_for_email(p.project_page),
        links=_links(p, url),
    )


@lru_cache(maxsize=65536)
def match_views(matched: tuple[Match, ...]) -> tuple[tuple[str, ...], tuple[MatchView, ...]]:
    """The matched terms as shown (single-line) and where each was found; shared by many digests."""
    return (
        tuple(one_line(m.term) for m in matched),
        tuple(MatchView(one_line(m.term), tuple(m.fields), m.partial, m.semantic) for m in matched),
    )


def paper_view(
    rank: int,
    item: RankedPaper | Pick,
    facts: PaperFacts,
    feedback: Callable[[int], tuple[str, str]] | None = None,
) -> PaperView:
    """One paper as shown to one reader: the shared facts, its section, what matched, their feedback links."""
    pick = item if isinstance(item, Pick) else Pick(item, Section.for_you)
    item = pick.item
    matched, why = match_views(tuple(item.matched))
    more = less = None
    if feedback is not None and item.paper.id is not None:
        more, less = feedback(item.paper.id)
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
        more_url=more,
        less_url=less,
        section=pick.section.value,
        because=pick.because,
        liked=pick.liked,
    )


def summary_limit(rank: int, summary_chars: tuple[int, int]) -> int:
    return summary_chars[0] if rank <= TOP_PAPERS else summary_chars[1]


def paper_views(
    ranked: Sequence[RankedPaper | Pick], summary_chars: tuple[int, int] = SUMMARY_STEPS[0]
) -> list[PaperView]:
    """Ranked papers → what the templates show; summaries of at most `summary_chars` = (top papers, the rest)."""
    return [
        paper_view(rank, item, paper_facts(paper_of(item), summary_limit(rank, summary_chars)))
        for rank, item in enumerate(ranked, start=1)
    ]


def paper_of(item: RankedPaper | Pick) -> Paper:
    return item.item.paper if isinstance(item, Pick) else item.paper


_TRENDING = Section.trending.value
SECTION_TITLES = {
    Section.followed.value: ("By people you follow", ""),
    Section.for_you.value: ("For you", ""),
    Section.trending.value: ("Trending today", "The day's most upvoted papers beyond your interests."),
}


def personal(papers: Sequence[PaperView]) -> list[PaperView]:
    """The papers picked for the reader (followed authors and interests), not the trending extras."""
    return [p for p in papers if p.section != _TRENDING]


@lru_cache(maxsize=64)
def day_label(digest_date: dt.date) -> str:
    """`Mon 23 Nov`: the short date of subjects."""
    return f"{digest_date:%a} {digest_date.day} {digest_date:%b}"


@lru_cache(maxsize=64)
def long_date(digest_date: dt.date) -> str:
    """`Monday 23 November 2026`: the date heading the digest."""
    return f"{digest_date:%A} {digest_date.day} {digest_date:%B %Y}"


def subject_for(digest_date: dt.date, papers: Sequence[PaperView]) -> str:
    """`Your papers for Mon 23 Nov: <top title> +9 more` (the reader's own papers), always one line."""
    day = day_label(digest_date)
    papers = personal(papers) or papers
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
