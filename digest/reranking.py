"""A reader's model at work on the day's pool: trained against a few of its papers, then re-ranking their
keyword matches.

The pool's papers are turned into word vectors once (when the first learning reader comes) and scored by a
model in one sparse product. A learning reader's keyword ranking (a wider top than their digest needs) and
the model's own favourites are re-scored as keyword relevance (0–1) + trust × weight × (2p − 1), p the
model's probability. Trust is how much the reader's ratings disagree with their keywords: a reader who liked
everything the keywords put first taught little beyond them (Scholar Inbox: the negatives carry the
information), so their model moves the ranking less; see `trust`. Papers very close to a disliked one sink.
Pure: papers, rankings and models in, rankings out.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection, Iterable, Sequence
from itertools import chain

import numpy as np

from digest.learning import NEAR_DISLIKED, VECTOR_KEPT, Example, ReaderModel, Vector, fit, vectorize
from digest.models import Paper
from digest.ranking import RankedPaper

# a reader with no keywords but a model: "more like my library", the day's upvotes only a small prior
UPVOTES_WITHOUT_KEYWORDS = 0.2
BACKGROUND = 20  # unlabelled papers of the day a model learns from as weak negatives
NEAR_DISLIKED_PENALTY = 1.0  # a candidate very close to a disliked paper drops below every other


def trust(model: ReaderModel) -> float:
    """How far a model may move its reader's keyword ranking, 0–1: the evidence that their keywords fail
    them. Twice the share of their ratings that were dislikes (smoothed: one more like and dislike each),
    at most 1, so that a model learnt from a handful of ratings never outweighs the keywords' whole range;
    squared, so that a reader who liked nearly all they rated keeps close to their keyword ranking (their
    model learnt mostly "liked against any paper", which the keywords already say, and reorders their top
    on noise). 1 from half dislikes; 1/9 for one dislike in ten; a library alone (no ratings) gives 1."""
    liked, disliked = model.ratings
    return min(1.0, 2.0 * (disliked + 1) / (liked + disliked + 2)) ** 2


class PoolModels:
    """The day's pool as word vectors, for training readers' models and scoring the pool with them.

    The vectors are one sparse matrix (a row of words per paper), so that a model is trained, scores the pool
    and compares candidates with the papers it learnt from in a few numpy operations rather than one Python
    dict per paper."""

    def __init__(self, pool: Sequence[Paper]) -> None:
        self.pool = pool
        # ~2 MB for 2,000 papers, where as many dicts took ~25 MB in every compose worker
        vocab: dict[str, int] = {}
        cols: list[int] = []
        vals: list[float] = []
        ends = []
        for p in pool:
            for term, weight in vectorize(f"{p.title} {p.abstract}").items():
                cols.append(vocab.setdefault(term, len(vocab)))
                vals.append(weight)
            ends.append(len(cols))
        self._vocab = vocab
        self._terms = list(vocab)
        self._indptr = np.array([0, *ends], dtype=np.int64)
        self._cols = np.array(cols, dtype=np.int64)
        self._vals = np.array(vals, dtype=np.float64)
        self._products = np.zeros(len(vals) + 1)
        self._where = np.full(len(vocab), -1, dtype=np.int64)
        self._empty = self._indptr[:-1] == self._indptr[1:]
        self._position = {id(p): i for i, p in enumerate(pool)}
        self._by_id = {p.id: i for i, p in enumerate(pool)}
        self._first_seen = np.array([p.first_seen_at.timestamp() for p in pool])

    def vector(self, i: int, keep: int | None = None) -> Vector:
        """Pool paper `i`'s vector, as `vectorize` made it; with `keep`, only its `keep` strongest words, in the
        order `learning` keeps them (strongest first, ties in the vector's order)."""
        lo, hi = int(self._indptr[i]), int(self._indptr[i + 1])
        cols, vals = self._cols[lo:hi], self._vals[lo:hi]
        if keep is not None and hi - lo > keep:
            strongest = np.argsort(-np.abs(vals), kind="stable")[:keep]
            cols, vals = cols[strongest], vals[strongest]
        terms = self._terms
        return {terms[c]: v for c, v in zip(cols.tolist(), vals.tolist(), strict=True)}

    def train(self, examples: Sequence[Example], fingerprint: str, since: dt.datetime) -> ReaderModel | None:
        """A reader's model from their examples and a few weak negatives; the design matrix is read off the
        pool's rows (an example that is not in the pool, such as a library paper, is vectorised here)."""
        judged: list[tuple[Example, Vector]] = []
        rows: list[int] = []
        outside: list[tuple[int, Vector]] = []  # (row, vector) of examples not in the pool
        for e in examples:
            i = self._by_id.get(e.paper_id, -1) if e.paper_id is not None else -1
            # a pool paper's row is in the matrix already: the model keeps only its strongest words
            v = self.vector(i, VECTOR_KEPT) if i >= 0 else vectorize(e.text)
            if e.label not in (1, -1) or not v:
                continue
            if i < 0:
                outside.append((len(judged), v))
            judged.append((e, v))
            rows.append(i)
        if not judged:
            return None
        rows += [i for i in self._background(examples, fingerprint, since) if not self._empty[i]]
        inside = np.array([r for r, i in enumerate(rows) if i >= 0], dtype=np.int64)
        seg, cols, vals = self._entries(np.array([i for i in rows if i >= 0], dtype=np.int64))
        seg = inside[seg]
        extra: dict[str, int] = {}  # words of outside examples the pool does not have, numbered after its own
        more = [(r, self._column(t, extra), w) for r, v in outside for t, w in v.items()]
        if more:
            seg = np.concatenate((seg, np.array([r for r, _, _ in more], dtype=np.int64)))
            cols = np.concatenate((cols, np.array([c for _, c, _ in more], dtype=np.int64)))
            vals = np.concatenate((vals, np.array([w for _, _, w in more])))
        used, column = np.unique(cols, return_inverse=True)
        x = np.zeros((len(rows), len(used)))
        x[seg, column] = vals
        known, added, pool_terms = len(self._terms), list(extra), self._terms

        def words(columns: list[int]) -> list[str]:
            return [pool_terms[c] if c < known else added[c - known] for c in used[columns].tolist()]

        return fit(judged, x, words, fingerprint)

    def probabilities(self, model: ReaderModel) -> np.ndarray:
        """The model's probability for every pool paper at once: its weights spread over the pool's words, then
        summed along each paper's row (a sparse product that reads the matrix in order)."""
        vocab, weights = self._vocab, model.weights
        cols = np.fromiter((vocab.get(t, -1) for t in weights), dtype=np.int64, count=len(weights))
        dense = np.zeros(len(vocab) + 1)  # the last cell takes the words the pool does not have, then is cleared
        dense[cols] = np.fromiter(weights.values(), dtype=np.float64, count=len(cols))
        dense[-1] = 0.0
        products = self._products  # one cell longer than the matrix, that cell 0: it ends empty last rows
        np.take(dense, self._cols, out=products[:-1])
        products[:-1] *= self._vals
        z = np.add.reduceat(products, self._indptr[:-1])
        z[self._empty] = 0.0  # reduceat gives an empty row its next row's first cell
        return 1.0 / (1.0 + np.exp(-np.clip(z + model.bias, -30.0, 30.0)))

    def similarities(self, rows: np.ndarray, vectors: Sequence[Vector]) -> np.ndarray:
        """The cosine of each pool paper in `rows` with each of `vectors` (unit vectors, words absent from the
        pool count for nothing), as a len(rows) × len(vectors) matrix."""
        cols, weights = self._columns(vectors)
        if not len(cols) or not len(rows):
            return np.zeros((len(rows), len(vectors)))
        seg, entry_cols, entry_vals = self._entries(rows)
        where = self._where  # column → its place among `cols`, for this call only
        where[cols] = np.arange(len(cols))
        at = where[entry_cols]
        where[cols] = -1
        hit = at >= 0
        papers = np.zeros((len(rows), len(cols)))  # the papers on the vectors' words only
        papers[seg[hit], at[hit]] = entry_vals[hit]
        return papers @ weights

    def rerank(
        self,
        keyword: Sequence[RankedPaper],
        model: ReaderModel,
        *,
        weight: float,
        has_keywords: bool,
        allowed: np.ndarray,
        favourites: int,
        keep: int,
    ) -> tuple[list[RankedPaper], dict[int, tuple[float, str | None]]]:
        """`keyword` (the reader's keyword ranking, best first) plus up to `favourites` papers the model likes
        (p ≥ 0.5) among the pool positions `allowed` (a mask, see `allowed`), re-scored; the best `keep`. Also
        returns, by `id(paper)`, each one's probability and the liked paper it is closest to (for "because you
        liked …")."""
        probs = self.probabilities(model)
        top = max((r.score for r in keyword), default=0.0) or 1.0
        share, alpha = (1.0, weight * trust(model)) if has_keywords else (UPVOTES_WITHOUT_KEYWORDS, 1.0)
        candidates = {self._position[id(r.paper)]: (r.score / top, r) for r in keyword}
        added = 0
        liked = np.flatnonzero((probs >= 0.5) & allowed)
        for i in liked[np.argsort(-probs[liked], kind="stable")].tolist():
            if added >= favourites:
                break
            if i not in candidates:
                candidates[i] = (0.0, RankedPaper(self.pool[i], 0.0))
                added += 1
        rows = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
        disliked = len(model.disliked)  # one product for both: sims[:, :disliked] and sims[:, disliked:] (liked)
        sims = self.similarities(rows, [*model.disliked, *(v for _, v in model.liked)])
        near = np.any(sims[:, :disliked] >= NEAR_DISLIKED, axis=1).tolist()
        scored = []
        for n, (i, (relevance, r)) in enumerate(candidates.items()):
            score = share * relevance + alpha * (2.0 * float(probs[i]) - 1.0) - NEAR_DISLIKED_PENALTY * near[n]
            scored.append((score, r.paper.key, n, r))
        scored.sort(key=lambda s: (-s[0], s[1]))
        kept = scored[:keep]
        closeness = sims[[n for _, _, n, _ in kept], disliked:]
        out, learned = [], {}
        for (score, _, n, r), to_liked in zip(kept, closeness.tolist(), strict=True):
            out.append(RankedPaper(r.paper, score, r.matched))
            learned[id(r.paper)] = (float(probs[rows[n]]), model.closest_liked(to_liked))
        return out, learned

    def allowed(self, since: dt.datetime, seen: Collection[int], excluded: Iterable[Paper]) -> np.ndarray:
        """Which pool positions a reader may still receive: first seen since `since`, not among the paper ids
        `seen` (already sent), not one of `excluded` (their exclusions matched it)."""
        mask = self._first_seen >= since.timestamp()
        by_id, position = self._by_id, self._position
        mask[[by_id[i] for i in seen if i in by_id]] = False
        mask[[position[id(p)] for p in excluded if id(p) in position]] = False
        return mask

    def _columns(self, vectors: Sequence[Vector]) -> tuple[np.ndarray, np.ndarray]:
        """The pool's columns that `vectors` use (sorted) and each vector's weight on them (a column each)."""
        vocab = self._vocab
        cols = np.array([vocab.get(t, -1) for v in vectors for t in v], dtype=np.int64)
        values = np.fromiter(chain.from_iterable(v.values() for v in vectors), dtype=np.float64, count=len(cols))
        owner = np.repeat(np.arange(len(vectors)), [len(v) for v in vectors])
        known = cols >= 0
        used, row = np.unique(cols[known], return_inverse=True)
        weights = np.zeros((len(used), len(vectors)))
        weights[row, owner[known]] = values[known]
        return used, weights

    def _column(self, term: str, extra: dict[str, int]) -> int:
        """A word's column: the pool's, or else one numbered after the pool's in `extra`."""
        column = self._vocab.get(term)
        return column if column is not None else len(self._vocab) + extra.setdefault(term, len(extra))

    def _entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The nonzero cells of pool rows `rows`: for each, the position in `rows` it belongs to, its column and
        its value."""
        starts = self._indptr[rows]
        counts = self._indptr[rows + 1] - starts
        at = _ranges(starts, counts)
        return np.repeat(np.arange(len(rows)), counts), self._cols[at], self._vals[at]

    def _background(self, examples: Sequence[Example], fingerprint: str, since: dt.datetime) -> list[int]:
        """A few pool papers the reader said nothing about (positions): weak negatives for their model.
        Papers they could already have had come first, so that today's candidates are not taught as negatives
        (a reader's first digest has none of those: any unlabelled paper then); the same ones for the same
        training data."""
        unlabelled = np.ones(len(self.pool), dtype=bool)
        unlabelled[[self._by_id[e.paper_id] for e in examples if e.paper_id in self._by_id]] = False
        rng = random.Random(fingerprint)
        newer = self._first_seen >= since.timestamp()
        chosen: list[int] = []
        for group in (np.flatnonzero(~newer & unlabelled), np.flatnonzero(newer & unlabelled)):
            wanted = min(BACKGROUND - len(chosen), len(group))
            chosen += group[rng.sample(range(len(group)), wanted)].tolist() if wanted > 0 else []
        return chosen


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The indices start, start + 1, … (count of them) of every range, concatenated."""
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return np.arange(total, dtype=np.int64) + offsets
