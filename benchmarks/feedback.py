"""Does feedback make tomorrow's digest better? Measured through the real CLI on `../shared/eval/`.

For each profile and seed: the corpus's distinct papers are split in two days at random. Day 1's half is
fetched and sent (`digest send`); the reader rates the top 10 of that digest from the judgments (grade ≥ 1 →
`digest feedback --more`, 0 → `--less`); day 2's half is fetched; `digest preview --format json --date <day 2>`
ranks it, scored with nDCG@10 against day 2's judgments. The same runs without the feedback step are the
baseline, and a third variant seeds a BibTeX library with 3 judged-relevant day-1 papers instead of feedback.

    .venv/bin/python benchmarks/feedback.py [--seeds 5] [--shared ../shared] [--profiles a,b]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.relevance import Corpus, grades_for, load_corpus, ndcg_at_k  # noqa: E402
from digest.cli import app  # noqa: E402

VARIANTS = ("none", "feedback", "library")
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


def _cli(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
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


def _preview(config: Path, *args: str) -> list[dict[str, object]]:
    out = _cli(config, "preview", "--format", "json", "--no-fetch", *args)
    papers = json.loads(out[: out.rindex("}") + 1])["papers"]
    assert isinstance(papers, list)
    return papers


def run(corpus: Corpus, keywords: list[str], grades: list[int], seed: int, variant: str) -> float:
    """Day 2's nDCG@10 for one profile, seed and variant."""
    rng = random.Random(seed)
    order = list(range(len(corpus.papers)))
    rng.shuffle(order)
    day1, day2 = sorted(order[: len(order) // 2]), sorted(order[len(order) // 2 :])
    by_title = {corpus.papers[i].title: i for i in range(len(corpus.papers))}
    with tempfile.TemporaryDirectory(prefix="digest-feedback-") as tmp:
        folder = Path(tmp)
        library = ""
        if variant == "library":
            liked = [i for i in day1 if grades[i] >= 2] or [i for i in day1 if grades[i] >= 1]
            (folder / "seed.bib").write_text(_bibtex(rng.sample(liked, min(3, len(liked))), corpus))
            library = 'library = "seed.bib"'
        config = folder / "digest.toml"
        config.write_text(CONFIG.format(keywords=json.dumps(keywords), library=library))
        _write_day(folder, day1, corpus)
        _cli(config, "fetch")
        first = _preview(config)
        _cli(config, "send", "--no-fetch")
        if variant == "feedback":
            more = [str(p["key"]) for p in first[:10] if grades[by_title[str(p["title"])]] >= 1]
            less = [str(p["key"]) for p in first[:10] if grades[by_title[str(p["title"])]] == 0]
            args = [a for k in more for a in ("--more", k)] + [a for k in less for a in ("--less", k)]
            if args:
                _cli(config, "feedback", "--subscriber", "reader@example.org", *args)
        _write_day(folder, day2, corpus)
        _cli(config, "fetch")
        tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
        second = _preview(config, "--date", tomorrow)
    position = {i: n for n, i in enumerate(day2)}
    ranking = [position[by_title[str(p["title"])]] for p in second if by_title.get(str(p["title"])) in position]
    return ndcg_at_k(ranking, [grades[i] for i in day2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--profiles", help="comma-separated profile ids (default: all)")
    args = parser.parse_args()
    corpus = load_corpus(args.shared / "corpus")
    profiles = json.loads((args.shared / "eval" / "profiles.json").read_text())
    judgments = json.loads((args.shared / "eval" / "judgments.json").read_text())
    if args.profiles:
        wanted = set(args.profiles.split(","))
        profiles = [p for p in profiles if p["id"] in wanted]
    rows = []
    for profile in profiles:
        grades = grades_for(corpus, judgments.get(profile["id"], {}))
        scores = {v: [run(corpus, profile["keywords"], grades, s, v) for s in range(args.seeds)] for v in VARIANTS}
        row = {v: statistics.fmean(s) for v, s in scores.items()}
        rows.append((profile["id"], row))
        lifts = {v: row[v] - row["none"] for v in VARIANTS}
        print(
            f"{profile['id']:<16} none {row['none']:.3f}  feedback {row['feedback']:.3f} ({lifts['feedback']:+.3f})"
            f"  library {row['library']:.3f} ({lifts['library']:+.3f})",
            flush=True,
        )
    means = {v: statistics.fmean(r[v] for _, r in rows) for v in VARIANTS}
    worst = min(rows, key=lambda r: r[1]["feedback"] - r[1]["none"])
    print(
        json.dumps(
            {
                "profiles": len(rows),
                "seeds": args.seeds,
                "ndcg10_day2_without": round(means["none"], 4),
                "ndcg10_day2_feedback": round(means["feedback"], 4),
                "lift_feedback": round(means["feedback"] - means["none"], 4),
                "ndcg10_day2_library": round(means["library"], 4),
                "lift_library": round(means["library"] - means["none"], 4),
                "worst_profile": worst[0],
                "worst_profile_change": round(worst[1]["feedback"] - worst[1]["none"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
