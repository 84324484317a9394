"""Time composing digests: CSS inlined once per template at load time vs. inlined for every email.

Run: `.venv/bin/python benchmarks/compose_bench.py [--digests 200] [--papers 10]`; prints ms per message.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from digest.compose import Composer, DigestInfo
from digest.models import Paper
from digest.ranking import Match, RankedPaper

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
SENTENCE = "We study selective state space models for long-context sequence modelling at scale. "


def sample(papers: int) -> list[RankedPaper]:
    return [
        RankedPaper(
            Paper(
                key=f"k{i}",
                title=f"Selective State Space Models Meet Linear Attention, Part {i}",
                abstract=SENTENCE * 12,
                authors=[f"Author {j}" for j in range(6)],
                arxiv_id=f"2611.{i:05d}",
                url=f"https://huggingface.co/papers/2611.{i:05d}",
                upvotes=10 + i,
                comments=i,
                github_repo=f"https://github.com/org/repo-{i}",
                first_seen_at=NOW,
                last_seen_at=NOW,
            ),
            1.0,
            (Match("state space model", ("title", "abstract")),),
        )
        for i in range(papers)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--digests", type=int, default=200)
    parser.add_argument("--papers", type=int, default=10)
    args = parser.parse_args()
    ranked = sample(args.papers)
    for mode in ("load", "render"):
        start = time.perf_counter()
        composer = Composer(inline=mode)  # type: ignore[arg-type]
        setup = time.perf_counter() - start
        start = time.perf_counter()
        size = 0
        for n in range(args.digests):
            info = DigestInfo(f"user{n}@example.org", f"User {n}", NOW.date(), ["state space model"], "p@example.org")
            size = len(bytes(composer.compose(info, ranked, NOW)))
        per = (time.perf_counter() - start) / args.digests * 1000
        print(f"inline at {mode:6}: setup {setup * 1000:6.1f} ms, {per:6.2f} ms/message, {size} bytes/message")


if __name__ == "__main__":
    main()
