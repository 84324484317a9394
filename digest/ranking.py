"""Rank papers for a subscriber's interests: normalise, match keywords as phrases (or in part), score, explain.

`PaperIndex` is built once per run over the candidate pool. Each distinct keyword is compiled once and its
matches are scored once per index (cached), so `rank`, called once per subscriber, only merges the cached
hits of that subscriber's keywords: its cost grows with their matches, not with the pool.

Relevance of a paper = Σ over keywords of weight × idf(keyword) × Σ over fields of field weight × match
quality × saturated mention count. Quality is 1 for the phrase (or a synonym), less for all its words in
another order, less again for some of its words (scaled by their share of the phrase's idf); a keyword
below `min_match` does not count. Relevance is divided by the subscriber's best, then trending (log
upvotes) and recency are added with small weights, so relevance comes first.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from digest.models import Paper
from digest.synonyms import SYNONYM_GROUPS, narrower_for, synonyms_for
from digest.text import normalize, spelling_variants, tokens

__all__ = [
    "FIELDS",
    "SYNONYM_GROUPS",
    "DocFreq",
    "Interests",
    "KeywordError",
    "Match",
    "PaperIndex",
    "RankedPaper",
    "RankingParams",
    "Term",
    "compile_terms",
    "normalize",
    "parse_keyword",
    "rank_papers",
    "synonyms_for",
    "tokens",
]

FIELDS = ("title", "keywords", "abstract")
SEPARATOR = "|"
_WEIGHT = re.compile(r"^(.*?)\^\s*([0-9]*\.?[0-9]+)\s*$")


class KeywordError(ValueError):
    """A keyword that cannot be used (empty, or a bad weight)."""


@dataclass(frozen=True, slots=True)
class RankingParams:
    """Every knob of the ranking, with the defaults `[ranking]` in the config documents."""

    title_weight: float = 3.0
    keywords_weight: float = 2.0
    abstract_weight: float = 1.0
    unordered_match: float = 0.6
    partial_match: float = 0.5
    narrower_match: float = 0.7
    min_match: float = 0.2
    tf_saturation: float = 1.2
    length_norm: float = 0.75
    trend_weight: float = 0.15
    recency_weight: float = 0.05
    recency_half_life_hours: float = 72.0

    def field_weight(self, name: str) -> float:
        return {"title": self.title_weight, "keywords": self.keywords_weight, "abstract": self.abstract_weight}[name]


# ---------------------------------------------------------------- keywords


@dataclass(frozen=True, slots=True)
class Variant:
    """One token sequence that counts as a keyword: `kind` is "same" (it, a synonym, a spelling) or "narrower"."""

    phrase: tuple[str, ...]
    text: str
    kind: str
    partial: bool


@dataclass(frozen=True, slots=True)
class Term:
    """One keyword as the subscriber wrote it, with its weight and every token sequence that counts as it."""

    label: str
    weight: float
    variants: tuple[Variant, ...]

    @property
    def phrases(self) -> tuple[tuple[str, ...], ...]:
        return tuple(v.phrase for v in self.variants)


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


@lru_cache(maxsize=65536)
def compile_term(raw: str, synonyms: bool = True) -> Term:
    """One keyword → its term (cached: every subscriber writing the same keyword shares it)."""
    label, weight = parse_keyword(raw)
    variants: dict[tuple[str, ...], Variant] = {}

    def add(text: str, kind: str, own: bool) -> None:
        main = tuple(tokens(text))
        for phrase in sorted(spelling_variants(text)):
            if phrase not in variants:
                variants[phrase] = Variant(phrase, text, kind, partial=own and phrase == main and len(phrase) > 1)

    add(label, "same", own=True)
    if synonyms:
        for other in synonyms_for(label):
            add(other, "same", own=False)
        for other in narrower_for(label):
            add(other, "narrower", own=False)
    return Term(label, weight, tuple(variants.values()))


def compile_terms(keywords: Iterable[str], synonyms: bool = True) -> tuple[Term, ...]:
    """Keywords → terms, each with its synonym phrases when `synonyms` is on."""
    return tuple(compile_term(k, synonyms) for k in keywords)


@dataclass(frozen=True, slots=True)
class Interests:
    """What one subscriber asked for."""

    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_papers: int = 10
    synonyms: bool = True


@dataclass(frozen=True, slots=True)
class Match:
    """A keyword that matched a paper, in which fields, through which table entry (`via`), and whether only in part."""

    term: str
    fields: tuple[str, ...]
    via: str | None = None
    partial: bool = False


@dataclass(frozen=True, slots=True)
class RankedPaper:
    paper: Paper
    score: float
    matched: tuple[Match, ...] = ()


# ---------------------------------------------------------------- document frequencies


def paper_fields(paper: Paper) -> dict[str, list[str]]:
    """A paper's token streams per field; ai_keywords are separated so a phrase never spans two."""
    return {
        "title": tokens(paper.title),
        "keywords": [t for k in paper.keywords for t in (*tokens(k), SEPARATOR)],
        "abstract": tokens(paper.abstract),
    }


class DocFreq:
    """Token and phrase document frequencies over a pool of papers (e.g. a rolling window of stored papers)."""

    def __init__(self, streams: Iterable[Sequence[str]]) -> None:
        self.streams: list[tuple[str, ...]] = []
        self.postings: dict[str, set[int]] = {}
        for stream in streams:
            i = len(self.streams)
            self.streams.append(tuple(stream))
            for tok in set(stream):
                if tok != SEPARATOR:
                    self.postings.setdefault(tok, set()).add(i)
        self._phrase_docs: dict[tuple[str, ...], frozenset[int]] = {}

    @classmethod
    def of_papers(cls, papers: Iterable[Paper]) -> DocFreq:
        """Frequencies over these papers' title, ai_keywords and abstract."""
        return cls(_stream(paper_fields(p)) for p in papers)

    @property
    def n(self) -> int:
        return len(self.streams)

    def docs_with(self, phrase: tuple[str, ...]) -> frozenset[int]:
        """Documents containing the phrase (tokens adjacent, in order), cached."""
        cached = self._phrase_docs.get(phrase)
        if cached is not None:
            return cached
        if len(phrase) == 1:
            found = frozenset(self.postings.get(phrase[0], ()))
        else:
            sets = sorted((self.postings.get(tok, set()) for tok in phrase), key=len)
            found = frozenset(i for i in sets[0].intersection(*sets[1:]) if _count(self.streams[i], phrase))
        self._phrase_docs[phrase] = found
        return found

    def idf(self, df: int) -> float:
        """BM25's idf: always positive, highest for the rarest."""
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def token_idf(self, token: str) -> float:
        return self.idf(len(self.postings.get(token, ())))


def _stream(fields: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for name in FIELDS:
        out.extend(fields[name])
        out.append(SEPARATOR)
    return out


def _count(haystack: Sequence[str], needle: tuple[str, ...]) -> int:
    """Occurrences of a token sequence in a token stream."""
    n = len(needle)
    if n == 1:
        return haystack.count(needle[0])
    first, count, start = needle[0], 0, 0
    limit = len(haystack) - n
    while start <= limit:
        try:
            start = haystack.index(first, start, limit + 1)
        except ValueError:
            break
        if tuple(haystack[start : start + n]) == needle:
            count += 1
            start += n
        else:
            start += 1
    return count


# ---------------------------------------------------------------- the index


@dataclass(slots=True)
class _Doc:
    paper: Paper
    fields: dict[str, list[str]]
    sets: dict[str, frozenset[str]]
    bonus: float


@dataclass(frozen=True, slots=True)
class _Hit:
    """How one term matched one paper: its unweighted score and the explanation."""

    score: float
    fields: tuple[str, ...]
    via: str | None
    partial: bool


class PaperIndex:
    """Inverted index over a pool of papers; rank many subscribers against it, sharing work between them."""

    def __init__(
        self, papers: Sequence[Paper], params: RankingParams | None = None, idf: DocFreq | None = None
    ) -> None:
        self.params = params or RankingParams()
        self.docs: list[_Doc] = []
        streams = []
        for paper in papers:
            fields = paper_fields(paper)
            sets = {name: frozenset(toks) for name, toks in fields.items()}
            self.docs.append(_Doc(paper, fields, sets, 0.0))
            streams.append(_stream(fields))
        self.own = DocFreq(streams)
        self._avg_len = {
            name: (sum(len(d.fields[name]) for d in self.docs) / len(self.docs) if self.docs else 0.0) or 1.0
            for name in FIELDS
        }
        self.idf = idf or self.own
        self._set_bonus()
        self._term_hits: dict[tuple[Variant, ...], dict[int, _Hit]] = {}
        self._excluded: dict[tuple[Variant, ...], frozenset[int]] = {}
        self._trending: list[int] | None = None

    def __len__(self) -> int:
        return len(self.docs)

    def _set_bonus(self) -> None:
        """Each paper's secondary signal: trend_weight × log-scaled upvotes + recency_weight × freshness."""
        p = self.params
        max_up = max((d.paper.upvotes for d in self.docs), default=0)
        trend_norm = math.log1p(max(max_up, 0)) or 1.0
        newest = max((d.paper.first_seen_at for d in self.docs), default=None)
        for doc in self.docs:
            trend = math.log1p(max(doc.paper.upvotes, 0)) / trend_norm
            recency = 0.0
            if newest is not None and p.recency_half_life_hours > 0:
                hours = (newest - doc.paper.first_seen_at).total_seconds() / 3600
                recency = 0.5 ** (hours / p.recency_half_life_hours)
            doc.bonus = p.trend_weight * trend + p.recency_weight * recency

    def trend(self, paper: Paper) -> float:
        max_up = max((d.paper.upvotes for d in self.docs), default=0)
        return math.log1p(max(paper.upvotes, 0)) / (math.log1p(max(max_up, 0)) or 1.0)

    # ------------------------------------------------------------ per distinct term (cached)

    def hits(self, term: Term) -> dict[int, _Hit]:
        """Papers this term counts for → its unweighted score there and where it matched (once per index)."""
        cached = self._term_hits.get(term.variants)
        if cached is not None:
            return cached
        p = self.params
        same = [v for v in term.variants if v.kind == "same"]
        df_docs: set[int] = set()
        for v in same:
            df_docs.update(self.idf.docs_with(v.phrase))
        idf = self.idf.idf(len(df_docs))
        candidates: set[int] = set()
        for v in term.variants:
            candidates.update(self.own.docs_with(v.phrase))
        partials = [(v, self._partial_shares(v.phrase)) for v in term.variants if v.partial and p.partial_match > 0]
        for _, shares in partials:
            candidates.update(self._partial_candidates(shares))
        out: dict[int, _Hit] = {}
        for i in candidates:
            hit = self._score(self.docs[i], term, partials, idf)
            if hit is not None:
                out[i] = hit
        self._term_hits[term.variants] = out
        return out

    def _partial_shares(self, phrase: tuple[str, ...]) -> dict[str, float]:
        """Each distinct word's share of the phrase's total idf."""
        idfs = {tok: self.idf.token_idf(tok) for tok in phrase}
        total = sum(idfs.values()) or 1.0
        return {tok: v / total for tok, v in idfs.items()}

    def _partial_candidates(self, shares: dict[str, float]) -> set[int]:
        """Papers holding enough of the phrase's words to reach `min_match`: any must hold one of the rarest."""
        p = self.params
        need = p.min_match / p.partial_match if p.partial_match > 0 else 2.0
        if need > 1:
            return set()
        out: set[int] = set()
        rest = 1.0
        for tok, share in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0])):
            if rest < need - 1e-12:
                break
            out.update(self.own.postings.get(tok, ()))
            rest -= share
        return out

    def _score(
        self, doc: _Doc, term: Term, partials: list[tuple[Variant, dict[str, float]]], idf: float
    ) -> _Hit | None:
        p = self.params
        total = 0.0
        fields: list[str] = []
        via: str | None = None
        best_kind = 0.0
        any_exact = False
        for name in FIELDS:
            toks = doc.fields[name]
            if not toks:
                continue
            quality, tf, source, exact = 0.0, 0, None, False
            for v in term.variants:
                if v.phrase[0] not in doc.sets[name]:
                    continue
                count = _count(toks, v.phrase)
                if count:
                    q = 1.0 if v.kind == "same" else p.narrower_match
                    if q > quality or (q == quality and count > tf):
                        quality, tf, source, exact = q, count, v.text, True
            if quality < 1.0:
                for v, shares in partials:
                    present = [tok for tok in shares if tok in doc.sets[name]]
                    if not present:
                        continue
                    if len(present) == len(shares):
                        q = p.unordered_match
                    else:
                        q = p.partial_match * sum(shares[t] for t in present)
                    if q > quality:
                        quality, source, exact = q, v.text, False
                        tf = min(toks.count(t) for t in present)
            if quality < p.min_match or quality <= 0:
                continue
            length = 1 - p.length_norm + p.length_norm * len(toks) / self._avg_len[name]
            total += p.field_weight(name) * quality * tf / length
            fields.append(name)
            if quality > best_kind:
                best_kind, via = quality, source
            any_exact = any_exact or exact
        if not fields or total <= 0:
            return None
        label_norm = normalize(term.label)
        shown = None if via is None or normalize(via) == label_norm else via
        k = p.tf_saturation
        saturated = total * (k + 1) / (total + k) if k > 0 else total
        return _Hit(idf * saturated, tuple(fields), shown, not any_exact)

    def excluded(self, term: Term) -> frozenset[int]:
        """Papers an `exclude` term drops: the phrase or a same-meaning synonym, anywhere (cached)."""
        cached = self._excluded.get(term.variants)
        if cached is None:
            found: set[int] = set()
            for v in term.variants:
                if v.kind == "same":
                    found.update(self.own.docs_with(v.phrase))
            cached = self._excluded[term.variants] = frozenset(found)
        return cached

    def trending(self) -> list[int]:
        """Every paper, best secondary signal first (computed once)."""
        if self._trending is None:
            self._trending = sorted(range(len(self.docs)), key=lambda i: self._tie_key(i, self.docs[i].bonus))
        return self._trending

    def _tie_key(self, i: int, score: float) -> tuple[float, int, str]:
        paper = self.docs[i].paper
        return (-round(score, 9), -paper.upvotes, paper.key)

    # ------------------------------------------------------------ per subscriber

    def rank(self, interests: Interests, eligible: Callable[[Paper], bool] | None = None) -> list[RankedPaper]:
        """Top papers for these interests, best first, each with the terms that matched and where."""
        terms = compile_terms(interests.keywords, interests.synonyms)
        excluded: set[int] = set()
        for term in compile_terms(interests.exclude, interests.synonyms):
            excluded.update(self.excluded(term))
        k = interests.max_papers

        def ok(i: int) -> bool:
            return i not in excluded and (eligible is None or eligible(self.docs[i].paper))

        if not terms:
            picked = []
            for i in self.trending():
                if ok(i):
                    picked.append(RankedPaper(self.docs[i].paper, self.docs[i].bonus))
                    if len(picked) == k:
                        break
            return picked

        relevance: dict[int, float] = {}
        per_term = [self.hits(t) for t in terms]
        for term, hits in zip(terms, per_term, strict=True):
            for i, hit in hits.items():
                relevance[i] = relevance.get(i, 0.0) + term.weight * hit.score
        order = sorted(relevance, key=lambda i: (-relevance[i], i))
        top = 0.0
        best: list[float] = []
        seen: list[tuple[int, float]] = []
        ceiling = self.params.trend_weight + self.params.recency_weight
        for i in order:
            rel = relevance[i]
            if len(best) == k and rel / top + ceiling < best[0] - 1e-9:
                break
            if not ok(i):
                continue
            top = top or rel
            score = rel / top + self.docs[i].bonus
            seen.append((i, score))
            if len(best) < k:
                heapq.heappush(best, score)
            elif score > best[0]:
                heapq.heapreplace(best, score)
        seen.sort(key=lambda e: self._tie_key(*e))
        return [
            RankedPaper(
                self.docs[i].paper,
                score,
                tuple(
                    Match(t.label, h[i].fields, h[i].via, h[i].partial)
                    for t, h in zip(terms, per_term, strict=True)
                    if i in h
                ),
            )
            for i, score in seen[:k]
        ]


def rank_papers(
    papers: Sequence[Paper], interests: Interests, params: RankingParams | None = None
) -> list[RankedPaper]:
    """Convenience for one subscriber: build an index and rank."""
    return PaperIndex(papers, params).rank(interests)
