"""Corpus statistics: the one inverted index (`Postings`), BM25's idf, and a window's statistics gathered in batches.

`Postings` keeps, per field, token and adjacent-pair → papers with mention counts as sorted integer keys
(numpy). `PaperIndex` ranks over one; `WindowStats` counts document frequencies over the idf window with
one per batch of stored papers, so no process holds the window whole.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from digest.models import Paper
from digest.ranking._terms import Term
from digest.ranking._text import tokens

FIELDS = ("title", "keywords", "abstract")
SEPARATOR = "|"
NONE = np.zeros(0, dtype=np.int64)

Fields = Mapping[str, Sequence[str]]


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
    """Where idf comes from: the pool's own `Postings`, a window's gathered `WindowStats`, or any `Postings`."""

    @property
    def n(self) -> int: ...

    def df(self, phrases: Sequence[tuple[str, ...]]) -> int:
        """Papers holding any of these phrases."""
        ...

    def token_df(self, token: str) -> int: ...


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
    def build(cls, name: str, docs: Sequence[Fields], vocab: dict[str, int]) -> _Grams:
        """Number every token (growing the shared `vocab`), then count words and adjacent pairs per paper."""
        tok_ids: list[int] = []
        doc_ids: list[int] = []
        for i, d in enumerate(docs):
            toks = d[name]
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


class Postings:
    """The inverted index of a list of papers' token streams (`paper_fields`), per field: which papers hold a
    word or phrase, and how often. Phrase lookups are cached; a phrase never spans two fields or two
    ai_keywords."""

    def __init__(self, docs: Sequence[Fields]) -> None:
        self.docs = docs
        self._vocab: dict[str, int] = {SEPARATOR: 0}
        self._grams = {name: _Grams.build(name, docs, self._vocab) for name in FIELDS}
        self._arrays: dict[tuple[str, tuple[str, ...]], tuple[np.ndarray, np.ndarray]] = {}
        keys = np.unique(np.concatenate([g.uni_keys for g in self._grams.values()]))
        self._token_df = np.bincount(keys // max(len(docs), 1), minlength=len(self._vocab))

    @classmethod
    def of_papers(cls, papers: Iterable[Paper]) -> Postings:
        """The index of these papers' title, ai_keywords and abstract (an idf source over a window of papers)."""
        return cls([paper_fields(p) for p in papers])

    @property
    def n(self) -> int:
        return len(self.docs)

    def lookup(self, name: str, phrase: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Papers holding the phrase in this field, and how often: (sorted indices, counts), cached."""
        key = (name, phrase)
        cached = self._arrays.get(key)
        if cached is not None:
            return cached
        ids = [self._vocab.get(tok, -1) for tok in phrase]
        grams = self._grams[name]
        if min(ids) < 0:
            result = (NONE, np.zeros(0))
        elif len(ids) <= 2:
            result = grams.lookup(ids)
        else:
            pairs = sorted((grams.lookup(pair)[0] for pair in itertools.pairwise(ids)), key=len)
            common = functools.reduce(np.intersect1d, pairs)
            counts = {}
            for i in common.tolist():
                c = count_phrase(self.docs[i][name], phrase)
                if c:
                    counts[i] = c
            result = (
                np.fromiter(counts.keys(), dtype=np.int64, count=len(counts)),
                np.fromiter(counts.values(), dtype=np.float64, count=len(counts)),
            )
        self._arrays[key] = result
        return result

    def docs_with_any(self, phrases: Sequence[tuple[str, ...]]) -> np.ndarray:
        """Papers holding any of the phrases in any field (sorted indices)."""
        found = [self.lookup(name, phrase)[0] for phrase in phrases for name in FIELDS]
        return np.unique(np.concatenate(found or [NONE]))

    def df(self, phrases: Sequence[tuple[str, ...]]) -> int:
        return len(self.docs_with_any(phrases))

    def token_df(self, token: str) -> int:
        tid = self._vocab.get(token, -1)
        return int(self._token_df[tid]) if 0 < tid < len(self._token_df) else 0


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
        phrase_sets = {same_phrases(t) for t in terms}
        words = {tok for t in terms for v in t.variants for tok in v.phrase}
        phrase_dfs = dict.fromkeys(phrase_sets, 0)
        token_dfs = dict.fromkeys(words, 0)
        n = lengths = with_abstract = top = 0
        latest = -math.inf
        start = lookback_start.timestamp()
        for batch in batches:
            fields = [paper_fields(p) for p in batch]
            freq = Postings(fields)
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


def same_phrases(term: Term) -> tuple[tuple[str, ...], ...]:
    """The phrases whose papers a term's idf counts: itself and its same-meaning variants."""
    return tuple(v.phrase for v in term.variants if v.kind == "same")


def count_phrase(haystack: Sequence[str], needle: tuple[str, ...]) -> int:
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
