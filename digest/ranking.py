"""Rank papers for a subscriber's interests: normalise, match keywords as phrases, score, explain.

`PaperIndex` is built once per run over the candidate pool; `rank` is called once per subscriber and
touches only the papers that contain one of their terms (an inverted index of stemmed tokens).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import Stemmer

from digest.identity import strip_tex
from digest.models import Paper

FIELD_WEIGHTS = {"title": 3.0, "keywords": 2.0, "abstract": 1.0}
TREND_WEIGHT = 0.15
_SPLIT = re.compile(r"[^0-9a-z]+")
_WEIGHT = re.compile(r"^(.*?)\^\s*([0-9]*\.?[0-9]+)\s*$")
_stemmer = Stemmer.Stemmer("english")


class KeywordError(ValueError):
    """A keyword that cannot be used (empty, or a bad weight)."""


@lru_cache(maxsize=65536)
def _stem(token: str) -> str:
    return str(_stemmer.stemWord(token))


def normalize(text: str) -> str:
    """NFKC, TeX dropped, casefolded, hyphen/slash/underscore and punctuation as space."""
    text = unicodedata.normalize("NFKC", text)
    text = strip_tex(text)
    text = _ACRONYM_PLURAL.sub(r"\1", text)
    return " ".join(_SPLIT.split(text.casefold())).strip()


_ACRONYM_PLURAL = re.compile(r"\b([A-Z][A-Z0-9]+)s\b")


def tokens(text: str) -> list[str]:
    """Normalised, stemmed tokens of a text, in order."""
    return [_stem(t) for t in normalize(text).split() if t]


@dataclass(frozen=True, slots=True)
class Term:
    """One keyword as the subscriber wrote it, with its weight and every phrase that counts as it."""

    label: str
    weight: float
    phrases: tuple[tuple[str, ...], ...]


def parse_keyword(raw: str) -> tuple[str, float]:
    """`"mamba^2"` → ("mamba", 2.0); a plain keyword weighs 1."""
    text = raw.strip()
    weight = 1.0
    match = _WEIGHT.match(text)
    if match:
        text, weight = match.group(1).strip(), float(match.group(2))
    if not text or not tokens(text):
        raise KeywordError(f"keyword {raw!r} has no words")
    if not 0 < weight <= 100:
        raise KeywordError(f"keyword {raw!r}: weight must be above 0 and at most 100")
    return text, weight


def compile_terms(keywords: Iterable[str], synonyms: bool = True) -> tuple[Term, ...]:
    """Keywords → terms, each with its synonym phrases when `synonyms` is on."""
    terms = []
    for raw in keywords:
        label, weight = parse_keyword(raw)
        phrases = {tuple(tokens(label))}
        if synonyms:
            phrases.update(tuple(tokens(s)) for s in synonyms_for(label))
        terms.append(Term(label, weight, tuple(sorted(phrases))))
    return tuple(terms)


SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("large language model", "llm"),
    ("state space model", "ssm"),
    ("mixture of experts", "moe"),
    ("reinforcement learning", "rl"),
    ("retrieval augmented generation", "rag"),
    ("vision language model", "vlm"),
    ("graph neural network", "gnn"),
    ("kv cache", "key value cache"),
    ("differential privacy", "differentially private"),
)


def synonyms_for(label: str) -> list[str]:
    """Other spellings of a keyword from the built-in table (matched on normalised, stemmed form)."""
    key = tuple(tokens(label))
    for group in SYNONYM_GROUPS:
        if any(tuple(tokens(g)) == key for g in group):
            return [g for g in group if tuple(tokens(g)) != key]
    return []


@dataclass(frozen=True, slots=True)
class Interests:
    """What one subscriber asked for."""

    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_papers: int = 10
    synonyms: bool = True


@dataclass(frozen=True, slots=True)
class Match:
    """A term that matched a paper, and in which fields."""

    term: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RankedPaper:
    paper: Paper
    score: float
    matched: tuple[Match, ...] = ()


@dataclass(slots=True)
class _Doc:
    paper: Paper
    fields: dict[str, list[str]] = field(default_factory=dict)


class PaperIndex:
    """Positional inverted index over a pool of papers; rank many subscribers against it."""

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.docs: list[_Doc] = []
        self.postings: dict[str, set[int]] = {}
        for paper in papers:
            doc = _Doc(
                paper,
                {
                    "title": tokens(paper.title),
                    "keywords": [t for k in paper.keywords for t in (*tokens(k), "|")],
                    "abstract": tokens(paper.abstract),
                },
            )
            i = len(self.docs)
            self.docs.append(doc)
            for toks in doc.fields.values():
                for tok in toks:
                    self.postings.setdefault(tok, set()).add(i)
        max_up = max((d.paper.upvotes for d in self.docs), default=0)
        self._trend_norm = math.log1p(max_up) or 1.0
        self._phrase_cache: dict[tuple[str, ...], dict[int, tuple[str, ...]]] = {}

    def __len__(self) -> int:
        return len(self.docs)

    def _phrase_hits(self, phrase: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
        """Docs containing the phrase → the fields it occurs in (cached per run)."""
        cached = self._phrase_cache.get(phrase)
        if cached is not None:
            return cached
        sets = [self.postings.get(tok, set()) for tok in phrase]
        hits: dict[int, tuple[str, ...]] = {}
        if sets and all(sets):
            for i in set.intersection(*sets):
                found = tuple(name for name, toks in self.docs[i].fields.items() if _contains(toks, phrase))
                if found:
                    hits[i] = found
        self._phrase_cache[phrase] = hits
        return hits

    def _idf(self, hits: int) -> float:
        n = len(self.docs)
        return math.log(1 + (n - hits + 0.5) / (hits + 0.5))

    def trend(self, paper: Paper) -> float:
        return math.log1p(max(paper.upvotes, 0)) / self._trend_norm

    def rank(
        self, interests: Interests, eligible: Callable[[Paper], bool] | None = None
    ) -> list[RankedPaper]:
        """Top papers for these interests, best first, each with the terms that matched."""
        terms = compile_terms(interests.keywords, interests.synonyms)
        excluded: set[int] = set()
        for term in compile_terms(interests.exclude, interests.synonyms):
            for phrase in term.phrases:
                excluded.update(self._phrase_hits(phrase))
        scores: dict[int, float] = {}
        matched: dict[int, list[Match]] = {}
        for term in terms:
            per_doc: dict[int, set[str]] = {}
            for phrase in term.phrases:
                for i, fields in self._phrase_hits(phrase).items():
                    per_doc.setdefault(i, set()).update(fields)
            idf = self._idf(len(per_doc))
            for i, fields in per_doc.items():
                if i in excluded:
                    continue
                weight = sum(FIELD_WEIGHTS[f] for f in fields)
                scores[i] = scores.get(i, 0.0) + term.weight * idf * weight
                matched.setdefault(i, []).append(
                    Match(term.label, tuple(f for f in FIELD_WEIGHTS if f in fields))
                )
        if not terms:
            pool = [i for i in range(len(self.docs)) if i not in excluded]
            ranked = [RankedPaper(self.docs[i].paper, self.trend(self.docs[i].paper)) for i in pool]
        else:
            top = max(scores.values(), default=0.0) or 1.0
            ranked = [
                RankedPaper(
                    self.docs[i].paper,
                    s / top + TREND_WEIGHT * self.trend(self.docs[i].paper),
                    tuple(matched[i]),
                )
                for i, s in scores.items()
            ]
        if eligible is not None:
            ranked = [r for r in ranked if eligible(r.paper)]
        ranked.sort(key=lambda r: (-round(r.score, 9), -r.paper.upvotes, r.paper.key))
        return ranked[: interests.max_papers]


def _contains(haystack: list[str], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    if n == 1:
        return needle[0] in haystack
    first = needle[0]
    for start, tok in enumerate(haystack):
        if tok == first and tuple(haystack[start : start + n]) == needle:
            return True
    return False


def rank_papers(papers: Sequence[Paper], interests: Interests) -> list[RankedPaper]:
    """Convenience for one subscriber: build an index and rank."""
    return PaperIndex(papers).rank(interests)
