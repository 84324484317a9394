"""Ranking at scale: 2,000 papers × N subscribers, ours (`PaperIndex`) against a naive per-subscriber scan.

Papers are built from the shared corpus (real titles; abstracts re-mixed from its real sentences; skewed
upvotes; first seen over a week). Subscribers draw 1–5 keywords from a skewed (Zipf) vocabulary of ML topics
spelled the ways people write them (case, plurals, hyphens, weights); some add an exclude term, a few switch
synonyms off or give no keywords. Each (method, size) runs in its own process so peak RSS is its own.

    .venv/bin/python benchmarks/rank_scale.py                       # 1k and 10k subscribers
    .venv/bin/python benchmarks/rank_scale.py --sizes 1000,10000,100000

The naive scan re-tokenises each subscriber's keywords and counts every keyword in every paper (the same
field weights, exact phrases only). It is timed on at most --naive-sample subscribers and scaled linearly
(its cost per subscriber does not depend on how many there are); the table says when it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import random
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.identity import title_fingerprint  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.ranking import (  # noqa: E402  # noqa: E402  # noqa: E402
    NARROWER,
    SYNONYM_GROUPS,
    Interests,
    PaperIndex,
    RankedPaper,
    RankingParams,
    load_embedder,
    normalize,
    parse_keyword,
    tokens,
)
from digest.sources.file import read_file  # noqa: E402

N_PAPERS = 2000
TOPICS = (
    "transformer", "attention", "linear attention", "sparse attention", "flash attention", "LLM", "LLMs",
    "large language models", "language model", "small language models", "reasoning", "chain-of-thought",
    "agents", "LLM agents", "tool use", "RLHF", "DPO", "reward model", "alignment", "safety", "jailbreak",
    "red teaming", "hallucination", "interpretability", "mechanistic interpretability", "sparse autoencoders",
    "diffusion", "diffusion models", "flow matching", "text-to-image", "video generation", "3D generation",
    "NeRF", "gaussian splatting", "image segmentation", "object detection", "vision transformer", "ViT",
    "CLIP", "VLM", "multimodal", "speech recognition", "TTS", "audio generation", "music generation",
    "retrieval", "RAG", "embeddings", "dense retrieval", "reranking", "recommendation", "graph neural networks",
    "GNN", "knowledge graphs", "time series", "time-series forecasting", "anomaly detection", "quantization",
    "4-bit quantization", "low-bit", "pruning", "sparsity", "distillation", "knowledge distillation", "LoRA",
    "PEFT", "fine-tuning", "instruction tuning", "pretraining", "pre-training data", "data curation",
    "synthetic data", "scaling laws", "mixture of experts", "MoE", "state space models", "SSM", "mamba",
    "long context", "KV cache", "speculative decoding", "inference", "LLM inference", "serving", "efficient training",
    "distributed training", "federated learning", "differential privacy", "privacy", "unlearning",
    "machine unlearning", "robustness", "adversarial examples", "adversarial robustness", "calibration",
    "uncertainty quantification", "conformal prediction", "bayesian optimization", "gaussian processes",
    "causal inference", "causality", "reinforcement learning", "RL", "offline RL", "MDP", "bandits", "regret",
    "policy optimization", "robotics", "embodied AI", "world models", "autonomous driving", "code generation",
    "program synthesis", "math reasoning", "theorem proving", "benchmark", "evaluation", "tokenization",
    "optimizer", "Adam", "SGD", "convergence", "generalization", "neural tangent kernel", "optimal transport",
    "quantum computing", "quantum algorithms", "quantum machine learning", "physics-informed neural networks",
    "PINN", "neural operators", "weather forecasting", "protein", "drug discovery", "molecules", "medical imaging",
    "healthcare", "education", "fairness", "bias", "multilingual", "machine translation", "summarization",
    "question answering", "dialogue", "continual learning", "meta-learning", "few-shot learning",
    "self-supervised learning", "contrastive learning", "representation learning", "active learning",
    "semi-supervised learning", "domain adaptation", "out-of-distribution detection", "clustering",
    "dimensionality reduction", "kernel methods", "sampling", "MCMC", "variational inference", "VAE", "GAN",
    "energy-based models", "normalizing flows", "neural ODEs", "symbolic regression", "compression",
    "hardware", "GPU kernels", "compilers", "edge devices",
)  # fmt: skip
EXCLUDES = ("survey", "benchmark", "medical", "dataset", "position paper", "LLM", "quantum")


def corpus_papers(shared: Path, n: int, seed: int = 7) -> list[Paper]:
    """`n` papers: the corpus's distinct titles cycled, abstracts re-mixed from its sentences."""
    rng = random.Random(seed)
    records = {}
    for path in sorted((shared / "corpus").glob("*.txt")):
        for r in read_file(path, "corpus").records:
            records.setdefault(title_fingerprint(r.title), r)
    if not records:
        raise SystemExit(f"no corpus under {shared / 'corpus'}")
    titles = [r.title for r in records.values()]
    sentences = [s for r in records.values() for s in re.split(r"(?<=[.!?])\s+", r.abstract) if len(s) > 40]
    newest = dt.datetime(2025, 6, 8, 6, tzinfo=dt.UTC)
    papers = []
    for i in range(n):
        title = titles[i % len(titles)] + ("" if i < len(titles) else f" (part {i // len(titles) + 1})")
        seen = newest - dt.timedelta(minutes=rng.randrange(7 * 24 * 60))
        papers.append(
            Paper(
                id=i + 1,
                key=f"bench:{i:05d}",
                title=title,
                abstract=" ".join(rng.sample(sentences, rng.randint(5, 9))),
                keywords=rng.sample(TOPICS, rng.randint(0, 4)),
                upvotes=int(rng.paretovariate(1.2)) - 1,
                first_seen_at=seen,
                last_seen_at=seen,
            )
        )
    return papers


def vocabulary(papers: Sequence[Paper]) -> list[str]:
    """Topic list + table entries + the corpus's most frequent two-word phrases, most popular first."""
    words: list[str] = list(TOPICS)
    words += [g for group in SYNONYM_GROUPS for g in group] + [n for ns in NARROWER.values() for n in ns]
    bigrams: Counter[str] = Counter()
    for p in papers[:400]:
        toks = [t for t in normalize(p.title + " " + p.abstract).split() if len(t) > 3]
        bigrams.update(f"{a} {b}" for a, b in itertools.pairwise(toks))
    words += [b for b, _ in bigrams.most_common(300)]
    return list(dict.fromkeys(words))


def subscribers(n: int, vocab: Sequence[str], seed: int = 11) -> list[Interests]:
    """`n` subscribers with Zipf-skewed keyword choices (popular topics are shared by many)."""
    rng = random.Random(seed)
    zipf = [1 / (rank + 1) ** 1.1 for rank in range(len(vocab))]
    out = []
    for _ in range(n):
        if rng.random() < 0.03:
            out.append(Interests(max_papers=10))
            continue
        picked = list(dict.fromkeys(rng.choices(vocab, zipf, k=rng.randint(1, 5))))
        keywords = tuple(k + "^2" if rng.random() < 0.1 else k for k in picked)
        exclude = (rng.choice(EXCLUDES),) if rng.random() < 0.2 else ()
        out.append(Interests(keywords, exclude, max_papers=10, synonyms=rng.random() > 0.1))
    return out


Window = tuple[dt.datetime, frozenset[int]]


def windows(papers: Sequence[Paper], n: int, seed: int = 13) -> list[Window]:
    """Per-subscriber candidate windows like the pipeline's: first seen since their last digest, ids already sent."""
    rng = random.Random(seed)
    newest = max(p.first_seen_at for p in papers)
    return [
        (
            newest - dt.timedelta(days=rng.choice((1, 1, 1, 2, 3, 7))),
            frozenset(rng.sample(range(1, len(papers) + 1), 5)),
        )
        for _ in range(n)
    ]


class NaiveScan:
    """The baseline: every subscriber scans every paper for every keyword (exact phrases, same field weights)."""

    WEIGHTS: ClassVar[dict[str, float]] = {"title": 3.0, "keywords": 2.0, "abstract": 1.0}

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.papers = papers
        self.seen = [(p.first_seen_at.timestamp(), p.id) for p in papers]
        self.texts = [
            {
                "title": f" {' '.join(tokens(p.title))} ",
                "keywords": " | ".join(f" {' '.join(tokens(k))} " for k in p.keywords),
                "abstract": f" {' '.join(tokens(p.abstract))} ",
            }
            for p in papers
        ]

    def rank(self, interests: Interests, window: Window) -> list[RankedPaper]:
        terms = []
        for raw in interests.keywords:
            label, weight = parse_keyword(raw)
            terms.append((f" {' '.join(tokens(label))} ", weight))
        excludes = [f" {' '.join(tokens(parse_keyword(raw)[0]))} " for raw in interests.exclude]
        since, sent = window[0].timestamp(), window[1]
        scored = []
        for paper, text, (seen, pid) in zip(self.papers, self.texts, self.seen, strict=True):
            if seen < since or pid in sent or any(x in f for x in excludes for f in text.values()):
                continue
            score = sum(w * self.WEIGHTS[name] * f.count(t) for t, w in terms for name, f in text.items())
            if score > 0 or not terms:
                scored.append(RankedPaper(paper, score + paper.upvotes * 1e-6))
        scored.sort(key=lambda r: (-r.score, r.paper.key))
        return scored[: interests.max_papers]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(method: str, size: int, shared: Path, sample: int, semantic: float) -> dict[str, float]:
    """One (method, size) run in this process: wall and CPU seconds, and peak RSS."""
    papers = corpus_papers(shared, N_PAPERS)
    subs = subscribers(size, vocabulary(papers))
    wins = windows(papers, size)
    base_rss = peak_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    if method == "ours":
        index = PaperIndex(papers, RankingParams(semantic_weight=semantic))
        built_wall, built_cpu = time.perf_counter(), time.process_time()
        ran = size
        index.warm(subs)
        empty = sum(not index.rank(s, since=w[0], skip_ids=w[1]) for s, w in zip(subs, wins, strict=True))
    else:
        naive = NaiveScan(papers)
        built_wall, built_cpu = time.perf_counter(), time.process_time()
        ran = min(size, sample)
        empty = sum(not naive.rank(s, w) for s, w in zip(subs[:ran], wins[:ran], strict=True))
    done_wall, done_cpu = time.perf_counter(), time.process_time()
    scale = size / ran
    return {
        "build_s": built_wall - wall,
        "rank_s": (done_wall - built_wall) * scale,
        "total_s": built_wall - wall + (done_wall - built_wall) * scale,
        "cpu_s": built_cpu - cpu + (done_cpu - built_cpu) * scale,
        "per_sub_us": (done_cpu - built_cpu) / ran * 1e6,
        "measured": ran,
        "empty": empty / ran,
        "peak_rss_mb": peak_rss_mb(),
        "rss_over_base_mb": peak_rss_mb() - base_rss,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated subscriber counts")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--naive-sample", type=int, default=1000, help="subscribers the naive scan is timed on")
    parser.add_argument(
        "--semantic-weight",
        type=float,
        default=RankingParams().semantic_weight,
        help="ours with this semantic weight (0: lexical only; > 0 needs the digest[semantic] extra)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.worker[0], int(args.worker[1]), args.shared, args.naive_sample, args.semantic_weight)
        print(json.dumps(result))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    semantic = args.semantic_weight > 0 and load_embedder() is not None
    print(f"{N_PAPERS} papers; build = index (ours) or pre-tokenised texts (naive); rank = every subscriber")
    print(f"ours: semantic signal {f'on (weight {args.semantic_weight:g})' if semantic else 'off'}")
    print("speed-up = naive CPU seconds / ours CPU seconds (wall clock is noisy on a shared machine)\n")
    print("| subscribers | method | build s | rank s | wall s | CPU s | CPU µs / subscriber | peak RSS MB | speed-up |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    ok = True
    for size in sizes:
        rows = {}
        for method in ("ours", "naive"):
            cmd = [sys.executable, __file__, "--shared", str(args.shared), "--naive-sample", str(args.naive_sample)]
            cmd += ["--semantic-weight", str(args.semantic_weight)]
            out = subprocess.run([*cmd, "--worker", method, str(size)], capture_output=True, text=True, check=True)
            rows[method] = json.loads(out.stdout)
        speedup = rows["naive"]["cpu_s"] / rows["ours"]["cpu_s"]
        for method, r in rows.items():
            note = f" (timed on {int(r['measured']):,}, scaled)" if r["measured"] < size else ""
            print(
                f"| {size:,} | {method}{note} | {r['build_s']:.2f} | {r['rank_s']:.2f} | {r['total_s']:.2f} "
                f"| {r['cpu_s']:.2f} | {r['per_sub_us']:.0f} | {r['peak_rss_mb']:.0f} "
                f"| {f'{speedup:.0f}×' if method == 'ours' else ''} |"
            )
        if size == 10_000:
            ok = speedup >= 20
        empty = f"ours {rows['ours']['empty']:.1%}, naive {rows['naive']['empty']:.1%}"
        print(f"|  | empty digests: {empty} | | | | | | | |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
