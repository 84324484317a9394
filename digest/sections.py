"""A digest's sections: papers by people the reader follows, their own picks, and what is trending today.

Pure: the planner hands in the day's ranking and the reader's candidates, this decides what goes where.
Followed authors' papers come first whatever their keywords say; the reader's picks keep only papers whose
relevance reaches `min_relevance` (a quiet day sends nothing rather than filler); the trending section
takes the most upvoted candidates neither list holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from digest.models import Paper
from digest.ranking import Match, RankedPaper

# how squarely a keyword match speaks for a paper, by where it was found (the best field counts)
FIELD_RELEVANCE = {"title": 1.0, "keywords": 0.8, "abstract": 0.6}
OTHER_FIELD = 0.5
PARTIAL = 0.5  # only some of the keyword's words
EXPANDED = 0.8  # found through a synonym or a related term, not the reader's own words
RELATED = 0.5  # none of the keyword's words, a sentence close to it in meaning (the semantic signal)


class Section(StrEnum):
    followed = "followed"
    for_you = "for_you"
    trending = "trending"


@dataclass(frozen=True, slots=True)
class Pick:
    """One paper in a digest, in its section; `because` names the followed author who wrote it."""

    item: RankedPaper
    section: Section
    because: str | None = None
    liked: str | None = None  # the title of the liked paper it is closest to


def relevance(matched: Iterable[Match]) -> float:
    """A paper's relevance on a fixed 0–1 scale, from its best match: 1.0 a keyword in the title, 0.8 in the
    paper's keywords, 0.6 only in the abstract; half for only some of a keyword's words, 0.8× through a
    synonym or related term, half for a sentence only related in meaning. 0 when nothing matched (a reader
    without keywords, a trending paper)."""
    best = 0.0
    for m in matched:
        field = max((FIELD_RELEVANCE.get(f, OTHER_FIELD) for f in m.fields), default=OTHER_FIELD)
        score = field * (PARTIAL if m.partial else 1.0) * (EXPANDED if m.via else 1.0)
        score *= RELATED if m.semantic else 1.0
        best = max(best, score)
    return best


def assemble(
    ranked: Sequence[RankedPaper],
    followed: Sequence[tuple[Paper, str]],
    trending: Iterable[Paper],
    *,
    has_keywords: bool,
    max_papers: int,
    min_relevance: float = 0.0,
    trending_count: int = 0,
    learned: Mapping[int, tuple[float, str | None]] | None = None,
) -> list[Pick]:
    """The digest's papers in order: followed authors' (first, up to `max_papers`), the reader's own picks
    filling the rest, then up to `trending_count` trending papers that are in neither. `followed` pairs a
    candidate with the name that matched; `trending` is the reader's candidates, most upvoted first.

    With `min_relevance` above 0, picks below it are dropped; when nothing is left but trending papers, the
    digest is empty (no filler). A reader without keywords gets the trending list as their picks (as before).
    `learned` (keyed by `id(paper)`) gives a reader's model's probability and the liked paper a pick is closest
    to: the probability counts as relevance too, the title explains the pick."""
    learned = learned or {}
    picks: list[Pick] = []
    taken: set[int] = set()
    by_id = {id(r.paper): r for r in ranked}
    for paper, person in followed[:max_papers]:
        item = by_id.get(id(paper)) or RankedPaper(paper, 0.0)
        picks.append(Pick(item, Section.followed, person, learned.get(id(paper), (0.0, None))[1]))
        taken.add(id(paper))
    room = max_papers - len(picks)
    for item in ranked:
        if room <= 0:
            break
        if id(item.paper) in taken:
            continue
        p, liked = learned.get(id(item.paper), (0.0, None))
        if (has_keywords or learned) and min_relevance > 0 and max(relevance(item.matched), p) < min_relevance:
            continue
        picks.append(Pick(item, Section.for_you, None, liked))
        taken.add(id(item.paper))
        room -= 1
    if not picks or not (has_keywords or learned) or trending_count <= 0:
        return picks
    extra = 0
    for paper in trending:
        if extra >= trending_count:
            break
        if id(paper) in taken or paper.upvotes <= 0:
            continue
        picks.append(Pick(RankedPaper(paper, 0.0), Section.trending))
        taken.add(id(paper))
        extra += 1
    return picks


def sections_of(picks: Sequence[Pick]) -> Mapping[Section, list[Pick]]:
    """Picks grouped by section, in digest order."""
    out: dict[Section, list[Pick]] = {}
    for pick in picks:
        out.setdefault(pick.section, []).append(pick)
    return out
