"""Rank papers for a subscriber's interests: normalise, match keywords as phrases (or in part), score, explain.

`PaperIndex` is built once per run over the candidate pool. Each distinct keyword is compiled once and its
matches are scored once per index (cached), so `rank`, called once per subscriber, only merges the cached
hits of that subscriber's keywords: its cost grows with their matches, not with the pool.

Relevance of a paper = Σ over keywords of weight × keyword score. A keyword's score mixes two BM25F views:
(1 − WORD_WEIGHT) × the phrase model, idf(keyword) × saturated Σ over fields of field weight × match quality
× mentions, and WORD_WEIGHT × its words taken one by one, Σ idf(word) × saturated weighted mentions, so
how central the keyword's words are to the paper counts. Quality is 1 for the phrase (or a synonym), less
for all its words in another order, and for only some of its words it rises from almost 0 (their share of
the phrase's idf just reaching min_match / partial_match) to partial_match, so a barely-partial title
match cannot outrank the phrase itself. A paper with no phrase match of at least that share does not count
(the word view only re-scores papers the phrase model found). Relevance is divided by the subscriber's
best, then trending (log upvotes) and recency are added with small weights, so relevance comes first.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import itertools
import math
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import numpy as np

from digest.models import Paper
from digest.synonyms import SYNONYM_GROUPS, narrower_for, synonyms_for
from digest.text import normalize, spelling_variants, tokens

__all__ = [
    "FIELDS",
    "SYNONYM_GROUPS",
    "DocFreq",
    "DocStats",
    "Interests",
    "KeywordError",
    "Match",
    "PaperIndex",
    "RankedPaper",
    "RankingParams",
    "Term",
    "WindowStats",
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
    key: str = field(default="", compare=False)

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
    key = "\x1f".join(f"{v.kind}\x1e{' '.join(v.phrase)}\x1e{v.text}\x1e{v.partial}" for v in variants.values())
    return Term(label, weight, tuple(variants.values()), key)


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


def bm25_idf(n: int, df: int) -> float:
    """BM25's idf: always positive, highest for the rarest."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


class DocStats(Protocol):
    """Where idf comes from: a `DocFreq` over a rolling window of stored papers, or the index itself."""

    @property
    def n(self) -> int: ...

    def df(self, phrases: Sequence[tuple[str, ...]]) -> int:
        """Papers holding any of these phrases."""
        ...

    def token_df(self, token: str) -> int: ...


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

    def df(self, phrases: Sequence[tuple[str, ...]]) -> int:
        """Documents holding any of these phrases."""
        return len(frozenset().union(*(self.docs_with(p) for p in phrases)))

    def token_df(self, token: str) -> int:
        return len(self.postings.get(token, ()))


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What a day's scores are relative to, gathered from stored papers batch by batch so no process holds
    them all: idf over the idf window, and over the lookback window the mean abstract length, the top upvotes
    and the latest first-seen time. An index given these ranks exactly as one over the whole lookback window,
    so it need only hold the papers still sendable to someone (yesterday's run sent the rest).

    Frequencies are kept for the phrases and words of the terms it was gathered for, and no others."""

    n: int
    phrase_dfs: dict[tuple[tuple[str, ...], ...], int]
    token_dfs: dict[str, int]
    abstract_length: float
    top_upvotes: int
    latest_seen: float

    @classmethod
    def gather(
        cls, batches: Iterable[Sequence[Paper]], terms: Iterable[Term], lookback_start: dt.datetime
    ) -> WindowStats:
        """Frequencies of these terms' phrases and words over all papers of `batches` (the idf window, in
        batches of disjoint papers), and the lookback window's figures over those first seen from `lookback_start`."""
        terms = list(terms)
        phrase_sets = {_same_phrases(t) for t in terms}
        words = {tok for t in terms for v in t.variants for tok in v.phrase}
        phrase_dfs = dict.fromkeys(phrase_sets, 0)
        token_dfs = dict.fromkeys(words, 0)
        n = lengths = with_abstract = top = 0
        latest = -math.inf
        start = lookback_start.timestamp()
        for batch in batches:
            fields = [paper_fields(p) for p in batch]
            freq = DocFreq(_stream(f) for f in fields)
            n += freq.n
            for phrases in phrase_sets:
                phrase_dfs[phrases] += freq.df(phrases)
            for tok in words:
                token_dfs[tok] += freq.token_df(tok)
            for paper, f in zip(batch, fields, strict=True):
                seen = paper.first_seen_at.timestamp()
                if seen >= start:
                    if f["abstract"]:
                        lengths += len(f["abstract"])
                        with_abstract += 1
                    top = max(top, paper.upvotes)
                    latest = max(latest, seen)
        return cls(n, phrase_dfs, token_dfs, lengths / with_abstract if with_abstract else 1.0, top, latest)

    def df(self, phrases: Sequence[tuple[str, ...]]) -> int:
        try:
            return self.phrase_dfs[tuple(phrases)]
        except KeyError:
            raise KeyError(f"no window frequency for {phrases!r}: its term was not gathered") from None

    def token_df(self, token: str) -> int:
        try:
            return self.token_dfs[token]
        except KeyError:
            raise KeyError(f"no window frequency for {token!r}: its term was not gathered") from None


def _same_phrases(term: Term) -> tuple[tuple[str, ...], ...]:
    """The phrases whose papers a term's idf counts: itself and its same-meaning variants."""
    return tuple(v.phrase for v in term.variants if v.kind == "same")


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


@dataclass(frozen=True, slots=True)
class _Hit:
    """How one term matched one paper: its unweighted score and the explanation."""

    score: float
    fields: tuple[str, ...]
    via: str | None
    partial: bool


@dataclass(frozen=True, slots=True)
class _Grams:
    """One field's postings as sorted integer keys: token id (or token-pair id) × papers → paper, mentions."""

    width: int
    n_docs: int
    uni_keys: np.ndarray
    uni_counts: np.ndarray
    bi_keys: np.ndarray
    bi_counts: np.ndarray

    @classmethod
    def build(cls, name: str, docs: Sequence[_Doc], vocab: dict[str, int]) -> _Grams:
        """Number every token (growing the shared `vocab`), then count words and adjacent pairs per paper."""
        tok_ids: list[int] = []
        doc_ids: list[int] = []
        for i, d in enumerate(docs):
            toks = d.fields[name]
            tok_ids.extend(vocab.setdefault(t, len(vocab)) for t in toks)
            tok_ids.append(0)
            doc_ids.extend([i] * (len(toks) + 1))
        n = max(len(docs), 1)
        width = 1 << 22
        tok = np.array(tok_ids, dtype=np.int64)
        doc = np.array(doc_ids, dtype=np.int64)
        real = tok != 0
        uni_keys, uni_counts = np.unique(tok[real] * n + doc[real], return_counts=True)
        pair = real[:-1] & real[1:]
        bi = (tok[:-1][pair] * width + tok[1:][pair]) * n + doc[:-1][pair]
        bi_keys, bi_counts = np.unique(bi, return_counts=True)
        return cls(width, n, uni_keys, uni_counts.astype(np.float64), bi_keys, bi_counts.astype(np.float64))

    def lookup(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Papers holding this token (one id) or adjacent pair (two ids): (sorted indices, mentions)."""
        if len(ids) == 1:
            keys, counts, base = self.uni_keys, self.uni_counts, ids[0]
        else:
            keys, counts, base = self.bi_keys, self.bi_counts, ids[0] * self.width + ids[1]
        lo, hi = np.searchsorted(keys, (base * self.n_docs, (base + 1) * self.n_docs))
        return keys[lo:hi] - base * self.n_docs, counts[lo:hi]


@dataclass(frozen=True)
class _FieldHits:
    """A term's best match per paper in one field: paper indices (sorted), quality, variant index, exact or not."""

    ids: np.ndarray
    quality: np.ndarray
    variant: np.ndarray
    exact: np.ndarray


@dataclass(frozen=True)
class _TermHits:
    """One term's matches over the index: paper indices (sorted) and unweighted scores, plus per-field detail."""

    ids: np.ndarray
    scores: np.ndarray
    fields: dict[str, _FieldHits]
    codes: list[int]
    matches: dict[int, Match] = field(default_factory=dict)

    @functools.cached_property
    def index_of(self) -> dict[int, int]:
        return {i: j for j, i in enumerate(self.ids.tolist())}


_NONE = np.zeros(0, dtype=np.int64)
_VARIANT_BITS = 1 << 16
_FLOOR = 0.02
# Share of a multi-word keyword's score that comes from its words taken one by one (BM25F over each word,
# so how central they are to the paper counts), the rest from the phrase model; not a config key (yet).
WORD_WEIGHT = 0.4


def _merge(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum `values` per id: (sorted distinct ids, sums); cost grows with the matches only."""
    if not len(ids):
        return _NONE, np.zeros(0)
    order = np.argsort(ids, kind="stable")
    ids, values = ids[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    return ids[starts], np.add.reduceat(values, starts)


def _present(sorted_ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `wanted`: is it in `sorted_ids`, and at which position (clipped)."""
    if not len(sorted_ids):
        return np.zeros(len(wanted), dtype=bool), np.zeros(len(wanted), dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    return sorted_ids[pos] == wanted, pos


class PaperIndex:
    """Inverted index over a pool of papers; rank many subscribers against it, sharing work between them.

    Per field it keeps token (and adjacent-pair) → papers with mention counts. Each distinct term's matches
    are computed once, with numpy over those postings; a subscriber's ranking merges the cached arrays of
    their terms and filters them (exclusions, first-seen date, already sent) without touching papers
    that did not match.
    """

    def __init__(
        self, papers: Sequence[Paper], params: RankingParams | None = None, idf: DocFreq | WindowStats | None = None
    ) -> None:
        self.params = params or RankingParams()
        self.docs: list[_Doc] = []
        for paper in sorted(papers, key=lambda p: (-p.first_seen_at.timestamp(), p.key)):
            self.docs.append(_Doc(paper, paper_fields(paper)))
        self._vocab: dict[str, int] = {SEPARATOR: 0}
        self._grams = {name: _Grams.build(name, self.docs, self._vocab) for name in FIELDS}
        self._arrays: dict[tuple[str, tuple[str, ...]], tuple[np.ndarray, np.ndarray]] = {}
        keys = np.unique(np.concatenate([g.uni_keys for g in self._grams.values()]))
        self._token_df = np.bincount(keys // max(len(self.docs), 1), minlength=len(self._vocab))
        self.stats: DocStats = idf or self
        self.window = idf if isinstance(idf, WindowStats) else None
        n = len(self.docs)
        self._length = {name: self._length_norm(name) for name in FIELDS}
        upvotes = [d.paper.upvotes for d in self.docs]
        self._seen_ts = np.array([d.paper.first_seen_at.timestamp() for d in self.docs], dtype=np.float64)
        self.bonus = self._bonus(upvotes)
        tie_order = sorted(range(n), key=lambda i: (-upvotes[i], self.docs[i].paper.key))
        self._tie_rank = np.empty(n, dtype=np.int64)
        self._tie_rank[tie_order] = np.arange(n)
        self._tie_list: list[int] = self._tie_rank.tolist()
        self._neg_ts = -self._seen_ts
        self._by_id = {d.paper.id: i for i, d in enumerate(self.docs) if d.paper.id is not None}
        self._hits: dict[str, _TermHits] = {}
        self._excluded: dict[str, np.ndarray] = {}
        self._trending: list[int] | None = None

    def __len__(self) -> int:
        return len(self.docs)

    def _length_norm(self, name: str) -> np.ndarray:
        """BM25's 1 − b + b·len/avg per paper for the abstract (average over papers that have one); 1 elsewhere.

        Titles and ai_keywords are short lists whose length says little about how focused a paper is.
        """
        lengths = np.array([len(d.fields[name]) for d in self.docs], dtype=np.float64)
        if name != "abstract":
            return np.ones(len(lengths))
        b = self.params.length_norm
        present = lengths[lengths > 0]
        avg = float(present.mean()) if len(present) else 1.0
        if self.window is not None:
            avg = self.window.abstract_length
        return np.asarray(1 - b + b * lengths / avg)

    def _bonus(self, upvotes: list[int]) -> np.ndarray:
        """Each paper's secondary signal: trend_weight × log-scaled upvotes + recency_weight × freshness."""
        p = self.params
        if not self.docs:
            return np.zeros(0)
        trend = np.log1p(np.maximum(np.array(upvotes, dtype=np.float64), 0))
        top = trend.max() if self.window is None else np.log1p(max(self.window.top_upvotes, 0))
        trend /= top or 1.0
        recency = np.zeros(len(self.docs))
        if p.recency_half_life_hours > 0:
            latest = self._seen_ts.max() if self.window is None else self.window.latest_seen
            hours = (latest - self._seen_ts) / 3600
            recency = 0.5 ** (hours / p.recency_half_life_hours)
        return np.asarray(p.trend_weight * trend + p.recency_weight * recency, dtype=np.float64)

    def trend(self, paper: Paper) -> float:
        """A paper's log-scaled upvotes relative to the pool's most upvoted (0..1)."""
        top = max((d.paper.upvotes for d in self.docs), default=0) if self.window is None else self.window.top_upvotes
        return math.log1p(max(paper.upvotes, 0)) / (math.log1p(max(top, 0)) or 1.0)

    # ------------------------------------------------------------ postings and document frequencies

    @property
    def n(self) -> int:
        return len(self.docs)

    def docs_with_any(self, phrases: Sequence[tuple[str, ...]]) -> np.ndarray:
        """Papers of the pool holding any of the phrases in any field (sorted indices)."""
        found = [self._postings(name, phrase)[0] for phrase in phrases for name in FIELDS]
        return np.unique(np.concatenate(found or [_NONE]))

    def df(self, phrases: Sequence[tuple[str, ...]]) -> int:
        return len(self.docs_with_any(phrases))

    def token_df(self, token: str) -> int:
        tid = self._vocab.get(token, -1)
        return int(self._token_df[tid]) if 0 < tid < len(self._token_df) else 0

    def _postings(self, name: str, phrase: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Papers holding the phrase in this field, and how often: (sorted indices, counts), cached."""
        key = (name, phrase)
        cached = self._arrays.get(key)
        if cached is not None:
            return cached
        ids = [self._vocab.get(tok, -1) for tok in phrase]
        grams = self._grams[name]
        if min(ids) < 0:
            result = (_NONE, np.zeros(0))
        elif len(ids) <= 2:
            result = grams.lookup(ids)
        else:
            pairs = sorted((grams.lookup(pair)[0] for pair in itertools.pairwise(ids)), key=len)
            common = functools.reduce(np.intersect1d, pairs)
            counts = {}
            for i in common.tolist():
                c = _count(self.docs[i].fields[name], phrase)
                if c:
                    counts[i] = c
            result = (
                np.fromiter(counts.keys(), dtype=np.int64, count=len(counts)),
                np.fromiter(counts.values(), dtype=np.float64, count=len(counts)),
            )
        self._arrays[key] = result
        return result

    # ------------------------------------------------------------ per distinct term (cached)

    def hits(self, term: Term) -> dict[int, Match]:
        """Papers this term counts for → where and how it matched (for inspection; ranking uses arrays)."""
        found = self._term(term)
        return {i: m for i in found.ids.tolist() if (m := self._explain(term, found, i)) is not None}

    def _term(self, term: Term) -> _TermHits:
        cached = self._hits.get(term.key)
        if cached is not None:
            return cached
        p = self.params
        idf = bm25_idf(self.stats.n, self.stats.df(_same_phrases(term)))
        fields: dict[str, _FieldHits] = {}
        evidence_ids, evidence = [], []
        for name in FIELDS:
            weight = p.field_weight(name)
            if weight <= 0:
                continue
            found, tf = self._field_hits(name, term)
            if len(found.ids):
                fields[name] = found
                evidence_ids.append(found.ids)
                evidence.append(weight * found.quality * tf / self._length[name][found.ids])
        ids, total = _merge(np.concatenate(evidence_ids or [_NONE]), np.concatenate(evidence or [np.zeros(0)]))
        k = p.tf_saturation
        scores = idf * (total * (k + 1) / (total + k) if k > 0 else total)
        words = next((v.phrase for v in term.variants if v.partial), ())
        if WORD_WEIGHT > 0 and words and len(ids):
            scores = (1 - WORD_WEIGHT) * scores + WORD_WEIGHT * self._word_scores(set(words), ids)
        result = self._hits[term.key] = _TermHits(ids, scores, fields, self._codes(ids, fields))
        return result

    def _word_scores(self, words: Collection[str], ids: np.ndarray) -> np.ndarray:
        """BM25F of the keyword's words taken one by one, for these papers: each word's idf × saturated mentions."""
        p = self.params
        k = p.tf_saturation
        out = np.zeros(len(ids))
        for tok in words:
            total = np.zeros(len(ids))
            for name in FIELDS:
                weight = p.field_weight(name)
                found, tf = self._postings(name, (tok,))
                present, pos = _present(found, ids)
                if weight > 0 and len(tf):
                    total += np.where(present, weight * tf[pos], 0.0) / self._length[name][ids]
            idf = bm25_idf(self.stats.n, self.stats.token_df(tok))
            out += idf * (total * (k + 1) / (total + k) if k > 0 else total)
        return out

    def _field_hits(self, name: str, term: Term) -> tuple[_FieldHits, np.ndarray]:
        """The term's best match per paper in one field (at least `min_match`), and its mention count."""
        p = self.params
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, bool]] = []
        for index, v in enumerate(term.variants):
            q = 1.0 if v.kind == "same" else p.narrower_match
            if q >= p.min_match and q > 0:
                found, counts = self._postings(name, v.phrase)
                rows.append((found, np.full(len(found), q), counts, index, True))
            if v.partial and p.partial_match > 0:
                rows.append((*self._partial_hits(name, v.phrase), index, False))
        ids = np.concatenate([r[0] for r in rows] or [_NONE])
        quality = np.concatenate([r[1] for r in rows] or [np.zeros(0)])
        tf = np.concatenate([r[2] for r in rows] or [np.zeros(0)])
        variant = np.concatenate([np.full(len(r[0]), r[3]) for r in rows] or [_NONE])
        exact = np.concatenate([np.full(len(r[0]), r[4]) for r in rows] or [np.zeros(0, dtype=bool)])
        keep = quality > 0
        ids, quality, tf, variant, exact = ids[keep], quality[keep], tf[keep], variant[keep], exact[keep]
        order = np.lexsort((variant, -tf, -quality, ids))
        ids, quality, tf, variant, exact = ids[order], quality[order], tf[order], variant[order], exact[order]
        first = np.concatenate(([True], ids[1:] != ids[:-1])) if len(ids) else np.zeros(0, dtype=bool)
        return _FieldHits(ids[first], quality[first], variant[first], exact[first]), tf[first]

    def _partial_hits(self, name: str, phrase: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Papers with some of the phrase's words in this field: (indices, quality, least mention count).

        Quality of a partial match rises linearly with the words' idf share above the minimum share, from a
        small floor, so it changes smoothly with the knobs instead of jumping at the threshold.
        """
        p = self.params
        shares = self._shares(phrase)
        rare = [self._postings(name, (tok,))[0] for tok in self._required(shares)]
        candidates = np.unique(np.concatenate(rare or [_NONE]))
        coverage = np.zeros(len(candidates))
        present_count = np.zeros(len(candidates), dtype=np.int64)
        least = np.full(len(candidates), np.inf)
        for tok, share in shares.items():
            ids, tf = self._postings(name, (tok,))
            present, pos = _present(ids, candidates)
            coverage += share * present
            present_count += present
            if len(tf):
                least = np.where(present, np.minimum(least, tf[pos]), least)
        theta = self._min_share()
        rise = np.clip((coverage - theta) / max(1.0 - theta, 1e-9), 0.0, 1.0)
        partial = np.where(coverage >= theta - 1e-12, p.partial_match * (_FLOOR + (1 - _FLOOR) * rise), 0.0)
        quality = np.where(present_count == len(shares), p.unordered_match, partial)
        return candidates, quality, np.where(np.isfinite(least), least, 0.0)

    def _shares(self, phrase: tuple[str, ...]) -> dict[str, float]:
        """Each distinct word's share of the phrase's total idf."""
        idfs = {tok: bm25_idf(self.stats.n, self.stats.token_df(tok)) for tok in phrase}
        total = sum(idfs.values()) or 1.0
        return {tok: v / total for tok, v in idfs.items()}

    def _min_share(self) -> float:
        """The share of a keyword's idf its present words must carry for a partial match: min_match / partial_match."""
        p = self.params
        return p.min_match / p.partial_match if p.partial_match > 0 else 2.0

    def _required(self, shares: dict[str, float]) -> list[str]:
        """Words of which a paper must hold at least one for a partial match to reach the minimum share."""
        need = self._min_share()
        out: list[str] = []
        rest = 1.0
        for tok, share in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0])):
            if rest < need - 1e-12:
                break
            out.append(tok)
            rest -= share
        return out

    def _codes(self, ids: np.ndarray, fields: dict[str, _FieldHits]) -> list[int]:
        """Per matched paper, its explanation packed in an int: fields hit, best-quality variant, any exact hit."""
        mask = np.zeros(len(ids), dtype=np.int64)
        best = np.full(len(ids), -1.0)
        variant = np.zeros(len(ids), dtype=np.int64)
        exact = np.zeros(len(ids), dtype=np.int64)
        for bit, name in enumerate(FIELDS):
            fh = fields.get(name)
            if fh is None:
                continue
            at = ids.searchsorted(fh.ids)
            mask[at] |= 1 << bit
            better = fh.quality > best[at]
            best[at] = np.where(better, fh.quality, best[at])
            variant[at] = np.where(better, fh.variant, variant[at])
            exact[at] |= fh.exact
        codes: list[int] = ((mask * _VARIANT_BITS + variant) * 2 + exact).tolist()
        return codes

    def _explain(self, term: Term, found: _TermHits, i: int) -> Match | None:
        """Where the term matched paper `i`, through which table entry, and whether only in part (None: no match)."""
        j = found.index_of.get(i)
        if j is None:
            return None
        code = found.codes[j]
        match = found.matches.get(code)
        if match is None:
            exact, rest = code & 1, code >> 1
            mask, variant = divmod(rest, _VARIANT_BITS)
            names = tuple(name for bit, name in enumerate(FIELDS) if mask & (1 << bit))
            via = term.variants[variant].text
            match = Match(term.label, names, None if via == term.label else via, not exact)
            found.matches[code] = match
        return match

    def excluded(self, term: Term) -> np.ndarray:
        """Paper indices an `exclude` term drops: the phrase or a same-meaning synonym, anywhere (cached)."""
        cached = self._excluded.get(term.key)
        if cached is None:
            same = [v.phrase for v in term.variants if v.kind == "same"]
            cached = self._excluded[term.key] = self.docs_with_any(same)
        return cached

    def trending(self) -> list[int]:
        """Every paper, best secondary signal first (computed once)."""
        if self._trending is None:
            keys = np.lexsort((self._tie_rank, -np.round(self.bonus, 9)))
            self._trending = [int(i) for i in keys]
        return self._trending

    # ------------------------------------------------------------ per subscriber

    def rank(
        self,
        interests: Interests,
        eligible: Callable[[Paper], bool] | None = None,
        *,
        since: dt.datetime | None = None,
        skip_ids: Collection[int] = (),
    ) -> list[RankedPaper]:
        """Top papers for these interests, best first, each with the terms that matched and where.

        Candidates can be limited by `since` (first seen at or after) and `skip_ids` (paper ids already
        sent), which are applied to all matches at once, and by any `eligible` predicate, called lazily.
        """
        terms = compile_terms(interests.keywords, interests.synonyms)
        excluded = [self.excluded(t) for t in compile_terms(interests.exclude, interests.synonyms)]
        skipped = [self._by_id[x] for x in skip_ids if x in self._by_id]
        if skipped:
            excluded.append(np.array(skipped, dtype=np.int64))
        drop = np.concatenate(excluded) if excluded else None
        since_ts = since.timestamp() if since is not None else None
        if not terms:
            return self._trending_for(interests.max_papers, drop, since_ts, eligible)

        parts = [self._term(t) for t in terms]
        cutoff = len(self.docs) if since_ts is None else int(self._neg_ts.searchsorted(-since_ts, "right"))
        ids_parts, value_parts = [], []
        for t, h in zip(terms, parts, strict=True):
            end = h.ids.searchsorted(cutoff)
            ids_parts.append(h.ids[:end])
            value_parts.append(h.scores[:end] if t.weight == 1 else h.scores[:end] * t.weight)
        if len(ids_parts) == 1:
            relevance = np.bincount(ids_parts[0], value_parts[0], minlength=cutoff)
        else:
            relevance = np.bincount(np.concatenate(ids_parts), np.concatenate(value_parts), minlength=cutoff)
        if drop is not None and len(drop):
            relevance[drop[drop < cutoff]] = 0.0
        ids = np.flatnonzero(relevance)
        relevance = relevance[ids]
        if eligible is None:
            chosen, scores = self._top(ids, relevance, interests.max_papers)
        else:
            chosen, scores = self._top_eligible(ids, relevance, interests.max_papers, eligible)
        pairs = list(zip(terms, parts, strict=True))
        out = []
        for i, score in zip(chosen, scores, strict=True):
            matched = []
            for t, h in pairs:
                m = self._explain(t, h, i)
                if m is not None:
                    matched.append(m)
            out.append(RankedPaper(self.docs[i].paper, score, tuple(matched)))
        return out

    def _order(self, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Positions of `ids` by falling score (to 9 decimals), then upvotes, then key: deterministic."""
        return np.lexsort((self._tie_rank[ids], -np.round(scores, 9)))

    def _top(self, ids: np.ndarray, relevance: np.ndarray, k: int) -> tuple[list[int], list[float]]:
        """The k best by relevance / the best relevance + secondary signal, ties broken deterministically."""
        if not len(ids):
            return [], []
        final = relevance * (1.0 / relevance.max()) + self.bonus[ids]
        if len(ids) > k:
            near = np.flatnonzero(final >= np.partition(final, len(final) - k)[len(final) - k] - 1e-9)
            ids, final = ids[near], final[near]
        pairs = sorted(
            zip(ids.tolist(), final.tolist(), strict=True), key=lambda e: (-round(e[1], 9), self._tie_list[e[0]])
        )[:k]
        return [i for i, _ in pairs], [f for _, f in pairs]

    def _top_eligible(
        self, ids: np.ndarray, relevance: np.ndarray, k: int, eligible: Callable[[Paper], bool]
    ) -> tuple[list[int], list[float]]:
        """Walk matches by falling relevance, asking `eligible` only until no later paper can make the top k."""
        ceiling = self.params.trend_weight + self.params.recency_weight
        top = 0.0
        best: list[float] = []
        seen_ids: list[int] = []
        seen_scores: list[float] = []
        for pos in np.lexsort((ids, -relevance)):
            i, rel = int(ids[pos]), float(relevance[pos])
            if len(best) == k and rel / top + ceiling < best[0] - 1e-9:
                break
            if not eligible(self.docs[i].paper):
                continue
            top = top or rel
            score = rel * (1.0 / top) + float(self.bonus[i])
            seen_ids.append(i)
            seen_scores.append(score)
            if len(best) < k:
                heapq.heappush(best, score)
            elif score > best[0]:
                heapq.heapreplace(best, score)
        arr_ids, arr_scores = np.array(seen_ids, dtype=np.int64), np.array(seen_scores)
        order = self._order(arr_ids, arr_scores)[:k] if seen_ids else np.zeros(0, dtype=np.int64)
        return [int(i) for i in arr_ids[order]], [float(s) for s in arr_scores[order]]

    def _trending_for(
        self,
        k: int,
        drop: np.ndarray | None,
        since_ts: float | None,
        eligible: Callable[[Paper], bool] | None,
    ) -> list[RankedPaper]:
        """A subscriber without keywords: the pool by trending and recency."""
        dropped = set(drop.tolist()) if drop is not None else set()
        picked = []
        for i in self.trending():
            if i in dropped or (since_ts is not None and self._seen_ts[i] < since_ts):
                continue
            paper = self.docs[i].paper
            if eligible is None or eligible(paper):
                picked.append(RankedPaper(paper, float(self.bonus[i])))
                if len(picked) == k:
                    break
        return picked


def rank_papers(
    papers: Sequence[Paper], interests: Interests, params: RankingParams | None = None
) -> list[RankedPaper]:
    """Convenience for one subscriber: build an index and rank."""
    return PaperIndex(papers, params).rank(interests)
