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
from collections.abc import Callable, Sequence

import numpy as np

from digest.learning import Example, ReaderModel, Vector, train, vectorize
from digest.models import Paper
from digest.ranking import RankedPaper

# a reader with no keywords but a model: "more like my library", the day's upvotes only a small prior
UPVOTES_WITHOUT_KEYWORDS = 0.2
BACKGROUND = 20  # unlabelled papers of the day a model learns from as weak negatives
NEAR_DISLIKED_PENALTY = 1.0  # a candidate very close to a disliked paper drops below every other


def trust(model: ReaderModel) -> float:
    """How far a model may move its reader's keyword ranking, 0–2: twice the share of their ratings that were
    dislikes, smoothed (one more like and dislike each). 1 when they disliked half of what they rated; for a
    reader who only ever liked, 2 / (n + 2): their near-duplicates still rise a little."""
    liked, disliked = len(model.liked), len(model.disliked)
    return 2.0 * (disliked + 1) / (liked + disliked + 2)


class PoolModels:
    """The day's pool as word vectors, for training readers' models and scoring the pool with them."""

    def __init__(self, pool: Sequence[Paper]) -> None:
        self.pool = pool
        # the pool's vectors as one sparse matrix (rows in order): ~2 MB for 2,000 papers where as many dicts
        # took ~25 MB in every compose worker; a paper's vector is read back when needed (`vector`)
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
        self._cols = np.array(cols, dtype=np.int32)
        self._vals = np.array(vals, dtype=np.float64)
        self._rows = np.repeat(np.arange(len(pool), dtype=np.int32), np.diff(self._indptr))
        self._position = {id(p): i for i, p in enumerate(pool)}
        self._by_id = {p.id: i for i, p in enumerate(pool)}
        self._first_seen = np.array([p.first_seen_at.timestamp() for p in pool])

    def vector(self, i: int) -> Vector:
        """Pool paper `i`'s vector, as `vectorize` made it."""
        lo, hi = int(self._indptr[i]), int(self._indptr[i + 1])
        terms = self._terms
        return {terms[c]: float(v) for c, v in zip(self._cols[lo:hi].tolist(), self._vals[lo:hi].tolist(), strict=True)}

    def train(self, examples: Sequence[Example], fingerprint: str, since: dt.datetime) -> ReaderModel | None:
        """A reader's model from their examples (the vectors of pool papers reused) and a few weak negatives."""
        vectors = [
            self.vector(self._by_id[e.paper_id]) if e.paper_id in self._by_id else vectorize(e.text) for e in examples
        ]
        background = [self.vector(i) for i in self._background(examples, fingerprint, since)]
        return train(examples, background, fingerprint, vectors)

    def probabilities(self, model: ReaderModel) -> np.ndarray:
        """The model's probability for every pool paper at once (a sparse product over the pool's words)."""
        weights = np.zeros(len(self._vocab) + 1)
        for term, w in model.weights.items():
            column = self._vocab.get(term)
            if column is not None:
                weights[column] = w
        z = np.bincount(self._rows, weights=weights[self._cols] * self._vals, minlength=len(self.pool)) + model.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))

    def rerank(
        self,
        keyword: Sequence[RankedPaper],
        model: ReaderModel,
        *,
        weight: float,
        has_keywords: bool,
        candidate: Callable[[Paper], bool],
        favourites: int,
        keep: int,
    ) -> tuple[list[RankedPaper], dict[int, tuple[float, str | None]]]:
        """`keyword` (the reader's keyword ranking, best first) plus up to `favourites` papers the model likes
        (p ≥ 0.5) that pass `candidate`, re-scored; the best `keep`. Also returns, by `id(paper)`, each one's
        probability and the liked paper it is closest to (for "because you liked …")."""
        probs = self.probabilities(model)
        top = max((r.score for r in keyword), default=0.0) or 1.0
        share, alpha = (1.0, weight * trust(model)) if has_keywords else (UPVOTES_WITHOUT_KEYWORDS, 1.0)
        candidates = {self._position[id(r.paper)]: (r.score / top, r) for r in keyword}
        added = 0
        for i in np.argsort(-probs, kind="stable").tolist():
            if added >= favourites or probs[i] < 0.5:
                break
            paper = self.pool[i]
            if i not in candidates and candidate(paper):
                candidates[i] = (0.0, RankedPaper(paper, 0.0))
                added += 1
        vectors = {i: self.vector(i) for i in candidates}
        scored = []
        for i, (relevance, r) in candidates.items():
            score = share * relevance + alpha * (2.0 * float(probs[i]) - 1.0)
            if model.near_disliked(vectors[i]):
                score -= NEAR_DISLIKED_PENALTY
            scored.append((score, r.paper.key, i, r))
        scored.sort(key=lambda s: (-s[0], s[1]))
        out, learned = [], {}
        for score, _, i, r in scored[:keep]:
            out.append(RankedPaper(r.paper, score, r.matched))
            learned[id(r.paper)] = (float(probs[i]), model.because(vectors[i]))
        return out, learned

    def _background(self, examples: Sequence[Example], fingerprint: str, since: dt.datetime) -> list[int]:
        """A few pool papers the reader said nothing about (positions): weak negatives for their model.
        Papers they could already have had come first, so that today's candidates are not taught as negatives
        (a reader's first digest has none of those: any unlabelled paper then); the same ones for the same
        training data."""
        labelled = {self._by_id.get(e.paper_id, -1) for e in examples}
        rng = random.Random(fingerprint)
        newer = self._first_seen >= since.timestamp()
        older = [i for i in np.flatnonzero(~newer).tolist() if i not in labelled]
        chosen = rng.sample(older, min(BACKGROUND, len(older)))
        if len(chosen) < BACKGROUND:
            today = [i for i in np.flatnonzero(newer).tolist() if i not in labelled]
            chosen += rng.sample(today, min(BACKGROUND - len(chosen), len(today)))
        return chosen
