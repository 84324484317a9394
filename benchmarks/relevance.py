"""nDCG@10 of our ranking against BM25 and BM25 + RM3 on the shared judgments, leave-one-profile-out first.

Ranks all distinct papers of `../shared/eval/`'s corpus (the three page dumps, deduplicated by title
fingerprint) for every profile. The headline is leave-one-profile-out (LOO): for each profile, every knob of a
ranker (ours: title weight, keyword mix, semantic weight and threshold; BM25: k1, b; RM3: feedback documents,
terms and the original query's weight) is chosen on the other profiles and the held-out one is scored with it.
Beside it: each ranker's mean at its defaults, per profile, and the LOO figure of each change to our ranking
with that change switched off (a change that helps the mean but not LOO is over-fitting).

BM25 is the issue's definition: bm25s (its tokenizer, no stopword list, Snowball English stems) over title +
abstract, the keywords joined as the query; `bm25+stop` is the same with bm25s's English stopwords (what this
script used before). RM3 is BM25 with relevance-model feedback (RM1 term weights from the first pass's top
documents, stopwords left out of the expansion, interpolated with the original query).

    .venv/bin/python benchmarks/relevance.py [--shared ../shared] [--quick] [--profiles N] [--show PROFILE]
                                             [--write benchmarks/RANKING.md]

`--quick` uses one setting per knob besides the defaults and is what the test suite runs on a few profiles.
Exit status 0 when ours meets the issue's targets (LOO ≥ BM25's LOO + 0.03, mean at defaults ≥ BM25's).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.identity import title_fingerprint  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.ranking import (  # noqa: E402
    Interests,
    PaperIndex,
    RankingParams,
    SentenceIndex,
    compile_terms,
    load_embedder,
    paper_fields,
    parse_keyword,
)
from digest.sources.file import read_file  # noqa: E402

K = 10
MARGIN = 0.03
STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)
Ranker = Callable[[Sequence[str]], list[int]]
Profiles = list[dict[str, Any]]
Judgments = dict[str, dict[str, int]]
Scores = dict[str, float]  # profile id → nDCG@10


@dataclass(frozen=True, slots=True)
class Corpus:
    """Distinct papers, and every title spelling each one was seen under."""

    papers: list[Paper]
    titles: list[set[str]]


def load_corpus(corpus_dir: Path) -> Corpus:
    """All distinct papers of the page dumps, deduplicated by title fingerprint (first spelling kept)."""
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    papers: list[Paper] = []
    titles: list[set[str]] = []
    by_key: dict[str, int] = {}
    for path in sorted(corpus_dir.glob("*.txt")):
        for record in read_file(path, "corpus").records:
            key = title_fingerprint(record.title)
            if key in by_key:
                titles[by_key[key]].add(record.title)
                continue
            by_key[key] = len(papers)
            papers.append(
                Paper(
                    id=len(papers) + 1,
                    key=f"title:{key}",
                    title=record.title,
                    abstract=record.abstract,
                    first_seen_at=when,
                    last_seen_at=when,
                )
            )
            titles.append({record.title})
    return Corpus(papers, titles)


def grades_for(corpus: Corpus, judged: dict[str, int]) -> list[int]:
    """Each paper's grade: the best judgment under any of its title spellings (0 when unjudged)."""
    return [max((judged.get(t, 0) for t in spellings), default=0) for spellings in corpus.titles]


def ndcg_at_k(ranking: Sequence[int], grades: Sequence[int], k: int = K) -> float:
    dcg = sum((2 ** grades[i] - 1) / math.log2(r + 2) for r, i in enumerate(ranking[:k]))
    ideal = sorted(grades, reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def precision_at_k(ranking: Sequence[int], grades: Sequence[int], k: int = K) -> float:
    return sum(1 for i in ranking[:k] if grades[i] >= 1) / k


def top_k(scores: np.ndarray, k: int = K) -> list[int]:
    """Positions of the k best positive scores, ties by position (deterministic)."""
    order = np.lexsort((np.arange(len(scores)), -np.round(scores, 9)))[:k]
    return [int(i) for i in order if scores[i] > 0]


# ---------------------------------------------------------------- ours


def ours(
    corpus: Corpus,
    synonyms: bool = True,
    params: RankingParams | None = None,
    sentences: SentenceIndex | None = None,
) -> Ranker:
    index = PaperIndex(corpus.papers, params, sentences=sentences)
    position = {p.key: i for i, p in enumerate(corpus.papers)}

    def rank(keywords: Sequence[str]) -> list[int]:
        ranked = index.rank(Interests(tuple(keywords), max_papers=K, synonyms=synonyms))
        return [position[r.paper.key] for r in ranked]

    return rank


class Feedback:
    """Pseudo-relevance feedback on top of our per-keyword scores (an experiment, not in digest): each keyword
    is expanded with the terms (RM1 weights × idf) of its top `docs` matches, worth `weight` × their BM25F."""

    def __init__(
        self, corpus: Corpus, params: RankingParams, synonyms: bool = True, sentences: SentenceIndex | None = None
    ) -> None:
        self.index = PaperIndex(corpus.papers, params, sentences=sentences)
        self.params, self.synonyms = params, synonyms
        position = {p.key: i for i, p in enumerate(corpus.papers)}
        self.order = np.array([position[d.paper.key] for d in self.index.docs])
        fields = [paper_fields(p) for p in corpus.papers]
        vocab: dict[str, int] = {}
        for f in fields:
            for tok in (*f["title"], *f["abstract"]):
                vocab.setdefault(tok, len(vocab))
        self.vocab = vocab
        n, v = len(fields), len(vocab)
        title, abstract = np.zeros((n, v)), np.zeros((n, v))
        for i, f in enumerate(fields):
            np.add.at(title[i], [vocab[t] for t in f["title"]], 1.0)
            np.add.at(abstract[i], [vocab[t] for t in f["abstract"]], 1.0)
        df = ((title + abstract) > 0).sum(axis=0)
        self.idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        length = abstract.sum(axis=1)
        avg = length[length > 0].mean()
        k1, b = params.tf_saturation, params.length_norm
        tf = params.title_weight * title + abstract / (1 - b + b * length / avg)[:, None]
        self.term_scores = self.idf * tf * (k1 + 1) / (tf + k1)
        self.mass = (title + abstract) / np.maximum((title + abstract).sum(axis=1, keepdims=True), 1.0)
        self.useless = np.array([len(t) <= 2 or t.isdigit() or t in STOPWORDS for t in vocab])

    def ranker(self, weight: float, docs: int = 5, terms: int = 10) -> Ranker:
        n = len(self.order)

        def rank(keywords: Sequence[str]) -> list[int]:
            rows = []
            for term in compile_terms(keywords, self.synonyms):
                ids, scores = self.index.term_scores(term)
                score = np.zeros(n)
                score[self.order[ids]] = scores * term.weight
                if weight > 0 and len(ids):
                    top = np.argsort(-score, kind="stable")[:docs]
                    top = top[score[top] > 0]
                    model = (score[top, None] / score[top].sum() * self.mass[top]).sum(axis=0) * self.idf
                    model[self.useless] = 0
                    for v in term.variants:
                        for tok in v.phrase:
                            if tok in self.vocab:
                                model[self.vocab[tok]] = 0
                    chosen = np.argsort(-model, kind="stable")[:terms]
                    chosen = chosen[model[chosen] > 0]
                    if len(chosen):
                        score = score + weight * self.term_scores[:, chosen] @ (model[chosen] / model[chosen].sum())
                rows.append(score)
            if not rows:
                return []
            matrix = np.array(rows)
            best = matrix.max(axis=0)
            return top_k(best + self.params.keyword_mix * (matrix.sum(axis=0) - best))

        return rank


# ---------------------------------------------------------------- baselines


class Bm25:
    """bm25s over title + abstract with Snowball stems; `stopwords` "en" drops bm25s's English list."""

    def __init__(self, corpus: Corpus, stopwords: str | None = None, k1: float = 1.5, b: float = 0.75) -> None:
        self.stemmer = Stemmer.Stemmer("english")
        self.stopwords = stopwords
        texts = [f"{p.title} {p.abstract}" for p in corpus.papers]
        tokenized = bm25s.tokenize(texts, stopwords=stopwords, stemmer=self.stemmer, show_progress=False)
        self.retriever = bm25s.BM25(k1=k1, b=b)
        self.retriever.index(tokenized, show_progress=False)
        self.vocab: dict[str, int] = dict(tokenized.vocab)
        self.n = len(texts)
        counts = np.zeros((self.n, len(self.vocab)))
        for i, ids in enumerate(tokenized.ids):
            np.add.at(counts[i], list(ids), 1.0)
        self.mass = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        self.names = sorted(self.vocab, key=self.vocab.__getitem__)
        self.useless = np.array([w in STOPWORDS or len(w) <= 2 or w.isdigit() for w in self.names])

    def query_tokens(self, keywords: Sequence[str]) -> list[str]:
        query = " ".join(parse_keyword(k)[0] for k in keywords)
        tokens = bm25s.tokenize([query], stopwords=self.stopwords, stemmer=self.stemmer, show_progress=False)
        names = {i: w for w, i in tokens.vocab.items()}
        return [names[i] for i in tokens.ids[0] if names[i] in self.vocab]

    def scores(self, weighted: dict[str, float]) -> np.ndarray:
        out = np.zeros(self.n)
        for token, weight in weighted.items():
            out += weight * np.asarray(self.retriever.get_scores([token]))
        return out

    def ranker(self) -> Ranker:
        def rank(keywords: Sequence[str]) -> list[int]:
            tokens = self.query_tokens(keywords)
            counts: dict[str, float] = {}
            for t in tokens:
                counts[t] = counts.get(t, 0.0) + 1.0
            return top_k(self.scores(counts))

        return rank

    def rm3(self, docs: int = 10, terms: int = 10, original: float = 0.5) -> Ranker:
        """RM3: RM1 weights from the top `docs` of the first pass, the best `terms` of them (stopwords and the
        query's own tokens aside) renormalised, interpolated with the original query at weight `original`."""

        def rank(keywords: Sequence[str]) -> list[int]:
            tokens = self.query_tokens(keywords)
            if not tokens:
                return []
            query = {t: tokens.count(t) / len(tokens) for t in tokens}
            first = self.scores(query)
            top = np.argsort(-first, kind="stable")[:docs]
            top = top[first[top] > 0]
            if not len(top):
                return top_k(first)
            model = (first[top, None] / first[top].sum() * self.mass[top]).sum(axis=0)
            model[self.useless] = 0
            for t in query:
                model[self.vocab[t]] = 0
            chosen = [int(i) for i in np.argsort(-model, kind="stable")[:terms] if model[i] > 0]
            total = sum(model[i] for i in chosen) or 1.0
            mixed = {t: original * w for t, w in query.items()}
            for i in chosen:
                mixed[self.names[i]] = mixed.get(self.names[i], 0.0) + (1 - original) * model[i] / total
            return top_k(self.scores(mixed))

        return rank


def substring(corpus: Corpus) -> Ranker:
    texts = [f"{p.title} {p.abstract}".lower() for p in corpus.papers]

    def rank(keywords: Sequence[str]) -> list[int]:
        terms = [parse_keyword(k)[0].lower() for k in keywords]
        counts = [sum(text.count(t) for t in terms) for text in texts]
        hits = [i for i, c in enumerate(counts) if c > 0]
        return sorted(hits, key=lambda i: (-counts[i], i))[:K]

    return rank


bm25: Callable[[Corpus], Ranker] = lambda corpus: Bm25(corpus).ranker()  # noqa: E731


# ---------------------------------------------------------------- scoring and leave-one-out


def evaluate(
    rankers: dict[str, Ranker], corpus: Corpus, profiles: Profiles, judgments: Judgments
) -> dict[str, dict[str, tuple[float, float]]]:
    """ranker name → profile id → (nDCG@10, P@10)."""
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for name, ranker in rankers.items():
        rows: dict[str, tuple[float, float]] = {}
        for profile in profiles:
            pid = str(profile["id"])
            grades = grades_for(corpus, judgments.get(pid, {}))
            ranking = ranker([str(k) for k in profile["keywords"]])
            rows[pid] = (ndcg_at_k(ranking, grades), precision_at_k(ranking, grades))
        results[name] = rows
    return results


def ndcgs(ranker: Ranker, corpus: Corpus, profiles: Profiles, judgments: Judgments) -> Scores:
    return {pid: r[0] for pid, r in evaluate({"r": ranker}, corpus, profiles, judgments)["r"].items()}


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True, slots=True)
class Loo:
    """Leave-one-profile-out: per held-out profile, its nDCG under the setting chosen on the others."""

    held: Scores
    chosen: dict[str, str]

    @property
    def mean(self) -> float:
        return mean(self.held.values())


def leave_one_out(table: dict[str, Scores]) -> Loo:
    """For each profile, the setting with the best mean on all other profiles (ties: the earlier setting, the
    defaults come first), and the held-out profile's score under it."""
    settings = list(table)
    pids = list(table[settings[0]])
    held, chosen = {}, {}
    for pid in pids:
        best = max(settings, key=lambda s: round(sum(v for p, v in table[s].items() if p != pid), 9))
        held[pid], chosen[pid] = table[best][pid], best
    return Loo(held, chosen)


@dataclass(frozen=True, slots=True)
class Grid:
    """The settings leave-one-out chooses from, the defaults first."""

    ours: dict[str, tuple[Any, ...]]
    bm25: dict[str, tuple[float, ...]]
    rm3: dict[str, tuple[float, ...]]
    feedback: tuple[float, ...]


FULL = Grid(
    ours={
        "title_weight": (3.0, 1.5, 2.0),
        "keyword_mix": (0.7, 0.3, 0.5, 1.0),
        "semantic_weight": (0.1, 0.0, 0.2, 0.3),
        "semantic_threshold": (0.35, 0.3, 0.4),
    },
    bm25={"k1": (1.5, 0.9, 1.2, 2.0), "b": (0.75, 0.5, 1.0)},
    rm3={"docs": (10, 5), "terms": (10, 20), "original": (0.5, 0.3, 0.7)},
    feedback=(0.0, 0.1, 0.2, 0.3),
)
QUICK = Grid(
    ours={
        "title_weight": (3.0,),
        "keyword_mix": (0.7, 1.0),
        "semantic_weight": (0.1, 0.0),
        "semantic_threshold": (0.35,),
    },
    bm25={"k1": (1.5,), "b": (0.75, 1.0)},
    rm3={"docs": (10,), "terms": (10,), "original": (0.5,)},
    feedback=(0.0, 0.2),
)


def settings_of(space: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(space, combo, strict=True)) for combo in itertools.product(*space.values())]


def label(setting: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float | int) else f"{k} {v}" for k, v in setting.items())


class Study:
    """Every ranker scored on every profile under every setting of its grid, then leave-one-out."""

    def __init__(self, corpus: Corpus, profiles: Profiles, judgments: Judgments, grid: Grid) -> None:
        self.corpus, self.profiles, self.judgments, self.grid = corpus, profiles, judgments, grid
        embedder = load_embedder()
        self.semantic = embedder is not None
        self.sentences: SentenceIndex | None = None
        if embedder is not None:
            order = PaperIndex(corpus.papers).docs
            self.sentences = SentenceIndex(embedder, [(d.paper.title, d.paper.abstract) for d in order])

    def score(self, ranker: Ranker) -> Scores:
        return ndcgs(ranker, self.corpus, self.profiles, self.judgments)

    def ours_table(self, synonyms: bool = True, **pinned: Any) -> dict[str, Scores]:
        """Our grid (knobs in `pinned` held at one value; the semantic ones at 0 without the extra)."""
        space = {k: (pinned[k],) if k in pinned else v for k, v in self.grid.ours.items()}
        if not self.semantic:
            space["semantic_weight"], space["semantic_threshold"] = (0.0,), space["semantic_threshold"][:1]
        table: dict[str, Scores] = {}
        for setting in settings_of(space):
            if setting["semantic_weight"] == 0 and setting["semantic_threshold"] != space["semantic_threshold"][0]:
                continue  # the threshold of a signal that is off changes nothing
            params = dataclasses.replace(RankingParams(), **setting)
            table[label(setting)] = self.score(ours(self.corpus, synonyms, params, self.sentences))
        return table

    def bm25_table(self) -> dict[str, Scores]:
        return {
            label(s): self.score(Bm25(self.corpus, k1=s["k1"], b=s["b"]).ranker()) for s in settings_of(self.grid.bm25)
        }

    def rm3_table(self) -> dict[str, Scores]:
        base = Bm25(self.corpus)
        return {label(s): self.score(base.rm3(**s)) for s in settings_of(self.grid.rm3)}

    def feedback_table(self) -> dict[str, Scores]:
        """Feedback on top of our defaults (weight 0 is the defaults themselves), its weight chosen by LOO."""
        params = RankingParams() if self.semantic else RankingParams(semantic_weight=0.0)
        fb = Feedback(self.corpus, params, sentences=self.sentences)
        return {f"feedback {w:g}": self.score(fb.ranker(w)) for w in self.grid.feedback}


# ---------------------------------------------------------------- report


def report(study: Study) -> tuple[str, dict[str, float]]:
    """The markdown tables, and the headline figures."""
    pids = [str(p["id"]) for p in study.profiles]
    full = study.ours_table()
    defaults = next(iter(full))  # the first setting: every knob at its default (semantic off without the extra)
    loo = leave_one_out(full)
    bm25_grid = study.bm25_table()
    bm25_loo = leave_one_out(bm25_grid)
    bm25_plain = bm25_grid[label({k: v[0] for k, v in study.grid.bm25.items()})]
    bm25_stop = study.score(Bm25(study.corpus, stopwords="en").ranker())
    rm3_loo = leave_one_out(study.rm3_table())
    rm3_plain = study.score(Bm25(study.corpus).rm3())
    ours_default = full[defaults]
    chosen = list(loo.chosen.values())
    usual = max(dict.fromkeys(chosen), key=chosen.count)

    columns: list[tuple[str, Scores]] = [("ours LOO", loo.held), ("ours defaults", ours_default)]
    if usual != defaults:
        columns.append(("ours, LOO's usual setting", full[usual]))
    columns += [
        ("BM25", bm25_plain),
        ("BM25 LOO (k1, b)", bm25_loo.held),
        ("bm25+stop", bm25_stop),
        ("RM3", rm3_plain),
        ("RM3 LOO", rm3_loo.held),
    ]
    lines = ["| profile | " + " | ".join(c for c, _ in columns) + " |", "|---|" + "---:|" * len(columns)]
    for pid in pids:
        lines.append(f"| {pid} | " + " | ".join(f"{col[pid]:.3f}" for _, col in columns) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{mean(col.values()):.3f}**" for _, col in columns) + " |")
    if len(pids) > 10:
        first, rest = pids[:10], pids[10:]
        lines.append(
            f"| first {len(first)} | " + " | ".join(f"{mean(col[p] for p in first):.3f}" for _, col in columns) + " |"
        )
        lines.append(
            f"| last {len(rest)} | " + " | ".join(f"{mean(col[p] for p in rest):.3f}" for _, col in columns) + " |"
        )
    table = "\n".join(lines)

    changes = [("all knobs free (the headline)", loo.mean, mean(ours_default.values()))]
    pinned = {
        "keyword mix pinned at 1 (the old plain sum)": {"keyword_mix": 1.0},
        "title weight pinned at 3 (the old default)": {"title_weight": 3.0},
        "title weight pinned at 1.5": {"title_weight": 1.5},
    }
    if study.semantic:
        pinned["semantic signal off"] = {"semantic_weight": 0.0}
    for name, pins in pinned.items():
        sub = study.ours_table(**pins)
        changes.append((name, leave_one_out(sub).mean, mean(sub[next(iter(sub))].values())))
    no_syn = study.ours_table(synonyms=False)
    changes.append(("synonym table off", leave_one_out(no_syn).mean, mean(no_syn[next(iter(no_syn))].values())))
    feedback = study.feedback_table()
    changes.append(
        (
            "our defaults + pseudo-relevance feedback (its weight by LOO)",
            leave_one_out(feedback).mean,
            mean(feedback[next(iter(feedback))].values()),
        )
    )
    change_lines = ["| variant | LOO nDCG@10 | mean at its first setting |", "|---|---:|---:|"]
    change_lines += [f"| {name} | {a:.3f} | {b:.3f} |" for name, a, b in changes]

    picked: dict[str, int] = {}
    for s in loo.chosen.values():
        picked[s] = picked.get(s, 0) + 1
    picks = "; ".join(f"{s} ({n}×)" for s, n in sorted(picked.items(), key=lambda kv: -kv[1]))
    figures = {
        "ours_loo": loo.mean,
        "ours_mean": mean(ours_default.values()),
        "bm25_mean": mean(bm25_plain.values()),
        "bm25_loo": bm25_loo.mean,
        "rm3_loo": rm3_loo.mean,
    }
    headline = (
        f"ours LOO {loo.mean:.3f} (mean at defaults {mean(ours_default.values()):.3f}); "
        f"BM25 {mean(bm25_plain.values()):.3f} (LOO {bm25_loo.mean:.3f}); "
        f"RM3 {mean(rm3_plain.values()):.3f} (LOO {rm3_loo.mean:.3f}); bm25+stop {mean(bm25_stop.values()):.3f}"
    )
    text = "\n\n".join(
        [
            f"{len(study.corpus.papers)} distinct papers, {len(pids)} profiles, semantic extra "
            f"{'installed' if study.semantic else 'not installed'}; {headline}",
            f"Our defaults: {defaults}. Settings LOO chose: {picks}.",
            table,
            "Each change, with leave-one-out over the rest of the grid:",
            "\n".join(change_lines),
        ]
    )
    return text, figures


BEGIN, END = "<!-- relevance:begin -->", "<!-- relevance:end -->"


def write_section(path: Path, text: str) -> None:
    """Replace what stands between the markers in `path` with `text`."""
    doc = path.read_text(encoding="utf-8")
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--quick", action="store_true", help="a small grid (what the test suite runs)")
    parser.add_argument("--profiles", type=int, default=0, help="only the first N profiles")
    parser.add_argument("--show", metavar="PROFILE", help="print each ranker's top 10 for one profile")
    parser.add_argument("--write", type=Path, help="replace the marked section of this file with the tables")
    args = parser.parse_args(argv)

    corpus = load_corpus(args.shared / "corpus")
    profiles = json.loads((args.shared / "eval" / "profiles.json").read_text(encoding="utf-8"))
    judgments = json.loads((args.shared / "eval" / "judgments.json").read_text(encoding="utf-8"))
    if args.profiles:
        profiles = profiles[: args.profiles]
    if args.show:
        show(corpus, profiles, judgments, args.show)
        return 0
    text, figures = report(Study(corpus, profiles, judgments, QUICK if args.quick else FULL))
    print(text)
    if args.write:
        write_section(args.write, text)
    met = figures["ours_loo"] >= figures["bm25_loo"] + MARGIN and figures["ours_mean"] >= figures["bm25_mean"]
    return 0 if met else 1


def show(corpus: Corpus, profiles: Profiles, judgments: Judgments, pid: str) -> None:
    """Each ranker's top 10 for one profile, with grades, and how many relevant papers it missed."""
    profile = next(p for p in profiles if p["id"] == pid)
    grades = grades_for(corpus, judgments.get(pid, {}))
    rankers = {"ours": ours(corpus), "bm25": bm25(corpus), "rm3": Bm25(corpus).rm3()}
    for name, ranker in rankers.items():
        print(f"\n{name} top {K} for {pid} {profile['keywords']}:")
        top = ranker(profile["keywords"])
        for i in top:
            print(f"  [{grades[i]}] {corpus.papers[i].title[:110]}")
        missed = [i for i, g in enumerate(grades) if g and i not in top]
        print(f"  missed: {len(missed)} judged relevant, {sum(grades[i] == 2 for i in missed)} of grade 2")


if __name__ == "__main__":
    raise SystemExit(main())
