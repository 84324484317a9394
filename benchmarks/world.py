"""A realistic day for the scale benchmark: thousands of papers, any number of subscribers, and the truth.

Papers are the shared corpus's real titles and abstracts, multiplied into distinct papers (varied titles,
arXiv ids, authors, upvotes, dates); subscribers draw keywords from a topic vocabulary with a Zipf skew,
so popular topics (and whole keyword lists) are shared by many while a long tail is unique. The world
also says which papers match whom, computed here by plain phrase search, so a test can check the job.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.identity import title_fingerprint
from digest.ranking import narrower_for, synonyms_for, tokens
from digest.sources.file import read_file

CORPUS = Path(os.environ.get("DIGEST_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "corpus"

TITLE_VARIANTS = (
    "{t}",
    "Revisiting {t}",
    "{t}: An Extended Study",
    "Towards {t}",
    "{t}, Revisited",
    "Rethinking {t}",
    "{t} in Practice",
    "A Closer Look at {t}",
    "{t}: Lessons Learned",
    "On {t}",
)

POPULAR_TOPICS = (
    "large language model",
    "neural network",
    "transformer",
    "attention",
    "reinforcement learning",
    "diffusion",
    "optimization",
    "linear attention",
    "state space model",
    "mamba",
    "quantization",
    "graph neural network",
    "mixture of experts",
    "kv cache",
    "sparse",
    "pruning",
    "compression",
    "scaling law",
    "lower bound",
    "regression",
    "gradient descent",
    "kernel",
    "bandit",
    "sampling",
    "generalization",
    "interpretability",
    "differential privacy",
    "federated learning",
    "quantum",
    "robustness",
    "in-context learning",
    "sequence modeling",
    "recurrent",
    "low rank",
    "matrix",
    "tensor",
    "distillation",
    "fine-tuning",
    "benchmark",
    "reasoning",
    "time series",
    "speech",
    "retrieval augmented generation",
    "protein folding",
    "climate",
)

FIRST_NAMES = ("Ada", "Grace", "Alan", "Emmy", "Kurt", "Sofía", "Zoë", "Jürgen", "Mei", "Olu", "Priya", "Lars")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Noether", "Gödel", "Núñez", "Chen", "Okafor", "Rao", "Berg")


@dataclass(frozen=True, slots=True)
class Subscriber:
    email: str
    name: str
    keywords: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    max_papers: int = 10
    authors: tuple[str, ...] = ()


@dataclass(slots=True)
class World:
    """Papers (Hugging Face daily-papers items) and subscribers for one day."""

    papers: list[dict[str, Any]]
    subscribers: list[Subscriber]
    vocabulary: list[str] = field(default_factory=list)


def corpus_papers(corpus: Path = CORPUS) -> list[tuple[str, str]]:
    """(title, abstract) of every distinct paper in the shared corpus page dumps."""
    seen: set[str] = set()
    out = []
    for path in sorted(corpus.glob("*.txt")):
        for record in read_file(path, "corpus").records:
            fingerprint = title_fingerprint(record.title)
            if fingerprint not in seen and record.abstract:
                seen.add(fingerprint)
                out.append((record.title, record.abstract))
    if not out:
        raise FileNotFoundError(f"no corpus papers under {corpus}")
    return out


def _phrases(term: str) -> list[tuple[str, ...]]:
    return [tuple(tokens(p)) for p in (term, *synonyms_for(term))]


def _has(haystack: Sequence[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(haystack[i : i + n]) == phrase for i in range(len(haystack) - n + 1))


def vocabulary(base: Sequence[tuple[str, str]], tail: int = 400) -> list[str]:
    """Popular topics first, then a long tail of rarer title words (present in one to five corpus papers)."""
    docs: dict[str, int] = {}
    spelling: dict[str, str] = {}
    for title, _ in base:
        for word in {w.strip(".,:;?!()\"'").lower() for w in title.split()}:
            if len(word) >= 7 and word.isalpha():
                stem = tuple(tokens(word))
                if len(stem) == 1:
                    docs[stem[0]] = docs.get(stem[0], 0) + 1
                    spelling.setdefault(stem[0], word)
    popular = {tuple(tokens(t)) for t in POPULAR_TOPICS}
    rare = sorted(s for s, n in docs.items() if 1 <= n <= 5 and (s,) not in popular)
    random.Random(7).shuffle(rare)
    return [*POPULAR_TOPICS, *(spelling[s] for s in rare[:tail])]


class Zipf:
    """Draws indexes 0..n-1 with probability proportional to 1 / (k + 1) ** s."""

    def __init__(self, rng: random.Random, n: int, s: float = 1.1) -> None:
        self.rng = rng
        self.population = range(n)
        self.cum = list(itertools.accumulate(1 / (k + 1) ** s for k in range(n)))

    def __call__(self) -> int:
        return self.rng.choices(self.population, cum_weights=self.cum)[0]


def build_papers(
    base: Sequence[tuple[str, str]], count: int, day: dt.date, seed: int = 1, first: int = 0
) -> list[dict[str, Any]]:
    """`count` distinct papers from the corpus ones: each copy gets its own title variant, id, authors, votes.
    `first` numbers them on from earlier days' papers, so another day's batch has ids of its own."""
    rng = random.Random(seed)
    if count > len(base) * len(TITLE_VARIANTS):
        raise ValueError(f"at most {len(base) * len(TITLE_VARIANTS)} papers from {len(base)} corpus papers")
    if first + count > 90_000:
        raise ValueError("at most 90,000 papers over all days (five-digit arXiv numbers)")
    vocab_phrases = [(t, tuple(tokens(t))) for t in POPULAR_TOPICS]
    items = []
    for n in range(first, first + count):
        title, abstract = base[n % len(base)]
        variant = TITLE_VARIANTS[(n // len(base)) % len(TITLE_VARIANTS)]
        title = variant.format(t=title)
        featured = dt.datetime.combine(day - dt.timedelta(days=rng.randrange(3)), dt.time(6), tzinfo=dt.UTC)
        body = tokens(f"{title} {abstract}")
        paper: dict[str, Any] = {
            "id": f"{day:%y%m}.{10000 + n:05d}",
            "title": title,
            "summary": abstract,
            "authors": [
                {"name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"} for _ in range(rng.randint(1, 9))
            ],
            "upvotes": int(rng.paretovariate(1.2)) - 1,
            "publishedAt": (featured - dt.timedelta(days=rng.randint(1, 5))).isoformat(),
            "submittedOnDailyAt": featured.isoformat(),
        }
        if rng.random() < 0.5:
            paper["ai_keywords"] = [t for t, p in vocab_phrases if _has(body, p)][:5]
        if rng.random() < 0.3:
            paper["githubRepo"] = f"https://github.com/lab{n % 97}/project-{n}"
        items.append({"paper": paper, "title": title, "summary": abstract, "numComments": rng.randrange(20)})
    return items


def build_subscribers(vocab: Sequence[str], count: int, seed: int = 2, follow_share: float = 0.0) -> list[Subscriber]:
    """Keyword lists with a realistic skew: a quarter pick one of a few popular bundles, the rest draw Zipf.
    `follow_share` of them also follow one or two authors (drawn apart, so the rest of the world is the same)."""
    rng = random.Random(seed)
    follows = random.Random(seed + 1000)
    top, anyword = Zipf(rng, 20), Zipf(rng, len(vocab))
    bundles = [tuple(dict.fromkeys(vocab[top()] for _ in range(rng.randint(1, 3)))) for _ in range(30)]
    pick_bundle = Zipf(rng, len(bundles))
    subs = []
    for i in range(count):
        if rng.random() < 0.25:
            keywords = bundles[pick_bundle()]
        else:
            picked = {vocab[anyword()] for _ in range(rng.choice((1, 2, 2, 3, 3, 4, 5, 6)))}
            keywords = tuple(sorted(picked))
        exclude = (vocab[anyword()],) if rng.random() < 0.1 else ()
        exclude = tuple(e for e in exclude if e not in keywords)
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" if rng.random() < 0.8 else ""
        authors: tuple[str, ...] = ()
        if follows.random() < follow_share:
            authors = tuple(
                {f"{follows.choice(FIRST_NAMES)} {follows.choice(LAST_NAMES)}" for _ in range(follows.randint(1, 2))}
            )
        email = f"reader{i:06d}@example.org"
        subs.append(Subscriber(email, name, keywords, exclude, rng.choice((5, 10, 10, 20)), tuple(sorted(authors))))
    return subs


def build_world(
    papers: int = 2000,
    subscribers: int = 1000,
    day: dt.date | None = None,
    seed: int = 1,
    follow_share: float = 0.0,
) -> World:
    base = corpus_papers()
    vocab = vocabulary(base)
    day = day or dt.datetime.now(dt.UTC).date()
    subs = build_subscribers(vocab, subscribers, seed + 1, follow_share)
    return World(build_papers(base, papers, day, seed), subs, vocab)


def later_papers(papers: int, day_index: int, day: dt.date, seed: int = 1) -> list[dict[str, Any]]:
    """Day `day_index`'s (0 = the world's first) new papers: the same kind as the world's, with new ids."""
    return build_papers(corpus_papers(), papers, day, seed + 2 * day_index, first=papers * day_index)


def write_papers(items: Iterable[dict[str, Any]], path: Path) -> None:
    """Papers as the JSONL file the world's `file` source reads."""
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")


def _phrase_matcher(world: World) -> Any:
    """`papers_with(term)`: ids of papers holding the term (or a built-in synonym) as a phrase in a field."""
    docs = []
    for item in world.papers:
        p = item["paper"]
        fields = [tokens(p["title"]), tokens(p["summary"])] + [tokens(k) for k in p.get("ai_keywords", [])]
        docs.append((p["id"], set().union(*fields), fields))
    hits: dict[str, set[str]] = {}

    def papers_with(term: str) -> set[str]:
        if term not in hits:
            phrases = _phrases(term)
            hits[term] = {
                pid
                for pid, words, fields in docs
                if any(words.issuperset(ph) and any(_has(f, ph) for f in fields) for ph in phrases)
            }
        return hits[term]

    return papers_with


def expected_matches(world: World) -> dict[str, set[str]]:
    """For each subscriber, the arXiv ids of papers holding one of their keywords (or a built-in synonym)
    in the title, abstract or keywords, and none of their excluded terms: found by brute force."""
    papers_with = _phrase_matcher(world)
    out: dict[str, set[str]] = {}
    for sub in world.subscribers:
        found: set[str] = set().union(*(papers_with(k) for k in sub.keywords))
        out[sub.email] = found - set().union(*(papers_with(e) for e in sub.exclude))
    return out


def related_papers(world: World) -> dict[str, set[str]]:
    """For each subscriber, the arXiv ids of papers sharing a word with one of their keywords, synonyms or
    narrower terms (ranking also credits a keyword whose words appear apart), minus excluded ones."""
    papers_with = _phrase_matcher(world)
    docs = []
    for item in world.papers:
        p = item["paper"]
        words = set(tokens(p["title"])) | set(tokens(p["summary"]))
        words.update(t for k in p.get("ai_keywords", []) for t in tokens(k))
        docs.append((p["id"], words))
    out: dict[str, set[str]] = {}
    for sub in world.subscribers:
        vocab = {w for k in sub.keywords for t in (k, *synonyms_for(k), *narrower_for(k)) for w in tokens(t)}
        excluded: set[str] = set().union(*(papers_with(e) for e in sub.exclude))
        out[sub.email] = {pid for pid, words in docs if words & vocab} - excluded
    return out


def _toml(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Iterable):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def config_text(world: World, papers_file: str, tables: dict[str, dict[str, object]]) -> str:
    """The digest config for this world: the given top-level keys and tables, one file source, every subscriber."""
    lines = []
    for table, values in tables.items():
        if table:
            lines.append(f"\n[{table}]")
        lines.extend(f"{k} = {_toml(v)}" for k, v in values.items())
    lines += ["", "[[sources]]", 'name = "world"', 'type = "file"', f"path = {_toml(papers_file)}"]
    for sub in world.subscribers:
        lines += ["", "[[subscribers]]", f"email = {_toml(sub.email)}"]
        if sub.name:
            lines.append(f"name = {_toml(sub.name)}")
        lines.append(f"keywords = {_toml(sub.keywords)}")
        if sub.exclude:
            lines.append(f"exclude = {_toml(sub.exclude)}")
        lines.append(f"max_papers = {sub.max_papers}")
        if sub.authors:
            lines.append(f"authors = {_toml(sub.authors)}")
    return "\n".join(lines) + "\n"


def write_world(world: World, folder: Path, tables: dict[str, dict[str, object]]) -> Path:
    """Write `papers.jsonl` and `digest.toml` into `folder`; returns the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_papers(world.papers, folder / "papers.jsonl")
    config = folder / "digest.toml"
    config.write_text(config_text(world, "papers.jsonl", tables), encoding="utf-8")
    return config
