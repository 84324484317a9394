"""The ranking index: built once per run over the candidate pool, it ranks many subscribers, sharing work.

Each distinct term's matches are computed once, with numpy over the pool's `Postings`; a subscriber's
ranking merges the cached arrays of their terms and filters them (exclusions, first-seen date, already
sent) without touching papers that did not match.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from digest.models import Paper
from digest.ranking._semantic import SentenceIndex, load_embedder
from digest.ranking._stats import FIELDS, NONE, DocStats, Postings, WindowStats, bm25_idf, paper_fields, same_phrases
from digest.ranking._terms import Interests, Term, compile_terms


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
    keyword_mix: float = 0.7
    semantic_weight: float = 0.1
    semantic_threshold: float = 0.35

    def field_weight(self, name: str) -> float:
        return {"title": self.title_weight, "keywords": self.keywords_weight, "abstract": self.abstract_weight}[name]


@dataclass(frozen=True, slots=True)
class Match:
    """A keyword that matched a paper, in which fields, through which table entry (`via`), and whether only in part.

    `semantic`: none of its words matched; the paper is there because a sentence of it (in `fields`) is close in
    meaning to the keyword (the optional semantic signal)."""

    term: str
    fields: tuple[str, ...]
    via: str | None = None
    partial: bool = False
    semantic: bool = False


@dataclass(frozen=True, slots=True)
class RankedPaper:
    paper: Paper
    score: float
    matched: tuple[Match, ...] = ()


@dataclass(slots=True)
class _Doc:
    paper: Paper
    fields: dict[str, list[str]]


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


_VARIANT_BITS = 1 << 16
# Explanation codes of papers only the semantic signal found: its best sentence is the title, or in the abstract.
_RELATED_TITLE, _RELATED_ABSTRACT = -1, -2
_FLOOR = 0.02
# Share of a multi-word keyword's score that comes from its words taken one by one (BM25F over each word,
# so how central they are to the paper counts), the rest from the phrase model; not a config key (yet).
WORD_WEIGHT = 0.4


def _merge(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum `values` per id: (sorted distinct ids, sums); cost grows with the matches only."""
    if not len(ids):
        return NONE, np.zeros(0)
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

    Its `Postings` keep, per field, token (and adjacent-pair) → papers with mention counts; idf comes from
    them too unless a wider window's statistics (`idf`) are given.
    """

    def __init__(
        self,
        papers: Sequence[Paper],
        params: RankingParams | None = None,
        idf: DocStats | None = None,
        sentences: SentenceIndex | None = None,
    ) -> None:
        """`sentences`: these same papers' sentences already embedded, in the index's order (`docs`), so many
        indexes over one pool (a benchmark's settings) embed them once."""
        self.params = params or RankingParams()
        self.docs: list[_Doc] = []
        for paper in sorted(papers, key=lambda p: (-p.first_seen_at.timestamp(), p.key)):
            self.docs.append(_Doc(paper, paper_fields(paper)))
        self.postings = Postings([d.fields for d in self.docs])
        self._postings = self.postings.lookup
        self.stats: DocStats = idf or self.postings
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
        self._sentences = sentences
        self._similar: dict[str, tuple[np.ndarray, np.ndarray]] = {}

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

    # ------------------------------------------------------------ per distinct term (cached)

    def term_scores(self, term: Term) -> tuple[np.ndarray, np.ndarray]:
        """A term's matches as (positions in `docs`, sorted; unweighted scores): for benchmarks built on the index."""
        found = self._term(term)
        return found.ids, found.scores

    def hits(self, term: Term) -> dict[int, Match]:
        """Papers this term counts for → where and how it matched (for inspection; ranking uses arrays)."""
        found = self._term(term)
        return {i: m for i in found.ids.tolist() if (m := self._explain(term, found, i)) is not None}

    def _term(self, term: Term) -> _TermHits:
        cached = self._hits.get(term.key)
        if cached is not None:
            return cached
        p = self.params
        idf = bm25_idf(self.stats.n, self.stats.df(same_phrases(term)))
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
        ids, total = _merge(np.concatenate(evidence_ids or [NONE]), np.concatenate(evidence or [np.zeros(0)]))
        k = p.tf_saturation
        scores = idf * (total * (k + 1) / (total + k) if k > 0 else total)
        words = next((v.phrase for v in term.variants if v.partial), ())
        if WORD_WEIGHT > 0 and words and len(ids):
            scores = (1 - WORD_WEIGHT) * scores + WORD_WEIGHT * self._word_scores(set(words), ids)
        codes = self._codes(ids, fields)
        sentences = self.sentence_index()
        if sentences is not None:
            ids, scores, codes = self._with_semantic(sentences, term, idf, ids, scores, codes)
        result = self._hits[term.key] = _TermHits(ids, scores, fields, codes)
        return result

    def warm(self, many: Iterable[Interests]) -> None:
        """Get ready to rank these subscribers: with the semantic signal on, their keywords not scored yet are
        compared with every sentence of the pool in a few matrix products, rather than one pass each."""
        sentences = self.sentence_index()
        if sentences is None:
            return
        labels = {
            t.label: None
            for interests in many
            for t in compile_terms(interests.keywords, interests.synonyms)
            if t.key not in self._hits
        }
        # kept for this batch only: its keywords are all scored (and cached in `_hits`) before the next one
        self._similar = dict(zip(labels, sentences.best_many(list(labels)), strict=True))

    def sentence_index(self) -> SentenceIndex | None:
        """The pool's sentences embedded (once, on first use) when the semantic signal is on and installed."""
        if self._sentences is None and self.params.semantic_weight > 0:
            embedder = load_embedder()
            if embedder is not None:
                self._sentences = SentenceIndex(embedder, [(d.paper.title, d.paper.abstract) for d in self.docs])
        return self._sentences

    def _with_semantic(
        self, sentences: SentenceIndex, term: Term, idf: float, ids: np.ndarray, scores: np.ndarray, codes: list[int]
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Add the semantic credit: semantic_weight × idf × (k1 + 1) × how far the paper's best sentence is above
        `semantic_threshold` (0 at the threshold, 1 at identical meaning), so a perfect sentence is worth
        semantic_weight of a saturated phrase match. Papers only it found get an explanation code of their own."""
        p = self.params
        warmed = self._similar.get(term.label)
        sims, in_title = warmed if warmed is not None else sentences.best(term.label)
        theta = min(p.semantic_threshold, 0.99)
        lift = np.clip((sims - theta) / (1 - theta), 0.0, None)
        saturation = p.tf_saturation + 1 if p.tf_saturation > 0 else 1.0
        credit = p.semantic_weight * idf * saturation * lift
        found = np.flatnonzero(credit > 0)
        if not len(found):
            return ids, scores, codes
        present = np.zeros(len(self.docs), dtype=bool)
        present[ids] = True
        present[found] = True
        merged = np.flatnonzero(present)
        at = np.searchsorted(merged, ids)
        total = credit[merged]
        total[at] += scores
        merged_codes = np.where(in_title[merged], _RELATED_TITLE, _RELATED_ABSTRACT)
        merged_codes[at] = codes
        return merged, total, merged_codes.tolist()

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
        ids = np.concatenate([r[0] for r in rows] or [NONE])
        quality = np.concatenate([r[1] for r in rows] or [np.zeros(0)])
        tf = np.concatenate([r[2] for r in rows] or [np.zeros(0)])
        variant = np.concatenate([np.full(len(r[0]), r[3]) for r in rows] or [NONE])
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
        candidates = np.unique(np.concatenate(rare or [NONE]))
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
        if match is None and code < 0:
            where = ("title",) if code == _RELATED_TITLE else ("abstract",)
            match = found.matches[code] = Match(term.label, where, None, partial=True, semantic=True)
        elif match is None:
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
            cached = self._excluded[term.key] = self.postings.docs_with_any(same)
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
        relevance = self._combine(ids_parts, value_parts, cutoff)
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

    def _combine(self, ids_parts: list[np.ndarray], value_parts: list[np.ndarray], cutoff: int) -> np.ndarray:
        """Each paper's relevance from its keyword scores: the best one plus `keyword_mix` × the others.

        A subscriber's keywords are alternatives: one strong match should not be outweighed by several weak
        ones, yet a paper on two of their interests still ranks above one on a single interest.
        """
        if len(ids_parts) == 1:
            return np.bincount(ids_parts[0], value_parts[0], minlength=cutoff)
        total = np.bincount(np.concatenate(ids_parts), np.concatenate(value_parts), minlength=cutoff)
        mix = self.params.keyword_mix
        if mix >= 1:
            return total
        best = np.zeros(cutoff)
        for ids, values in zip(ids_parts, value_parts, strict=True):
            best[ids] = np.maximum(best[ids], values)
        return np.asarray(mix * total + (1 - mix) * best)

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
