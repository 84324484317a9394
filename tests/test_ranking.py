"""Ranking: the normaliser, keyword syntax, weights, exclusions, synonyms, ties, explanations, config, quality."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from digest.config import RankingConfig
from digest.models import Paper
from digest.planner import ranking_params
from digest.ranking import (
    Embedder,
    Interests,
    KeywordError,
    PaperIndex,
    Postings,
    RankedPaper,
    RankingParams,
    WindowStats,
    compile_terms,
    load_embedder,
    normalize,
    parse_keyword,
    rank_papers,
    synonyms_for,
    tokens,
)
from tests.helpers import EVAL, ROOT, utc

NOW = utc(2025, 6, 2, 6)
FILLER = (
    "We propose a new model and a learning method for this task, train the model on large data, "
    "and report results of the proposed method on several benchmarks with careful ablations."
)


def paper(
    n: int,
    title: str,
    abstract: str = FILLER,
    *,
    keywords: tuple[str, ...] = (),
    upvotes: int = 0,
    hours_ago: float = 1.0,
) -> Paper:
    seen = NOW - dt.timedelta(hours=hours_ago)
    return Paper(
        id=n,
        key=f"test:{n:04d}",
        title=title,
        abstract=abstract,
        keywords=list(keywords),
        upvotes=upvotes,
        first_seen_at=seen,
        last_seen_at=seen,
    )


def background(count: int = 30) -> list[Paper]:
    """Unrelated papers, so idf behaves as in a real pool."""
    topics = ["graph coloring", "protein folding", "weather radar", "chess engines", "audio codecs", "soil maps"]
    return [paper(900 + i, f"Notes on {topics[i % len(topics)]} {i}", FILLER) for i in range(count)]


def titles(ranked: list[RankedPaper]) -> list[str]:
    return [r.paper.title for r in ranked]


# ---------------------------------------------------------------- the normaliser


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("state-space models", "State Space Model"),
        ("low/bit_quantisation", "low bit quantization"),
        ("quantized", "quantization"),
        ("LLMs", "llm"),
        ("llms", "LLM"),
        ("MoEs", "MoE"),
        ("ﬁne-tuning", "fine tuning"),
        ("$\\ell_p$ norms", "ell_p norm"),
        ("Mixture-of-Experts", "mixture of experts"),
        ("Café", "cafe"),
    ],
)
def test_normaliser_makes_spellings_meet(a: str, b: str) -> None:
    assert tokens(a) == tokens(b)


def test_normaliser_keeps_words_apart_and_in_order() -> None:
    assert normalize("Scaling Laws: Part I") == "scaling laws part i"
    assert tokens("The Mixture of Experts") == ["mixtur", "expert"]
    assert tokens("GaN transistors") != tokens("GAN")


def test_keyword_syntax() -> None:
    assert parse_keyword("mamba^2") == ("mamba", 2.0)
    assert parse_keyword("  linear attention ^ 1.5 ") == ("linear attention", 1.5)
    assert parse_keyword("diffusion") == ("diffusion", 1.0)
    for bad in ["", "  ", "^2", "mamba^0", "mamba^1000", "the"]:
        with pytest.raises(KeywordError):
            parse_keyword(bad)


# ---------------------------------------------------------------- matching and weights


def test_title_beats_keywords_beats_abstract() -> None:
    pool = [
        paper(1, "A study of things", f"{FILLER} We use linear attention throughout."),
        paper(2, "Linear attention for long documents"),
        paper(3, "A study of other things", keywords=("linear attention", "efficiency")),
        *background(),
    ]
    ranked = rank_papers(pool, Interests(("linear attention",)))
    assert [r.paper.id for r in ranked] == [2, 3, 1]


def test_field_weights_come_from_the_params() -> None:
    pool = [
        paper(1, "A study of things", f"{FILLER} Linear attention, linear attention and linear attention."),
        paper(2, "Linear attention for long documents"),
        *background(),
    ]
    params = RankingParams(title_weight=0.2, abstract_weight=3.0)
    assert [r.paper.id for r in rank_papers(pool, Interests(("linear attention",)), params)] == [1, 2]


def test_keyword_weight_lifts_a_term() -> None:
    pool = [paper(1, "Mamba for audio"), paper(2, "Transformers for audio"), *background()]
    plain = rank_papers(pool, Interests(("mamba", "transformers")))
    weighted = rank_papers(pool, Interests(("mamba", "transformers^3")))
    assert plain[0].paper.id == 1 or plain[0].score == plain[1].score
    assert weighted[0].paper.id == 2


def test_phrase_beats_scattered_words_and_both_are_explained() -> None:
    pool = [
        paper(1, "Sequence models", f"{FILLER} A linear probe pays attention to what each layer encodes."),
        paper(2, "Sequence models again", f"{FILLER} Our layers use linear attention."),
        *background(),
    ]
    ranked = rank_papers(pool, Interests(("linear attention",)))
    assert [r.paper.id for r in ranked] == [2, 1]
    assert ranked[0].matched[0].partial is False
    assert ranked[1].matched[0].partial is True


def test_a_passing_generic_word_does_not_match() -> None:
    pool = [paper(1, "A model of everything"), paper(2, "Diffusion models for video"), *background()]
    assert [r.paper.id for r in rank_papers(pool, Interests(("diffusion model",)))] == [2]


def test_repeated_mentions_count_but_saturate() -> None:
    once = paper(1, "Study A", f"{FILLER} It mentions pruning once.")
    often = paper(2, "Study B", f"{FILLER} Pruning, pruning, structured pruning and pruning again.")
    ranked = rank_papers([once, often, *background()], Interests(("pruning",)))
    assert [r.paper.id for r in ranked] == [2, 1]
    both = paper(3, "Pruning networks", f"{FILLER} It mentions pruning once.")
    assert rank_papers([once, both, *background()], Interests(("pruning",)))[0].paper.id == 3


def test_a_central_word_counts_more_than_a_passing_one() -> None:
    passing = paper(1, "Search bounds", f"{FILLER} Our algorithm has a quantum variant.")
    central = paper(2, "Search bounds again", f"{FILLER} Our algorithm runs quantum circuits on quantum hardware.")
    common = [paper(10 + i, f"An algorithm for task {i}") for i in range(12)]
    ranked = rank_papers([passing, central, *common, *background()], Interests(("quantum algorithm",)))
    assert [r.paper.id for r in ranked[:2]] == [2, 1]
    assert ranked[0].matched[0].partial and ranked[0].matched[0].fields == ("abstract",)


def test_a_barely_partial_title_match_ranks_below_the_phrase_in_the_abstract() -> None:
    pool = [
        paper(1, "Solving differential equations", f"{FILLER} Differential operators and differential forms."),
        paper(2, "Private estimators", f"{FILLER} The estimators satisfy differential privacy."),
        *[paper(10 + i, f"Differential equations note {i}") for i in range(3)],
        paper(20, "Privacy for data"),
        *background(),
    ]
    ranked = rank_papers(pool, Interests(("differential privacy",)))
    assert ranked[0].paper.id == 2
    assert ranked[0].matched[0].partial is False


# ---------------------------------------------------------------- exclusions and synonyms


def test_exclusions_drop_papers_including_through_synonyms() -> None:
    pool = [
        paper(1, "Mamba for vision"),
        paper(2, "Mamba for vision: a survey"),
        paper(3, "Mamba meets large language models"),
        *background(),
    ]
    assert [r.paper.id for r in rank_papers(pool, Interests(("mamba",), exclude=("survey",)))] == [1, 3]
    assert [r.paper.id for r in rank_papers(pool, Interests(("mamba",), exclude=("LLMs",)))] == [1, 2]
    off = Interests(("mamba",), exclude=("LLMs",), synonyms=False)
    assert [r.paper.id for r in rank_papers(pool, off)] == [1, 2, 3]


def test_synonyms_and_acronyms_match_and_can_be_switched_off() -> None:
    pool = [
        paper(1, "Scaling large language models", "We train large language models."),
        paper(2, "SSMs are all you need", "Structured state space models for sequences."),
        paper(3, "Mixture-of-Experts routing"),
        *background(),
    ]
    on = rank_papers(pool, Interests(("LLM", "state-space model", "MoE")))
    assert {r.paper.id for r in on} == {1, 2, 3}
    by_id = {r.paper.id: r for r in on}
    assert by_id[1].matched[0].term == "LLM" and by_id[1].matched[0].via == "large language model"
    assert by_id[3].matched[0].via == "mixture of experts"
    off = rank_papers(pool, Interests(("LLM", "MoE"), synonyms=False))
    assert off == []


def test_synonym_table_is_symmetric_for_groups() -> None:
    assert "large language model" in synonyms_for("LLMs")
    assert "llm" in synonyms_for("large-language models")
    assert synonyms_for("mamba") == ()


def test_narrower_terms_count_less_than_the_keyword_itself() -> None:
    pool = [paper(1, "Mamba for audio"), paper(2, "State space models for audio"), *background()]
    ranked = rank_papers(pool, Interests(("state space model",)))
    assert [r.paper.id for r in ranked] == [2, 1]
    assert ranked[1].matched[0].via == "mamba"
    assert [r.paper.id for r in rank_papers(pool, Interests(("state space model",), synonyms=False))] == [2]


# ---------------------------------------------------------------- blend, ties, explanation


def test_relevance_comes_first_then_trending_and_recency() -> None:
    strong = paper(1, "Speculative decoding", "Speculative decoding, speculative decoding.", upvotes=0)
    weak = paper(2, "A note", f"{FILLER} Speculative decoding appears once.", upvotes=500)
    ranked = rank_papers([strong, weak, *background()], Interests(("speculative decoding",)))
    assert [r.paper.id for r in ranked] == [1, 2]
    twins = [paper(3, "Speculative decoding", upvotes=3), paper(4, "Speculative decoding", upvotes=90)]
    assert [r.paper.id for r in rank_papers([*twins, *background()], Interests(("speculative decoding",)))] == [4, 3]
    old_new = [paper(5, "Speculative decoding", hours_ago=100), paper(6, "Speculative decoding", hours_ago=1)]
    ranked = rank_papers([*old_new, *background()], Interests(("speculative decoding",)))
    assert [r.paper.id for r in ranked] == [6, 5]
    flat = RankingParams(trend_weight=0, recency_weight=0)
    ranked = rank_papers([*old_new, *background()], Interests(("speculative decoding",)), flat)
    assert ranked[0].score == ranked[1].score


def test_no_keywords_gets_the_trending_list() -> None:
    pool = [paper(i, f"Paper {i}", upvotes=u) for i, u in [(1, 5), (2, 50), (3, 0), (4, 20)]]
    ranked = rank_papers(pool, Interests(max_papers=3))
    assert [r.paper.id for r in ranked] == [2, 4, 1]
    assert all(r.matched == () for r in ranked)


def test_ties_are_deterministic_whatever_the_input_order() -> None:
    pool = [paper(i, "Diffusion models", upvotes=i % 3) for i in range(1, 13)] + background()
    expected = titles(rank_papers(pool, Interests(("diffusion model",), max_papers=12)))
    keys = [r.paper.key for r in rank_papers(pool, Interests(("diffusion model",), max_papers=12))]
    for seed in range(5):
        shuffled = pool[:]
        random.Random(seed).shuffle(shuffled)
        ranked = rank_papers(shuffled, Interests(("diffusion model",), max_papers=12))
        assert titles(ranked) == expected and [r.paper.key for r in ranked] == keys
    upvotes = [r.paper.upvotes for r in rank_papers(pool, Interests(("diffusion model",), max_papers=12))]
    assert upvotes == sorted(upvotes, reverse=True)
    tied = [r.paper.key for r in rank_papers(pool, Interests(("diffusion model",), max_papers=12))][:4]
    assert tied == sorted(tied)


def test_explanation_names_every_matched_term_and_field() -> None:
    pool = [
        paper(
            1,
            "Quantized KV cache for LLM inference",
            f"{FILLER} We compress the key-value cache.",
            keywords=("kv cache", "quantization"),
        ),
        *background(),
    ]
    [ranked] = rank_papers(pool, Interests(("KV cache", "quantization", "pruning")))
    matched = {m.term: m for m in ranked.matched}
    assert set(matched) == {"KV cache", "quantization"}
    assert matched["KV cache"].fields == ("title", "keywords", "abstract")
    assert matched["quantization"].fields == ("title", "keywords")
    assert matched["KV cache"].via is None and not matched["KV cache"].partial


def test_max_papers_and_filters() -> None:
    pool = [paper(i, f"Pruning study {i}", hours_ago=i * 10) for i in range(1, 8)] + background()
    index = PaperIndex(pool)
    assert len(index.rank(Interests(("pruning",), max_papers=3))) == 3
    since = NOW - dt.timedelta(hours=35)
    by_since = index.rank(Interests(("pruning",)), since=since, skip_ids={2})
    assert [r.paper.id for r in by_since] == [1, 3]
    by_predicate = index.rank(Interests(("pruning",)), lambda p: p.first_seen_at >= since and p.id != 2)
    assert [(r.paper.id, r.score) for r in by_predicate] == [(r.paper.id, r.score) for r in by_since]
    none = index.rank(Interests(max_papers=50), since=since, skip_ids={1})
    assert {r.paper.id for r in none} == {2, 3} | {p.id for p in background()}


def test_idf_from_a_wider_window() -> None:
    pool = [paper(1, "Spiking transformers"), paper(2, "Optimal transport"), *background()]
    interests = Interests(("spiking transformers", "optimal transport"))
    alone = rank_papers(pool, interests)
    assert alone[0].score == alone[1].score
    window = pool + [paper(100 + i, f"Optimal transport part {i}") for i in range(40)]
    ranked = PaperIndex(pool, idf=Postings.of_papers(window)).rank(interests)
    assert [r.paper.id for r in ranked] == [1, 2]


def test_compiled_terms_are_shared() -> None:
    assert compile_terms(["LLMs^2"])[0] is compile_terms(["LLMs^2"])[0]
    index = PaperIndex([paper(1, "LLM agents"), *background()])
    term = compile_terms(["LLMs"])[0]
    assert index.hits(term) == index.hits(term)
    assert next(iter(index.hits(term).values())).fields == ("title",)


# ---------------------------------------------------------------- config


def test_ranking_config_defaults_match_the_params_and_reach_the_index() -> None:
    config = RankingConfig()
    params = RankingParams()
    assert {f.name: getattr(params, f.name) for f in dataclasses.fields(params)} == config.model_dump(
        exclude={"idf_window_days", "learn", "feedback_weight"}
    )


def test_ranking_table_in_the_config(write_config: Callable[..., Path]) -> None:
    from digest.config import ConfigError, load_config

    path = write_config(
        """
        [ranking]
        title_weight = 5
        trend_weight = 0.3
        idf_window_days = 60

        [[subscribers]]
        email = "ada@example.org"
        keywords = ["mamba"]
        """
    )
    settings = load_config(path)
    assert settings.ranking.idf_window_days == 60
    assert ranking_params(settings).title_weight == 5 and ranking_params(settings).trend_weight == 0.3
    bad = write_config('[ranking]\nmin_match = 2\n[[subscribers]]\nemail = "a@example.org"\n', "bad.toml")
    with pytest.raises(ConfigError, match=r"ranking\.min_match"):
        load_config(bad)


def test_example_config_documents_every_ranking_key() -> None:
    text = (ROOT / "config.example.toml").read_text()
    missing = [name for name in RankingConfig.model_fields if f"\n{name} = " not in text]
    assert not missing


# ---------------------------------------------------------------- keyword mix and the semantic signal


def test_keywords_combine_as_the_best_plus_a_fraction_of_the_others() -> None:
    pool = [
        paper(1, "Mamba for audio", f"{FILLER} Mamba, Mamba."),
        paper(2, "Pruning and distillation notes", f"{FILLER} We prune, then distill."),
        *background(),
    ]
    keywords = ("mamba", "pruning", "distillation")
    for mix in (0.0, 0.3, 1.0):
        index = PaperIndex(pool, RankingParams(keyword_mix=mix, trend_weight=0, recency_weight=0))
        per_term = []
        for term in compile_terms(keywords):
            ids, scores = index.term_scores(term)
            per_term.append(dict(zip(ids.tolist(), scores.tolist(), strict=True)))
        expected = {}
        for i in range(len(index.docs)):
            values = [t.get(i, 0.0) for t in per_term]
            if any(values):
                expected[index.docs[i].paper.id] = max(values) + mix * (sum(values) - max(values))
        ranked = index.rank(Interests(keywords))
        top = max(expected.values())
        assert {r.paper.id: r.score for r in ranked} == pytest.approx({k: v / top for k, v in expected.items()})
    strong_one = PaperIndex(pool, RankingParams(keyword_mix=0.0)).rank(Interests(keywords))
    plain_sum = PaperIndex(pool, RankingParams(keyword_mix=1.0)).rank(Interests(keywords))
    assert strong_one[0].paper.id == 1 and plain_sum[0].paper.id == 2


class _Encoding:
    def __init__(self, ids: list[int]) -> None:
        self.ids = ids


class _WordTokenizer:
    """A stand-in tokenizer: one id per known word (case-folded), unknown words dropped."""

    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab

    def encode_batch(self, texts: list[str], add_special_tokens: bool = False) -> list[_Encoding]:
        return [_Encoding([self.vocab[w] for w in normalize(t).split() if w in self.vocab]) for t in texts]


def toy_embedder() -> Embedder:
    """Three directions of meaning: transport (sinkhorn, wasserstein, transport), proteins, and filler."""
    words = ["optimal", "transport", "sinkhorn", "wasserstein", "protein", "folding", "we", "model"]
    axes = [0, 0, 0, 0, 1, 1, 2, 2]
    vectors = np.zeros((len(words) + 1, 4), dtype=np.float32)
    for i, axis in enumerate(axes):
        vectors[i, axis] = 1.0
    vectors[-1] = -vectors[:-1].sum(axis=0)  # an unused token that puts the vocabulary's mean at 0
    return Embedder(vectors, _WordTokenizer({w: i for i, w in enumerate(words)}))


def test_the_semantic_signal_finds_papers_by_meaning_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("digest.ranking._index.load_embedder", toy_embedder)
    pool = [
        paper(1, "Optimal transport for alignment"),
        paper(2, "Fast solvers", "Short. We speed up Sinkhorn iterations for Wasserstein barycenters."),
        paper(3, "Protein folding at scale", "We model protein folding with a new model."),
        *background(),
    ]
    lexical = rank_papers(pool, Interests(("optimal transport",)), RankingParams(semantic_weight=0))
    assert [r.paper.id for r in lexical] == [1]
    params = RankingParams(semantic_weight=0.3, semantic_threshold=0.3)
    ranked = rank_papers(pool, Interests(("optimal transport",)), params)
    assert [r.paper.id for r in ranked] == [1, 2]
    assert ranked[0].matched[0].semantic is False and ranked[0].matched[0].fields == ("title",)
    [related] = ranked[1].matched
    assert related.semantic and related.term == "optimal transport" and related.fields == ("abstract",)
    from digest.compose import MatchView

    view = MatchView(related.term, related.fields, related=related.semantic)
    assert view.quoted == 'related in meaning to "optimal transport" (the abstract)'


@pytest.mark.semantic
def test_the_email_says_when_meaning_carried_a_paper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the planner and the composer: a paper only the semantic signal found is sent, its "why" line
    in both parts says so, and a lexical match is explained as before."""
    import email
    from email.message import Message

    from digest import store
    from digest.compose import Composer
    from digest.config import parse_config
    from digest.models import PaperRecord
    from digest.planner import plan

    monkeypatch.setattr("digest.ranking._index.load_embedder", toy_embedder)
    settings = parse_config(
        f"""
database_url = "sqlite:///{tmp_path / "digest.db"}"
[ranking]
semantic_weight = 0.3
semantic_threshold = 0.3
[[subscribers]]
email = "ada@example.org"
keywords = ["optimal transport"]
""",
        Path(tmp_path / "digest.toml"),
    )
    engine = store.open_engine(settings.database_url)
    store.ensure_schema(engine)
    records = [
        PaperRecord(source="t", title="Optimal transport for alignment", abstract=FILLER),
        PaperRecord(
            source="t", title="Fast solvers", abstract="Short. We speed up Sinkhorn iterations for barycenters."
        ),
        *[PaperRecord(source="t", title=f"Unrelated topic {i}", abstract=FILLER) for i in range(20)],
    ]
    with engine.begin() as conn:
        store.upsert_records(conn, records, NOW - dt.timedelta(hours=2))
    with engine.connect() as conn:
        [planned] = plan(conn, settings, Composer(), NOW, only=["ada@example.org"])
    assert [r.paper.title for r in planned.ranked] == ["Optimal transport for alignment", "Fast solvers"]
    assert [m.semantic for r in planned.ranked for m in r.matched] == [False, True]
    assert planned.data is not None
    message = email.message_from_bytes(planned.data)
    parts: dict[str, str] = {}
    for part in message.walk():
        if isinstance(part, Message) and part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            parts[part.get_content_subtype()] = " ".join(payload.decode().split())
    assert 'Why: "optimal transport" in the title' in parts["plain"]
    assert 'Why: related in meaning to "optimal transport" (the abstract)' in parts["plain"]
    assert "related in meaning to <b>optimal transport</b> (the abstract)" in parts["html"]


def test_without_the_extra_the_semantic_weight_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("digest.ranking._index.load_embedder", lambda: None)
    pool = [paper(1, "Optimal transport for alignment"), paper(2, "Sinkhorn solvers"), *background()]
    on = rank_papers(pool, Interests(("optimal transport",)), RankingParams(semantic_weight=0.5))
    off = rank_papers(pool, Interests(("optimal transport",)))
    assert [(r.paper.id, r.score, r.matched) for r in on] == [(r.paper.id, r.score, r.matched) for r in off]


def test_the_installed_embeddings_load_offline_and_make_sense() -> None:
    embedder = load_embedder()
    if embedder is None:
        pytest.skip("the digest[semantic] extra (wordllama) is not installed")
    vectors = embedder.embed(["diffusion model", "denoising diffusion for image generation", "protein folding", ""])
    assert vectors.shape == (4, embedder.dim)
    assert np.linalg.norm(vectors[:3], axis=1) == pytest.approx(1.0, abs=1e-5)
    assert not vectors[3].any()
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    text = "We propose Sinkhorn-based optimal transport (OT) for LLMs, e.g. GPT-4."
    ids = embedder.tokenizer.encode(text, add_special_tokens=False).ids  # the whole text at once
    mean = embedder.vectors[ids].mean(axis=0)
    assert embedder.embed([text])[0] == pytest.approx(mean / np.linalg.norm(mean), abs=1e-5)


# ---------------------------------------------------------------- invariants over the shared corpus


def corpus_papers() -> list[Paper]:
    from digest.sources.file import read_file
    from tests.helpers import corpus_files

    records = [r for path in corpus_files() for r in read_file(path, "corpus").records]
    rng = random.Random(11)
    return [
        Paper(
            id=i,
            key=f"test:{i:04d}",
            title=r.title,
            abstract=r.abstract or "",
            upvotes=rng.randrange(50),
            first_seen_at=NOW - dt.timedelta(hours=rng.uniform(0, 72)),
            last_seen_at=NOW,
        )
        for i, r in enumerate(records, start=1)
    ]


INTERESTS = [
    Interests(("linear attention", "state space model", "mamba")),
    Interests(("quantization", "low-bit", "LLM inference"), exclude=("survey", "diffusion")),
    Interests(("generalization bounds", "PAC-Bayes", "sample complexity"), max_papers=4),
    Interests(("LLM evaluation", "benchmark^2"), synonyms=False),
    Interests(("in-context learning", "transformer theory"), max_papers=25),
]


@pytest.mark.parametrize("interests", INTERESTS, ids=lambda i: i.keywords[0])
def test_ranking_invariants_on_real_papers(interests: Interests) -> None:
    """Whatever the pool order: the same order, never an excluded or skipped paper, at most max_papers, scores
    falling, and every explanation true (a named keyword, found in each field it names)."""
    pool = corpus_papers()
    skip = {p.id or 0 for p in pool[::7]}
    since = NOW - dt.timedelta(hours=60)
    ranked = PaperIndex(pool).rank(interests, since=since, skip_ids=skip)
    shuffled = pool[:]
    random.Random(3).shuffle(shuffled)
    again = PaperIndex(shuffled).rank(interests, since=since, skip_ids=skip)
    assert [(r.paper.id, r.score, r.matched) for r in again] == [(r.paper.id, r.score, r.matched) for r in ranked]
    assert 0 < len(ranked) <= interests.max_papers
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    excluded = compile_terms(interests.exclude, interests.synonyms)
    keywords = {
        parse_keyword(k)[0]: t for k, t in zip(interests.keywords, compile_terms(interests.keywords), strict=True)
    }
    for r in ranked:
        assert r.paper.id not in skip and r.paper.first_seen_at >= since
        fields = {"title": tokens(r.paper.title), "abstract": tokens(r.paper.abstract)}
        text = " ".join(fields["title"] + ["|"] + fields["abstract"])
        for term in excluded:
            assert not any(f" {' '.join(v.phrase)} " in f" {text} " for v in term.variants if v.kind == "same")
        assert r.matched and len({m.term for m in r.matched}) == len(r.matched)
        for m in r.matched:
            assert m.term in keywords and not m.semantic
            term = keywords[m.term]
            streams = [f" {' '.join(fields[name])} " for name in m.fields]
            for stream in streams:  # each named field holds a word of the keyword (or of a table entry)
                assert any(f" {tok} " in stream for v in term.variants for tok in v.phrase), (m, r.paper.title)
            if not m.partial:  # and one of them the whole phrase, or the entry named by `via`
                phrases = [v.phrase for v in term.variants if m.via is None or v.text == m.via]
                assert any(f" {' '.join(p)} " in s for p in phrases for s in streams), (m, r.paper.title)


# ---------------------------------------------------------------- quality on the shared judgments


def test_the_quality_benchmark_runs_on_a_slice(tmp_path: Path) -> None:
    """benchmarks/relevance.py end to end on four profiles with its small grid: every ranker scored per profile,
    leave-one-out computed, and the tables written between the markers of a RANKING.md."""
    if not (EVAL / "judgments.json").exists():
        pytest.skip(f"shared judgments not found at {EVAL}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import relevance

    doc = tmp_path / "RANKING.md"
    doc.write_text(f"# Ranking\n\n{relevance.BEGIN}\nstale tables\n{relevance.END}\n\nSpeed.\n")
    relevance.main(["--shared", str(EVAL.parent), "--quick", "--profiles", "4", "--write", str(doc)])
    text = doc.read_text()
    assert "stale tables" not in text and text.endswith("Speed.\n")
    profiles = json.loads((EVAL / "profiles.json").read_text())[:4]
    for profile in profiles:
        assert f"| {profile['id']} | " in text
    assert "| **mean** |" in text and "synonym table off" in text


def test_beats_bm25_on_the_mean_of_the_shared_judgments() -> None:
    if not (EVAL / "judgments.json").exists():
        pytest.skip(f"shared judgments not found at {EVAL}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import relevance

    corpus = relevance.load_corpus(EVAL.parent / "corpus")
    profiles = json.loads((EVAL / "profiles.json").read_text())
    judgments = json.loads((EVAL / "judgments.json").read_text())
    rankers = {"ours": relevance.ours(corpus), "substring": relevance.substring(corpus), "bm25": relevance.bm25(corpus)}
    results = relevance.evaluate(rankers, corpus, profiles, judgments)
    mean = {name: sum(r[0] for r in rows.values()) / len(rows) for name, rows in results.items()}
    assert mean["ours"] > mean["bm25"] and mean["ours"] > mean["substring"], mean


def test_plan_takes_idf_over_the_stored_window(tmp_path: Path) -> None:
    from digest import store
    from digest.compose import Composer
    from digest.config import Settings, parse_config
    from digest.models import PaperRecord
    from digest.planner import plan

    def settings(idf_days: int) -> Settings:
        text = f"""
database_url = "sqlite:///{tmp_path / "digest.db"}"
lookback_days = 2
[ranking]
idf_window_days = {idf_days}
[[subscribers]]
email = "ada@example.org"
keywords = ["graph transformers", "optimal transport"]
"""
        return parse_config(text, Path(tmp_path / "digest.toml"))

    engine = store.open_engine(settings(30).database_url)
    store.ensure_schema(engine)
    old = [PaperRecord(source="t", title=f"Optimal transport, part {i}", abstract=FILLER) for i in range(30)]
    old += [PaperRecord(source="t", title=f"Unrelated topic {i}", abstract=FILLER) for i in range(30)]
    new = [
        PaperRecord(source="t", title="Graph transformers", abstract=FILLER),
        PaperRecord(source="t", title="Optimal transport", abstract=FILLER),
        *[PaperRecord(source="t", title=f"Other news {i}", abstract=FILLER) for i in range(10)],
    ]
    with engine.begin() as conn:
        store.upsert_records(conn, old, NOW - dt.timedelta(days=10))
        store.upsert_records(conn, new, NOW - dt.timedelta(hours=2))
    with engine.connect() as conn:
        [wide] = plan(conn, settings(30), Composer(), NOW, only=["ada@example.org"])
        [narrow] = plan(conn, settings(1), Composer(), NOW, only=["ada@example.org"])
    assert [r.paper.title for r in wide.ranked] == ["Graph transformers", "Optimal transport"]
    assert wide.ranked[0].score > wide.ranked[1].score
    assert narrow.ranked[0].score == narrow.ranked[1].score


@pytest.mark.semantic
@pytest.mark.parametrize("semantic", [False, True], ids=["lexical", "semantic"])
@pytest.mark.parametrize("idf_days", [7, 10])
def test_an_index_of_what_is_still_sendable_ranks_as_one_of_the_whole_window(
    idf_days: int, semantic: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planner indexes only papers some reader may still receive, with `WindowStats` gathered batch by
    batch over the stored windows: every reader's ranking (scores included) is the same as from an index
    over the whole lookback window with idf over the idf window, with the semantic signal too (it depends on
    each paper alone)."""
    if not semantic:
        monkeypatch.setattr("digest.ranking._index.load_embedder", lambda: None)
    elif load_embedder() is None:
        pytest.skip("the digest[semantic] extra (wordllama) is not installed")
    from digest.sources.file import read_file
    from tests.helpers import corpus_files

    rng = random.Random(5)
    records = [r for path in corpus_files() for r in read_file(path, "corpus").records]
    papers = [
        Paper(
            id=i,
            key=f"test:{i:04d}",
            title=r.title,
            abstract=r.abstract or "",
            keywords=rng.choice([[], [], ["diffusion model"], ["KV cache", "quantization"], ["mamba", "agents"]]),
            upvotes=int(rng.paretovariate(1.2)) - 1,
            first_seen_at=NOW - dt.timedelta(hours=rng.uniform(0, 24 * 10)),
            last_seen_at=NOW,
        )
        for i, r in enumerate(records, start=1)
    ]
    window_start, idf_start, pool_start = (NOW - dt.timedelta(days=d) for d in (7, idf_days, 2))
    lookback = [p for p in papers if p.first_seen_at >= window_start]
    idf_window = [p for p in papers if p.first_seen_at >= idf_start]
    pool = [p for p in papers if p.first_seen_at >= pool_start]
    readers = [
        Interests(("linear attention", "state space model", "mamba^2")),
        Interests(("quantization", "LLM inference"), exclude=("survey",), max_papers=5),
        Interests(("diffusion model", "reinforcement learning"), synonyms=False),
        Interests(("speculative decoding", "KV cache", "agents")),
        Interests(max_papers=7),
    ]
    whole = PaperIndex(lookback, idf=Postings.of_papers(idf_window) if idf_days > 7 else None)
    terms = {t.key: t for i in readers for t in compile_terms(i.keywords + i.exclude, i.synonyms)}
    batches = [idf_window[k : k + 40] for k in range(0, len(idf_window), 40)]
    stats = WindowStats.gather(batches, terms.values(), window_start)
    small = PaperIndex(pool, idf=stats)
    assert len(pool) < len(lookback) // 2 and stats.n == len(idf_window)
    compared = 0
    for interests in readers:
        expected = whole.rank(interests, since=pool_start, skip_ids={pool[0].id or 0})
        got = small.rank(interests, since=pool_start, skip_ids={pool[0].id or 0})
        assert [(r.paper.id, r.matched) for r in got] == [(r.paper.id, r.matched) for r in expected]
        assert [r.score for r in got] == pytest.approx([r.score for r in expected], rel=1e-12)
        compared += len(got)
    assert compared > 20
    if semantic:
        assert any(m.semantic for i in readers for r in small.rank(i, since=pool_start) for m in r.matched)
    with pytest.raises(KeyError, match="not gathered"):
        small.rank(Interests(("zebrafish",)))
