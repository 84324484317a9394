"""Does feedback make tomorrow's digest better? Measured through the real CLI on `../shared/eval/`.

For each profile and seed: the corpus's distinct papers are split in two days at random. Day 1's half is
fetched and sent (`digest send`); the reader rates the top 10 of that digest from the judgments (grade ≥ 1 →
`digest feedback --more`, 0 → `--less`); day 2's half is fetched; `digest preview --format json --date <day 2>`
ranks it, scored with nDCG@10 against day 2's judgments. The same runs without the feedback step are the
baseline, and a third variant seeds a BibTeX library with 3 judged-relevant day-1 papers instead of feedback.

The feedback runs are repeated for each `[ranking] feedback_weight` in `--weights` (the same day 1, ratings
and day 2), and the weight is also chosen leave-one-profile-out: for each profile, the weight with the best
mean lift on the other profiles among those that lower none of them by more than 0.01 (the issue's two
bounds), scored on it. The JSON line's `lift_feedback` is at the configured default.

    .venv/bin/python benchmarks/feedback.py [--seeds 5] [--weights 0.1,0.2] [--jobs 2] [--profiles a,b]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.relevance import Corpus, grades_for, load_corpus, ndcg_at_k  # noqa: E402
from digest.cli import app  # noqa: E402
from digest.config import RankingConfig  # noqa: E402

HARM = 0.01  # the most feedback may lower any profile's day-2 nDCG@10 (the bound)
CONFIG = """
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
trending = 0
[[sources]]
name = "day"
type = "file"
path = "day.jsonl"
[[subscribers]]
email = "reader@example.org"
keywords = {keywords}
max_papers = 10
{library}
"""


def _cli(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(app, ["--config", str(config), *args], env=env)
    if result.exit_code != 0:
        raise SystemExit(f"digest {' '.join(args)} failed: {result.output}")
    return result.stdout


def _write_day(folder: Path, papers: list[int], corpus: Corpus) -> None:
    with (folder / "day.jsonl").open("w", encoding="utf-8") as out:
        for i in papers:
            p = corpus.papers[i]
            out.write(json.dumps({"title": p.title, "summary": p.abstract}) + "\n")


def _bibtex(papers: list[int], corpus: Corpus) -> str:
    entries = []
    for n, i in enumerate(papers):
        p = corpus.papers[i]
        title, abstract = (s.replace("{", "(").replace("}", ")") for s in (p.title, p.abstract))
        entries.append(
            f"@article{{seed{n},\n  title = {{{title}}},\n  abstract = {{{abstract}}},\n  year = {{2025}}\n}}"
        )
    return "\n\n".join(entries) + "\n"


def _preview(config: Path, *args: str, env: dict[str, str] | None = None) -> list[dict[str, object]]:
    out = _cli(config, "preview", "--format", "json", "--no-fetch", *args, env=env)
    papers = json.loads(out[: out.rindex("}") + 1])["papers"]
    assert isinstance(papers, list)
    return papers


def _day1(folder: Path, corpus: Corpus, keywords: list[str], day1: list[int], library: str = "") -> Path:
    """Day 1 fetched and sent in `folder`; returns the config path and leaves the digest's papers in `first`."""
    config = folder / "digest.toml"
    config.write_text(CONFIG.format(keywords=json.dumps(keywords), library=library))
    _write_day(folder, day1, corpus)
    _cli(config, "fetch")
    (folder / "first.json").write_text(json.dumps(_preview(config)))
    _cli(config, "send", "--no-fetch")
    return config


def _fetch(config: Path, corpus: Corpus, papers: list[int]) -> None:
    _write_day(config.parent, papers, corpus)
    _cli(config, "fetch")


def _ranked(config: Path, corpus: Corpus, day2: list[int], env: dict[str, str] | None = None) -> list[int]:
    """Tomorrow's preview as positions in `day2` of the papers it holds, in order."""
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    second = _preview(config, "--date", tomorrow, env=env)
    by_title = {corpus.papers[i].title: i for i in range(len(corpus.papers))}
    position = {i: n for n, i in enumerate(day2)}
    return [position[by_title[str(p["title"])]] for p in second if by_title.get(str(p["title"])) in position]


def run(task: tuple[Corpus, list[str], list[int], int, tuple[float, ...]]) -> dict[str, float]:
    """Day 2's nDCG@10 for one profile and seed: without feedback, with it at each weight, with a library."""
    corpus, keywords, grades, seed, weights = task
    rng = random.Random(seed)
    order = list(range(len(corpus.papers)))
    rng.shuffle(order)
    day1, day2 = sorted(order[: len(order) // 2]), sorted(order[len(order) // 2 :])
    judged = [grades[i] for i in day2]
    by_title = {corpus.papers[i].title: i for i in range(len(corpus.papers))}
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="digest-feedback-") as tmp:
        sent = Path(tmp) / "sent"
        sent.mkdir()
        config = _day1(sent, corpus, keywords, day1)
        first = json.loads((sent / "first.json").read_text())
        more = [str(p["key"]) for p in first[:10] if grades[by_title[str(p["title"])]] >= 1]
        less = [str(p["key"]) for p in first[:10] if grades[by_title[str(p["title"])]] == 0]
        rated = Path(tmp) / "rated"
        shutil.copytree(sent, rated)
        _fetch(config, corpus, day2)
        out["none"] = ndcg_at_k(_ranked(config, corpus, day2), judged)
        rated_config = rated / "digest.toml"
        args = [a for k in more for a in ("--more", k)] + [a for k in less for a in ("--less", k)]
        if args:
            _cli(rated_config, "feedback", "--subscriber", "reader@example.org", *args)
        _fetch(rated_config, corpus, day2)
        for w in weights:
            env = {"DIGEST_RANKING__FEEDBACK_WEIGHT": str(w)}
            out[f"feedback@{w:g}"] = ndcg_at_k(_ranked(rated_config, corpus, day2, env), judged)
        seeded = Path(tmp) / "library"
        seeded.mkdir()
        liked = [i for i in day1 if grades[i] >= 2] or [i for i in day1 if grades[i] >= 1]
        (seeded / "seed.bib").write_text(_bibtex(rng.sample(liked, min(3, len(liked))), corpus))
        library_config = _day1(seeded, corpus, keywords, day1, 'library = "seed.bib"')
        _fetch(library_config, corpus, day2)
        out["library"] = ndcg_at_k(_ranked(library_config, corpus, day2), judged)
    return out


def leave_one_out(rows: dict[str, dict[str, float]], weights: tuple[float, ...]) -> dict[str, tuple[float, float]]:
    """For each profile, the weight chosen on the other profiles by the rule the issue sets (the best mean
    lift among the weights that lower none of them by more than `HARM`; the least harmful when none does;
    the smaller on a tie), and that weight's lift on the profile itself: what a weight chosen without it
    does for it."""
    out = {}
    for held in rows:
        others = [r for name, r in rows.items() if name != held]

        def lifts(w: float, among: list[dict[str, float]] = others) -> list[float]:
            return [r[f"feedback@{w:g}"] - r["none"] for r in among]

        safe = [w for w in weights if min(lifts(w)) >= -HARM]
        if safe:
            best = max(safe, key=lambda w: (round(statistics.fmean(lifts(w)), 6), -w))
        else:
            best = max(weights, key=lambda w: (round(min(lifts(w)), 6), -w))
        out[held] = (best, rows[held][f"feedback@{best:g}"] - rows[held]["none"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from here (another sample of splits)")
    parser.add_argument("--profiles", help="comma-separated profile ids (default: all)")
    parser.add_argument(
        "--weights", default="0.3,0.5,0.8,1", help="[ranking] feedback_weight values to try (default: %(default)s)"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: one per core)")
    args = parser.parse_args()
    weights = tuple(float(w) for w in args.weights.split(","))
    default = RankingConfig().feedback_weight
    corpus = load_corpus(args.shared / "corpus")
    profiles = json.loads((args.shared / "eval" / "profiles.json").read_text())
    judgments = json.loads((args.shared / "eval" / "judgments.json").read_text())
    if args.profiles:
        wanted = set(args.profiles.split(","))
        profiles = [p for p in profiles if p["id"] in wanted]
    tasks: list[tuple[Corpus, list[str], list[int], int, tuple[float, ...]]] = []
    for profile in profiles:
        grades = grades_for(corpus, judgments.get(profile["id"], {}))
        tasks.extend(
            (corpus, profile["keywords"], grades, s, weights)
            for s in range(args.first_seed, args.first_seed + args.seeds)
        )
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(run, tasks, chunksize=1)
    rows: dict[str, dict[str, float]] = {}
    for n, profile in enumerate(profiles):
        mine = results[n * args.seeds : (n + 1) * args.seeds]
        rows[profile["id"]] = {k: statistics.fmean(r[k] for r in mine) for k in mine[0]}
    loo = leave_one_out(rows, weights) if len(rows) > 1 else {}
    shown = f"feedback@{default:g}" if default in weights else f"feedback@{weights[0]:g}"
    print(f"| profile | none | {' | '.join(f'feedback {w:g}' for w in weights)} | LOO weight | LOO lift | library |")
    print(f"|---|---:|{'---:|' * len(weights)}---:|---:|---:|")
    for name, row in rows.items():
        cells = " | ".join(
            f"{row[f'feedback@{w:g}']:.3f} ({row[f'feedback@{w:g}'] - row['none']:+.3f})" for w in weights
        )
        chosen, lift = loo.get(name, (float("nan"), float("nan")))
        print(
            f"| {name} | {row['none']:.3f} | {cells} | {chosen:g} | {lift:+.3f} | {row['library']:.3f} "
            f"({row['library'] - row['none']:+.3f}) |"
        )
    mean = {k: statistics.fmean(r[k] for r in rows.values()) for k in next(iter(rows.values()))}
    worst = min(rows, key=lambda name: rows[name][shown] - rows[name]["none"])
    loo_worst = min(loo, key=lambda name: loo[name][1]) if loo else None
    print(
        json.dumps(
            {
                "profiles": len(rows),
                "seeds": args.seeds,
                "feedback_weight": float(shown.split("@")[1]),
                "ndcg10_day2_without": round(mean["none"], 4),
                "ndcg10_day2_feedback": round(mean[shown], 4),
                "lift_feedback": round(mean[shown] - mean["none"], 4),
                "worst_profile": worst,
                "worst_profile_change": round(rows[worst][shown] - rows[worst]["none"], 4),
                "lift_by_weight": {f"{w:g}": round(mean[f"feedback@{w:g}"] - mean["none"], 4) for w in weights},
                "loo_lift": round(statistics.fmean(lift for _, lift in loo.values()), 4) if loo else None,
                "loo_weights_chosen": dict(Counter(f"{w:g}" for w, _ in loo.values())),
                "loo_worst_profile": loo_worst,
                "loo_worst_change": round(loo[loo_worst][1], 4) if loo_worst else None,
                "ndcg10_day2_library": round(mean["library"], 4),
                "lift_library": round(mean["library"] - mean["none"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
