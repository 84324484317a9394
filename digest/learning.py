"""A model per reader, learnt from what they told us: "more like this" and their library count as liked,
"less like this" as disliked, and a few unlabelled papers of the day as weak negatives.

The model is a logistic regression over the words of title and abstract (sublinear term counts, unit length),
recent feedback weighing more than old. It is small (its strongest words, and short vectors of the papers it
learnt from, for explanations and for sinking papers close to a disliked one) and plain data, so it can be
stored and passed to worker processes. Pure functions: texts and labels in, a model out (`reranking`
scores a day's pool with it).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from digest.ranking import tokens

HALF_LIFE_DAYS = 60.0  # feedback this old counts half
LIBRARY_WEIGHT = 0.7  # a library paper: liked, but as of whenever it was kept
WEAK_NEGATIVE_WEIGHT = 0.25  # an unlabelled paper of the day: probably not what the reader wants
WEIGHTS_KEPT = 400
VECTOR_KEPT = 40
KEPT_EXAMPLES = 30  # liked and disliked papers a model keeps for explanations and sinking
L2 = 0.1
NEAR_DISLIKED = 0.5  # cosine at which a candidate counts as "very close" to a disliked paper
EXPLAIN_LIKED = 0.2  # cosine from which "because you liked …" is said

# function words carry no interest; the ranking's tokens keep them (phrases need them)
_FUNCTION_WORDS = """
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves via
    using use used based new show shows shown paper propose proposed approach method methods results result
    work
"""
STOPWORDS = frozenset(_FUNCTION_WORDS.split())
_STOP_STEMS = frozenset(tokens(" ".join(STOPWORDS)))

Vector = dict[str, float]
_STORED = b"digest-model/1\n"  # what `ReaderModel.to_bytes` starts with (models stored before are JSON)


def vectorize(text: str) -> Vector:
    """A text's words (stemmed, no function words) with sublinear counts, scaled to unit length."""
    counts = Counter(t for t in tokens(text) if t not in _STOP_STEMS and len(t) > 1 and not t.isdigit())
    weights = {t: 1.0 + math.log(c) for t, c in counts.items()}
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    return {t: w / norm for t, w in weights.items()}


def _top(vector: Vector, keep: int) -> Vector:
    if len(vector) <= keep:
        return vector
    return dict(sorted(vector.items(), key=lambda kv: -abs(kv[1]))[:keep])


@dataclass(frozen=True, slots=True)
class Example:
    """A paper the reader judged: its text, +1 liked or −1 disliked, how much it counts, its id, and whether
    it is a rating of a digest's paper (a library paper is liked, but rates no ranking)."""

    text: str
    label: int
    weight: float
    title: str = ""
    paper_id: int | None = None
    rated: bool = True


@dataclass(frozen=True)
class ReaderModel:
    """What one reader's feedback taught: word weights and a bias (the logistic regression), the papers they
    liked (title and a short vector, for "because you liked …"), the ones they disliked, and how many of
    their digests' papers they rated liked and disliked."""

    weights: dict[str, float]
    bias: float
    liked: tuple[tuple[str, Vector], ...]
    disliked: tuple[Vector, ...]
    disliked_ids: frozenset[int]
    fingerprint: str = ""
    ratings: tuple[int, int] = (0, 0)

    def closest_liked(self, similarities: Sequence[float]) -> str | None:
        """The title of the liked paper a paper is most similar to (`similarities`: its cosine with each of
        `liked`, in order; the latest liked on a tie), when close enough to say so."""
        best = max(range(len(similarities)), key=lambda i: (similarities[i], i), default=None)
        return self.liked[best][0] if best is not None and similarities[best] >= EXPLAIN_LIKED else None

    def to_json(self) -> dict[str, object]:
        return {
            "weights": self.weights,
            "bias": self.bias,
            "liked": [[t, v] for t, v in self.liked],
            "disliked": list(self.disliked),
            "disliked_ids": sorted(self.disliked_ids),
            "fingerprint": self.fingerprint,
            "ratings": list(self.ratings),
        }

    def to_bytes(self) -> bytes:
        """The model as stored: a small JSON head, then every word of its weights and kept vectors (a line each)
        and their values (float64). Writing and reading it costs a fraction of JSON's float formatting."""
        vectors = [self.weights, *(v for _, v in self.liked), *self.disliked]
        sizes = [len(v) for v in vectors]
        head = json.dumps(
            {
                "bias": self.bias,
                "liked": [title for title, _ in self.liked],
                "sizes": sizes,
                "disliked_ids": sorted(self.disliked_ids),
                "fingerprint": self.fingerprint,
                "ratings": list(self.ratings),
            }
        ).encode()
        words = "\n".join(chain.from_iterable(vectors)).encode()
        values = np.fromiter(chain.from_iterable(v.values() for v in vectors), dtype="<f8", count=sum(sizes))
        return b"".join((_STORED, struct.pack("<II", len(head), len(words)), head, words, values.tobytes()))

    @classmethod
    def from_bytes(cls, data: bytes) -> ReaderModel:
        """A model as `to_bytes` stored it, or as JSON (`to_json`), as models were stored before."""
        if not data.startswith(_STORED):
            return cls.from_json(json.loads(data))
        start = len(_STORED) + 8
        head_size, words_size = struct.unpack_from("<II", data, len(_STORED))
        head = json.loads(data[start : start + head_size])
        start += head_size
        words = data[start : start + words_size].decode().split("\n") if words_size else []
        values = np.frombuffer(data, dtype="<f8", offset=start + words_size).tolist()
        vectors, at = [], 0
        for size in head["sizes"]:
            vectors.append(dict(zip(words[at : at + size], values[at : at + size], strict=True)))
            at += size
        titles = head["liked"]
        return cls(
            vectors[0],
            float(head["bias"]),
            tuple(zip(titles, vectors[1 : 1 + len(titles)], strict=True)),
            tuple(vectors[1 + len(titles) :]),
            frozenset(int(i) for i in head["disliked_ids"]),
            str(head["fingerprint"]),
            (int(head["ratings"][0]), int(head["ratings"][1])),
        )

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ReaderModel:
        liked = data.get("liked") or []
        disliked = data.get("disliked") or []
        ids = data.get("disliked_ids") or []
        assert isinstance(liked, list) and isinstance(disliked, list) and isinstance(ids, list)
        weights = data.get("weights") or {}
        ratings = data.get("ratings") or [len(liked), len(disliked)]  # a model stored before ratings were counted
        assert isinstance(weights, dict) and isinstance(ratings, list)
        return cls(
            {str(k): float(v) for k, v in weights.items()},
            float(data.get("bias") or 0.0),  # type: ignore[arg-type]
            tuple((str(t), {str(k): float(x) for k, x in v.items()}) for t, v in liked),
            tuple({str(k): float(x) for k, x in v.items()} for v in disliked),
            frozenset(int(i) for i in ids),
            str(data.get("fingerprint") or ""),
            (int(ratings[0]), int(ratings[1])),
        )


def recency(age_days: float) -> float:
    """How much a judgement counts by its age: 1 today, half after `HALF_LIFE_DAYS`."""
    return 0.5 ** (max(age_days, 0.0) / HALF_LIFE_DAYS)


def fingerprint(parts: Iterable[object]) -> str:
    """A short digest of what a model was trained on: rebuilt only when it changes."""
    return hashlib.sha256(repr(tuple(parts)).encode()).hexdigest()[:16]


def train(
    examples: Sequence[Example], background: Sequence[Vector], stamp: str = "", vectors: Sequence[Vector] | None = None
) -> ReaderModel | None:
    """A logistic regression of liked (+1) against disliked and `background` papers (weak negatives), L2-
    regularised, solved exactly. `vectors` may give the examples' vectors when the caller has them. None
    without a single liked or disliked example (nothing to learn from: the ranking stays as it was)."""
    pairs = [
        (e, v)
        for e, v in zip(examples, vectors or [vectorize(e.text) for e in examples], strict=True)
        if e.label in (1, -1) and v
    ]
    if not pairs:
        return None
    rows = [v for _, v in pairs] + [v for v in background if v]
    vocab: dict[str, int] = {}
    for v in rows:
        for t in v:
            vocab.setdefault(t, len(vocab))
    x = np.zeros((len(rows), len(vocab)))
    for r, v in enumerate(rows):
        for t, w in v.items():
            x[r, vocab[t]] = w
    names = list(vocab)
    return fit(pairs, x, lambda cols: [names[c] for c in cols], stamp)


def fit(
    judged: Sequence[tuple[Example, Vector]],
    x: np.ndarray,
    words: Callable[[list[int]], list[str]],
    stamp: str = "",
) -> ReaderModel:
    """The model from its design matrix `x`: one row per judged example (in order, each with its vector), then
    one per weak negative; one column per word, `words` naming the columns asked (only the kept ones are).

    With a few dozen examples over thousands of words, the problem is solved in the examples' span (see
    `_fit`): a Newton step is a solve of size examples + 1, and a model takes well under a millisecond."""
    n = len(judged)
    labels = np.array([1.0 if e.label > 0 else 0.0 for e, _ in judged] + [0.0] * (len(x) - n))
    weights = np.array([e.weight for e, _ in judged] + [WEAK_NEGATIVE_WEIGHT] * (len(x) - n))
    coef, bias = _fit(x, labels, weights / weights.sum() * len(weights), L2)
    strongest = np.argsort(-np.abs(coef), kind="stable")[:WEIGHTS_KEPT]
    kept = np.round(coef[strongest], 5)
    strongest, kept = strongest[kept != 0], kept[kept != 0]
    liked = tuple((e.title or e.text[:120], _top(v, VECTOR_KEPT)) for e, v in judged if e.label > 0)
    disliked = tuple(_top(v, VECTOR_KEPT) for e, v in judged if e.label < 0)
    disliked_ids = frozenset(e.paper_id for e, _ in judged if e.label < 0 and e.paper_id is not None)
    return ReaderModel(
        dict(zip(words(strongest.tolist()), kept.tolist(), strict=True)),
        round(bias, 5),
        liked[-KEPT_EXAMPLES:],
        disliked[-KEPT_EXAMPLES:],
        disliked_ids,
        stamp,
        (sum(e.rated and e.label > 0 for e, _ in judged), sum(e.rated and e.label < 0 for e, _ in judged)),
    )


def _fit(x: np.ndarray, y: np.ndarray, s: np.ndarray, l2: float, iterations: int = 30) -> tuple[np.ndarray, float]:
    """Minimise mean(s · logloss(y, x w + b)) + l2 / (2n) · |w|² by Newton's method with backtracking; returns
    (w, b). The optimal w lies in the span of the examples (x's rows), so the problem is solved in an
    orthonormal basis of it, read off the examples' Gram matrix: at most as many unknowns as examples however
    many words, and a positive definite Hessian (a plain solve). The unknowns are the basis' coefficients and
    the bias, one vector, so a step moves the scores by one product and a backtrack costs no other."""
    n = len(y)
    eigenvalues, vectors = np.linalg.eigh(x @ x.T)
    kept = eigenvalues > 1e-10 * max(float(eigenvalues[-1]), 1.0)  # duplicate examples add no direction
    scale = np.sqrt(eigenvalues[kept])
    m = int(kept.sum())
    design = np.empty((n, m + 1))  # the examples' coordinates in the basis (f fᵀ = x xᵀ), then 1 for the bias
    np.multiply(vectors[:, kept], scale, out=design[:, :m])
    design[:, m] = 1.0
    ridge = np.full(m + 1, l2 / n)
    ridge[m] = 0.0
    sn = s / n
    theta, z = np.zeros(m + 1), np.zeros(n)

    def loss(theta: np.ndarray, z: np.ndarray) -> float:
        return float(sn @ (np.logaddexp(0.0, z) - y * z) + 0.5 * (ridge @ (theta * theta)))

    current = loss(theta, z)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
        grad = design.T @ (sn * (p - y)) + ridge * theta
        hessian = (design.T * (sn * p * (1.0 - p))) @ design
        hessian[np.diag_indices(m + 1)] += ridge
        try:
            step = np.linalg.solve(hessian, grad)
        except np.linalg.LinAlgError:  # only when every example has weight 0 on the bias: nothing left to fit
            break
        moved, t, slope = design @ step, 1.0, float(grad @ step)
        while t > 1e-6:
            tried = loss(theta - t * step, z - t * moved)
            if tried <= current - 1e-4 * t * slope:
                break
            t /= 2
        else:
            break
        theta, z = theta - t * step, z - t * moved
        done = current - tried < 1e-10
        current = tried
        if done:
            break
    return x.T @ (vectors[:, kept] @ (theta[:m] / scale)), float(theta[m])
