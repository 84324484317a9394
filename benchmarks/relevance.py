"""nDCG@10 and P@10 of our ranking and two baselines on the shared relevance judgments.

Ranks all distinct papers of `../shared/eval/`'s corpus (the three page dumps, deduplicated by title
fingerprint) for every profile, with: ours (`digest.ranking`), a substring count over title + abstract, and
BM25 (bm25s, English stopwords, Snowball stems) over title + abstract.

    .venv/bin/python benchmarks/relevance.py [--shared ../shared] [--no-synonyms] [--show PROFILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import Stemmer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.identity import title_fingerprint  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.ranking import Interests, PaperIndex, parse_keyword  # noqa: E402
from digest.sources.file import read_file  # noqa: E402

K = 10
Ranker = Callable[[Sequence[str]], list[int]]


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


def ours(corpus: Corpus, synonyms: bool = True) -> Ranker:
    index = PaperIndex(corpus.papers)
    position = {p.key: i for i, p in enumerate(corpus.papers)}

    def rank(keywords: Sequence[str]) -> list[int]:
        ranked = index.rank(Interests(tuple(keywords), max_papers=K, synonyms=synonyms))
        return [position[r.paper.key] for r in ranked]

    return rank


def substring(corpus: Corpus) -> Ranker:
    texts = [f"{p.title} {p.abstract}".lower() for p in corpus.papers]

    def rank(keywords: Sequence[str]) -> list[int]:
        terms = [parse_keyword(k)[0].lower() for k in keywords]
        counts = [sum(text.count(t) for t in terms) for text in texts]
        hits = [i for i, c in enumerate(counts) if c > 0]
        return sorted(hits, key=lambda i: (-counts[i], i))[:K]

    return rank


def bm25(corpus: Corpus) -> Ranker:
    stemmer = Stemmer.Stemmer("english")
    texts = [f"{p.title} {p.abstract}" for p in corpus.papers]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)

    def rank(keywords: Sequence[str]) -> list[int]:
        query = " ".join(parse_keyword(k)[0] for k in keywords)
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        docs, scores = retriever.retrieve(tokens, k=K, show_progress=False)
        return [int(d) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    return rank


def evaluate(
    rankers: dict[str, Ranker], corpus: Corpus, profiles: list[dict[str, object]], judgments: dict[str, dict[str, int]]
) -> dict[str, dict[str, tuple[float, float]]]:
    """ranker name → profile id → (nDCG@10, P@10)."""
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for name, ranker in rankers.items():
        rows: dict[str, tuple[float, float]] = {}
        for profile in profiles:
            pid = str(profile["id"])
            keywords = [str(k) for k in profile["keywords"]]  # type: ignore[attr-defined]
            grades = grades_for(corpus, judgments.get(pid, {}))
            ranking = ranker(keywords)
            rows[pid] = (ndcg_at_k(ranking, grades), precision_at_k(ranking, grades))
        results[name] = rows
    return results


def table(name: str, rows: dict[str, tuple[float, float]]) -> str:
    lines = [f"### {name}", "", "| profile | nDCG@10 | P@10 |", "|---|---:|---:|"]
    for pid, (ndcg, p) in rows.items():
        lines.append(f"| {pid} | {ndcg:.3f} | {p:.2f} |")
    mean_ndcg = sum(r[0] for r in rows.values()) / len(rows)
    mean_p = sum(r[1] for r in rows.values()) / len(rows)
    lines.append(f"| **mean** | **{mean_ndcg:.3f}** | **{mean_p:.2f}** |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--no-synonyms", action="store_true", help="rank ours with synonyms switched off")
    parser.add_argument("--show", metavar="PROFILE", help="print each ranker's top 10 for one profile")
    args = parser.parse_args(argv)

    corpus = load_corpus(args.shared / "corpus")
    profiles = json.loads((args.shared / "eval" / "profiles.json").read_text(encoding="utf-8"))
    judgments = json.loads((args.shared / "eval" / "judgments.json").read_text(encoding="utf-8"))
    rankers = {
        "ours": ours(corpus, synonyms=not args.no_synonyms),
        "substring": substring(corpus),
        "bm25": bm25(corpus),
    }
    print(f"{len(corpus.papers)} distinct papers, {len(profiles)} profiles\n")
    results = evaluate(rankers, corpus, profiles, judgments)
    for name, rows in results.items():
        print(table(name, rows), end="\n\n")
    means = {n: sum(r[0] for r in rows.values()) / len(rows) for n, rows in results.items()}
    print("mean nDCG@10: " + ", ".join(f"{n} {m:.3f}" for n, m in means.items()))
    if args.show:
        profile = next(p for p in profiles if p["id"] == args.show)
        grades = grades_for(corpus, judgments.get(args.show, {}))
        for name, ranker in rankers.items():
            print(f"\n{name} top {K} for {args.show} {profile['keywords']}:")
            top = ranker(profile["keywords"])
            for i in top:
                print(f"  [{grades[i]}] {corpus.papers[i].title[:110]}")
            missed = [i for i, g in enumerate(grades) if g and i not in top]
            print(f"  missed: {len(missed)} judged relevant, {sum(grades[i] == 2 for i in missed)} of grade 2")
    return 0 if means["ours"] > max(means["substring"], means["bm25"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
