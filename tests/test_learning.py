"""A digest that learns from its reader: feedback and a seed library shape tomorrow's ranking, through the real
CLI on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from freezegun import freeze_time
from sqlalchemy import select
from typer.testing import CliRunner

from digest import store
from digest.cli import app
from digest.config import load_config
from digest.learning import NEAR_DISLIKED, Example, ReaderModel, Vector, recency, train, vectorize
from digest.library import LibraryError, read_library
from digest.links import Action, signer_of
from digest.models import Paper
from digest.ranking import RankedPaper
from digest.reranking import PoolModels, trust
from digest.store._sql import model_t
from digest.web import create_app
from tests.helpers import papers_json
from tests.web_client import AppClient

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = """
database_url = "{db_url}"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
trending = 0
[[sources]]
name = "today"
type = "file"
path = "today.json"
[[subscribers]]
email = "ada@example.org"
keywords = {keywords}
max_papers = {max_papers}
{extra}
"""
# keyword "models" everywhere; the state-space paper's near-duplicate holds it only in its abstract, so on
# keywords alone the papers with it in their title rank above
STATE_SPACE = {
    "id": "2611.00001",
    "title": "Selective State Space Models for Long Sequences",
    "summary": "We present a selective state space recurrence that scales linearly in sequence length, with "
    "hardware-aware parallel scan kernels, matching attention on long-context language modelling.",
}
DIFFUSION = {
    "id": "2611.00002",
    "title": "Latent Diffusion Models for Image Synthesis",
    "summary": "Denoising diffusion in a learned latent space generates high-resolution images; classifier-free "
    "guidance trades sample diversity for fidelity in text-to-image generation.",
}
DAY_1 = [STATE_SPACE, DIFFUSION, {"id": "2611.00003", "title": "Models of Protein Folding", "summary": "Proteins."}]
NEAR_STATE_SPACE = {
    "id": "2611.00011",
    "title": "Linear-Time Sequence Modelling with Gated Recurrence",
    "summary": "A selective state space recurrence with parallel scan kernels scales linearly in sequence length "
    "and matches attention on long-context language models.",
}
NEAR_DIFFUSION = {
    "id": "2611.00012",
    "title": "Faster Diffusion Models for Text-to-Image Synthesis",
    "summary": "Denoising diffusion in a latent space generates high-resolution images with classifier-free "
    "guidance in fewer sampling steps.",
}
NEUTRAL = [
    {"id": f"2611.0002{i}", "title": f"Models of {topic}", "summary": f"A study of {topic.lower()} with models."}
    for i, topic in enumerate(["Ocean Currents", "Traffic Flow", "Crop Yields", "Galaxy Formation"])
]
DAY_2 = [NEAR_STATE_SPACE, NEAR_DIFFUSION, *NEUTRAL]


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


def _ok(config: Path, *args: str) -> str:
    code, out = _run(config, *args)
    assert code == 0, out
    return out


def _write(folder: Path, db_url: str, keywords: list[str] | None = None, max_papers: int = 10, extra: str = "") -> Path:
    path = folder / "digest.toml"
    path.write_text(
        CONFIG.format(db_url=db_url, keywords=json.dumps(keywords or []), max_papers=max_papers, extra=extra)
    )
    return path


def _fetch(config: Path, papers: Sequence[Mapping[str, object]]) -> None:
    (config.parent / "today.json").write_text(json.dumps(papers_json(papers)))
    _ok(config, "fetch")


def _preview(config: Path, day: dt.date | None = None) -> list[dict[str, object]]:
    args = ["preview", "--format", "json", "--no-fetch"] + (["--date", day.isoformat()] if day else [])
    out = _ok(config, *args)
    papers = json.loads(out[out.index("{") : out.rindex("}") + 1])["papers"]
    assert isinstance(papers, list)
    return papers


def _titles(papers: list[dict[str, object]]) -> list[str]:
    return [str(p["title"]) for p in papers]


def _feedback(config: Path, *args: str) -> None:
    _ok(config, "feedback", "--subscriber", "ada@example.org", *args)


# ---- the model itself: plain values in, plain values out
# the maths read one dict vector at a time: what `PoolModels` does on the pool's matrix must agree with it


def _cosine(a: Vector, b: Vector) -> float:
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def _score(model: ReaderModel, vector: Vector) -> float:
    z = model.bias + sum(w * model.weights.get(t, 0.0) for t, w in vector.items())
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def _near_disliked(model: ReaderModel, vector: Vector) -> bool:
    return max((_cosine(vector, d) for d in model.disliked), default=0.0) >= NEAR_DISLIKED


def _because(model: ReaderModel, vector: Vector) -> str | None:
    return model.closest_liked([_cosine(vector, v) for _, v in model.liked])


def test_model_learns_liked_against_disliked_and_survives_storage() -> None:
    examples = [
        Example(f"{STATE_SPACE['title']} {STATE_SPACE['summary']}", 1, 1.0, str(STATE_SPACE["title"]), 1),
        Example(f"{DIFFUSION['title']} {DIFFUSION['summary']}", -1, 1.0, str(DIFFUSION["title"]), 2),
    ]
    background = [vectorize(f"{p['title']} {p['summary']}") for p in NEUTRAL]
    model = train(examples, background, "fp")
    assert model is not None
    near_liked, near_disliked, neutral = (
        vectorize(f"{p['title']} {p['summary']}") for p in (NEAR_STATE_SPACE, NEAR_DIFFUSION, NEUTRAL[0])
    )
    assert _score(model, near_liked) > 0.5 > _score(model, neutral) > _score(model, near_disliked)
    assert _near_disliked(model, near_disliked) and not _near_disliked(model, near_liked)
    assert _because(model, near_liked) == STATE_SPACE["title"] and _because(model, neutral) is None
    assert model.disliked_ids == {2}
    again = ReaderModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again == model and model.ratings == (1, 1)
    stored = ReaderModel.from_bytes(model.to_bytes())  # as stored now; a JSON row from before still reads
    assert stored == model and list(stored.weights) == list(model.weights)
    assert ReaderModel.from_bytes(json.dumps(model.to_json()).encode()) == model
    stored_before = {k: v for k, v in model.to_json().items() if k != "ratings"}  # no ratings counted then
    assert ReaderModel.from_json(stored_before).ratings == (len(model.liked), len(model.disliked))


def test_no_labels_no_model_and_recent_feedback_counts_more() -> None:
    assert train([], [vectorize("some background paper")]) is None
    assert recency(0) == 1.0 and recency(60) == pytest.approx(0.5) and recency(120) == pytest.approx(0.25)
    assert _cosine(vectorize("state space models"), vectorize("State-space models!")) == pytest.approx(1.0)
    assert vectorize("the of and with using") == {}  # function words say nothing about an interest


def _pool(*items: Mapping[str, object]) -> list[Paper]:
    seen = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    return [
        Paper(
            id=n, key=f"k{n}", title=str(p["title"]), abstract=str(p["summary"]), first_seen_at=seen, last_seen_at=seen
        )
        for n, p in enumerate(items, start=1)
    ]


def test_trust_grows_with_what_the_reader_disagreed_with_and_moves_the_ranking_that_far() -> None:
    """A reader who disliked half of what they rated gets their model's full say; one who only ever liked
    gets a little ((2 / (n + 2))²): the same liked paper lifts its neighbour less far. Disliking more than
    half gives no more than the full say, and library papers are no ratings: a library alone gives it too."""
    pool = _pool(NEUTRAL[0], NEUTRAL[1], NEAR_STATE_SPACE, NEAR_DIFFUSION)
    models = PoolModels(pool)
    keyword = [RankedPaper(p, score) for p, score in zip(pool, (1.0, 0.9, 0.75, 0.7), strict=True)]
    liked = Example(f"{STATE_SPACE['title']} {STATE_SPACE['summary']}", 1, 1.0, str(STATE_SPACE["title"]))
    disliked = Example(f"{DIFFUSION['title']} {DIFFUSION['summary']}", -1, 1.0, str(DIFFUSION["title"]))
    since = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    agreeing = models.train([liked, liked, liked], "agree", since)
    mixed = models.train([liked, disliked], "mixed", since)
    displeased = models.train([liked, disliked, disliked, disliked], "displeased", since)
    library = models.train([replace(liked, rated=False)] * 3, "library", since)
    assert agreeing is not None and mixed is not None and displeased is not None and library is not None
    assert trust(agreeing) == pytest.approx((2 / 5) ** 2) and trust(mixed) == 1.0
    assert trust(displeased) == 1.0 and library.ratings == (0, 0) and trust(library) == 1.0
    assert agreeing.ratings == (3, 0) and ReaderModel.from_json(json.loads(json.dumps(agreeing.to_json()))) == agreeing

    def rerank(model: ReaderModel) -> list[RankedPaper]:
        ranked, learned = models.rerank(
            keyword, model, weight=1.0, has_keywords=True, allowed=np.ones(len(pool), bool), favourites=0, keep=4
        )
        assert all(learned[id(r.paper)][1] in (None, STATE_SPACE["title"]) for r in ranked)
        return ranked

    mixed_order = [r.paper.title for r in rerank(mixed)]
    assert mixed_order[0] == NEAR_STATE_SPACE["title"] and mixed_order[-1] == NEAR_DIFFUSION["title"]
    probs = models.probabilities(agreeing)
    expected = {k.paper.title: k.score + 1.0 * (2 / 5) ** 2 * (2 * probs[n] - 1) for n, k in enumerate(keyword)}
    assert {r.paper.title: r.score for r in rerank(agreeing)} == pytest.approx(expected)


def test_the_pools_matrix_route_agrees_with_the_model_read_paper_by_paper() -> None:
    """`PoolModels` trains, scores and compares on the pool's sparse matrix; `train` and the helpers above do
    the same maths on one dict vector at a time. A library paper that is not
    in the pool brings words the pool lacks; a paper with no words scores the bias alone."""
    wordless = {"title": "On the", "summary": "Of all these."}  # only function words: an empty row
    pool = _pool(STATE_SPACE, DIFFUSION, wordless, NEAR_STATE_SPACE, NEAR_DIFFUSION, *NEUTRAL, wordless)
    models = PoolModels(pool)
    vectors = [vectorize(f"{p.title} {p.abstract}") for p in pool]
    library = "Quantum Error Correction with Surface Codes: logical qubits below threshold"
    examples = [
        Example(f"{pool[0].title} {pool[0].abstract}", 1, 1.0, pool[0].title, pool[0].id),
        Example(f"{pool[1].title} {pool[1].abstract}", -1, 0.8, pool[1].title, pool[1].id),
        Example(library, 1, 0.7, "Surface codes"),
    ]
    since = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)  # after every paper: all can be weak negatives
    model = models.train(examples, "fp", since)
    background = [vectors[i] for i in models._background(examples, "fp", since)]
    plain = train(examples, background, "fp", [vectors[0], vectors[1], vectorize(library)])
    assert model is not None and plain is not None
    assert model.bias == pytest.approx(plain.bias, abs=1e-4)
    assert model.weights == pytest.approx(plain.weights, abs=2e-5)
    assert "surfac" in model.weights and (model.liked, model.disliked) == (plain.liked, plain.disliked)
    assert models.probabilities(model).tolist() == pytest.approx([_score(model, v) for v in vectors])
    rows = np.arange(len(pool))
    near = models.similarities(rows, model.disliked).max(axis=1) >= NEAR_DISLIKED
    assert (
        near.tolist() == [_near_disliked(model, v) for v in vectors] == [False, True, False, False, True, *[False] * 5]
    )
    closeness = models.similarities(rows, [v for _, v in model.liked])
    assert [model.closest_liked(s) for s in closeness.tolist()] == [_because(model, v) for v in vectors]
    assert model.closest_liked(closeness[3].tolist()) == STATE_SPACE["title"]


# ---- seed libraries: real export shapes


def test_zotero_bibtex_and_csl_json_exports_are_read_alike() -> None:
    bib, csl = read_library(FIXTURES / "library_zotero.bib"), read_library(FIXTURES / "library_zotero.json")
    assert [p.title for p in bib] == [p.title for p in csl]
    assert bib[0].title == "Mamba: Linear-Time Sequence Modeling with Selective State Spaces"  # TeX braces gone
    assert bib[0].arxiv_id == csl[0].arxiv_id == "2312.00752"
    assert bib[0].doi == csl[0].doi == "10.48550/arxiv.2312.00752"
    assert all(p.abstract for p in bib + csl)


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.bib", "@article{a,\n  title = {Fine},\n}\n\n@article{b,\n  title = {Broken}\n  year = {2024},\n}\n", 7),
        ("bad.json", '[\n  {"title": "Fine"},\n  {"title": "Broken",}\n]\n', 3),
    ],
)
def test_a_malformed_library_stops_the_cli_naming_file_and_line(
    tmp_path: Path, name: str, text: str, where: int
) -> None:
    (tmp_path / name).write_text(text)
    config = _write(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", ["models"], extra=f'library = "{name}"')
    for verb in (["preview", "--no-fetch"], ["send", "--no-fetch"], ["check"]):
        code, out = _run(config, *verb)
        assert code == 2, out
        assert f"{tmp_path / name}:{where}:" in out and "ada@example.org" in out
    with pytest.raises(LibraryError, match=f"{name}:{where}:"):
        read_library(tmp_path / name)


def test_a_missing_library_is_named(tmp_path: Path) -> None:
    config = _write(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", ["models"], extra='library = "gone.bib"')
    code, out = _run(config, "check")
    assert code == 2 and "gone.bib" in out and "cannot read" in out


# ---- through the CLI, on both databases


def test_a_disliked_paper_never_returns(tmp_path: Path, db_url: str) -> None:
    config = _write(tmp_path, db_url, ["diffusion models"])
    _fetch(config, DAY_1)
    assert _titles(_preview(config))[0] == DIFFUSION["title"]
    _feedback(config, "--less", str(DIFFUSION["id"]))
    assert DIFFUSION["title"] not in _titles(_preview(config))
    _fetch(config, [DIFFUSION, *DAY_2])  # seen again the next day, and a near-duplicate of it
    titles = _titles(_preview(config, dt.date.today() + dt.timedelta(days=1)))
    assert DIFFUSION["title"] not in titles
    assert titles[-1] == NEAR_DIFFUSION["title"]  # very close to a disliked paper: sinks below the rest


def test_a_liked_papers_near_duplicate_rises_and_says_why(tmp_path: Path, db_url: str) -> None:
    config = _write(tmp_path, db_url, ["models"])
    _fetch(config, DAY_1)
    _ok(config, "send", "--no-fetch")
    _fetch(config, DAY_2)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    before = _preview(config, tomorrow)
    assert _titles(before).index(str(NEAR_STATE_SPACE["title"])) > 0
    assert all(p["liked"] is None for p in before)
    _feedback(config, "--more", str(STATE_SPACE["id"]), "--less", str(DIFFUSION["id"]))
    after = _preview(config, tomorrow)
    assert _titles(after)[0] == NEAR_STATE_SPACE["title"]
    assert after[0]["liked"] == STATE_SPACE["title"]
    assert after[0]["matched"] == ["models"]  # the keyword explanation stays beside it
    assert _titles(after)[-1] == NEAR_DIFFUSION["title"]
    # the email says so
    code, out = _run(config, "preview", "--no-fetch", "--date", tomorrow.isoformat())
    assert code == 0 and f"Because you liked “{STATE_SPACE['title']}”" in out


@pytest.mark.parametrize("exclude", [[], ["gated recurrence"]])
def test_the_models_own_picks_keep_to_the_readers_exclusions(tmp_path: Path, db_url: str, exclude: list[str]) -> None:
    """The model adds papers its reader's keywords missed (from the whole pool, not from the keyword ranking,
    which has already dropped what `exclude` drops), but never one an `exclude` term drops."""
    mamba = {
        "id": "2611.00004",
        "title": "Selective State Spaces for Sequence Modelling",
        "summary": "A selective state space recurrence with parallel scan kernels scales linearly in sequence length.",
    }
    config = _write(tmp_path, db_url, ["image synthesis"], extra=f"exclude = {json.dumps(exclude)}")
    _fetch(config, [*DAY_1, mamba])
    _ok(config, "send", "--no-fetch")
    _feedback(config, "--more", str(STATE_SPACE["id"]), "--more", mamba["id"], "--less", str(DIFFUSION["id"]))
    _fetch(config, [*DAY_2[1:], NEAR_STATE_SPACE])  # the pool's order (as stored) is not the index's (by key)
    titles = _titles(_preview(config, dt.date.today() + dt.timedelta(days=1)))
    assert NEAR_DIFFUSION["title"] in titles  # the keywords' own match
    assert (NEAR_STATE_SPACE["title"] in titles) == (not exclude)  # no keyword matches it: the model added it


def test_feedback_weight_sets_the_models_say_beside_the_keywords(tmp_path: Path, db_url: str) -> None:
    """`[ranking] feedback_weight = 0` keeps the keyword order (a disliked paper still never returns and its
    near-duplicate still sinks); the default lets the liked paper's neighbour rise."""
    config = _write(tmp_path, db_url, ["models"])
    _fetch(config, DAY_1)
    _ok(config, "send", "--no-fetch")
    _fetch(config, DAY_2)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    plain = _titles(_preview(config, tomorrow))
    _feedback(config, "--more", str(STATE_SPACE["id"]), "--less", str(DIFFUSION["id"]))
    _write(tmp_path, db_url, ["models"], extra="[ranking]\nfeedback_weight = 0")
    unweighted = _titles(_preview(config, tomorrow))
    assert unweighted[-1] == NEAR_DIFFUSION["title"]
    assert unweighted[:-1] == [t for t in plain if t != NEAR_DIFFUSION["title"]]
    _write(tmp_path, db_url, ["models"])
    assert _titles(_preview(config, tomorrow))[0] == NEAR_STATE_SPACE["title"]


def test_learn_false_ignores_feedback_and_reset_forgets(tmp_path: Path, db_url: str) -> None:
    config = _write(tmp_path, db_url, ["models"])
    _fetch(config, [*DAY_1, *DAY_2])
    plain = _titles(_preview(config))
    _feedback(config, "--more", str(STATE_SPACE["id"]), "--less", str(DIFFUSION["id"]))
    taught = _titles(_preview(config))
    assert taught != plain and DIFFUSION["title"] not in taught
    _write(tmp_path, db_url, ["models"], extra="learn = false")
    assert _titles(_preview(config)) == plain
    _write(tmp_path, db_url, ["models"], extra="[ranking]\nlearn = false")  # the global switch, under a table
    assert _titles(_preview(config)) == plain
    _write(tmp_path, db_url, ["models"])
    assert _titles(_preview(config)) == taught
    _feedback(config, "--reset")
    assert _titles(_preview(config)) == plain


@pytest.mark.parametrize("export", ["library_zotero.bib", "library_zotero.json"])
def test_a_seed_library_alone_gives_more_like_my_library(tmp_path: Path, db_url: str, export: str) -> None:
    shutil.copy(FIXTURES / export, tmp_path / export)
    mamba_again = {
        "id": "2312.00752",
        "title": "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
        "summary": "Already in the library.",
        "upvotes": 500,
    }
    like_it = {
        "id": "2611.00031",
        "title": "Structured State Space Duality for Long Sequences",
        "summary": "Selective state space models (SSMs) such as Mamba match Transformers on long sequences with "
        "linear-time recurrent scans.",
        "upvotes": 1,
    }
    popular = [
        {"id": f"2611.0004{i}", "title": f"Popular Paper on {t}", "summary": f"All about {t.lower()}.", "upvotes": 90}
        for i, t in enumerate(["Robot Grasping", "Speech Recognition", "Weather Forecasts"])
    ]
    config = _write(tmp_path, db_url, [], max_papers=2)
    _fetch(config, [mamba_again, like_it, *popular])
    assert like_it["title"] not in _titles(_preview(config))  # no keywords, no library: the most upvoted
    _write(tmp_path, db_url, [], max_papers=2, extra=f'library = "{export}"')
    picks = _preview(config)
    assert _titles(picks)[0] == like_it["title"]
    assert picks[0]["liked"] in {p.title for p in read_library(tmp_path / export)}
    assert mamba_again["title"] not in _titles(picks)  # a paper the reader keeps is not news to them


def test_models_are_kept_and_rebuilt_only_when_feedback_changes(tmp_path: Path, db_url: str) -> None:
    config = _write(tmp_path, db_url, ["models"])
    engine = store.open_engine(db_url)

    def stored() -> tuple[str, dt.datetime] | None:
        with engine.connect() as conn:
            row = conn.execute(select(model_t.c.fingerprint, model_t.c.built_at)).first()
        return None if row is None else (row[0], row[1])

    with freeze_time("2026-11-20 08:00"):
        _fetch(config, DAY_1)
        _ok(config, "send", "--no-fetch")
        assert stored() is None  # nothing to learn from yet
        _feedback(config, "--more", str(STATE_SPACE["id"]))
    with freeze_time("2026-11-21 08:00"):
        _fetch(config, DAY_2[:3])
        _ok(config, "send", "--no-fetch")
        first = stored()
        assert first is not None
    with freeze_time("2026-11-22 08:00"):
        _fetch(config, DAY_2[3:])
        _ok(config, "send", "--no-fetch")
        assert stored() == first  # same feedback: the stored model served
        _feedback(config, "--less", str(DIFFUSION["id"]))
    with freeze_time("2026-11-23 08:00"):
        _fetch(config, [{"id": "2611.00099", "title": "Models Again", "summary": "More models."}])
        _ok(config, "send", "--no-fetch")
        rebuilt = stored()
        assert rebuilt is not None and rebuilt[0] != first[0]
    engine.dispose()


def test_the_preferences_page_lists_what_it_learnt_from_and_undo_forgets(tmp_path: Path, db_url: str) -> None:
    shutil.copy(FIXTURES / "library_zotero.bib", tmp_path / "library_zotero.bib")
    config = _write(tmp_path, db_url, ["models"], extra='library = "library_zotero.bib"')
    _fetch(config, [*DAY_1, *DAY_2])
    _feedback(config, "--less", str(DIFFUSION["id"]))
    assert DIFFUSION["title"] not in _titles(_preview(config))
    settings = load_config(config)
    engine = store.open_engine(settings.database_url)
    signer = signer_of(settings, engine, always=True)
    assert signer is not None
    client = AppClient(create_app(settings, engine, signer))
    try:
        page = urlsplit(signer.url(Action.prefs, "ada@example.org")).path
        shown = client.get(page).text
        assert "learns from these and from the 2 papers of your library" in shown
        assert str(DIFFUSION["title"]) in shown
        paper = re.search(r'name="paper" value="(\d+)"', shown)
        assert paper is not None
        undone = client.post(page, data={"do": "undo", "paper": paper.group(1)})
        assert undone.status_code == 200 and "Forgotten." in undone.text and "Nothing yet" in undone.text
    finally:
        client.close()
        engine.dispose()
    assert DIFFUSION["title"] in _titles(_preview(config))
    _write(tmp_path, db_url, ["models"], extra="learn = false")
    engine = store.open_engine(db_url)
    client = AppClient(create_app(load_config(config), engine, signer))
    try:
        assert "Learning is off for your digest" in client.get(page).text
    finally:
        client.close()
        engine.dispose()


def test_a_stored_model_reads_back_whole_at_its_edges() -> None:
    """No words kept, empty vectors, a title with a line break, non-ASCII words, extreme values."""
    empty = ReaderModel({}, 0.0, (), (), frozenset(), "", (0, 0))
    odd = ReaderModel(
        {"zoë": 0.5, "x": -1e-300},
        -2.5,
        (("Two\nlines “quoted”", {"a": 1.0}), ("empty", {})),
        ({}, {"b": 0.1}),
        frozenset({3, 1}),
        "fp",
        (2, 2),
    )
    for model in (empty, odd):
        assert ReaderModel.from_bytes(model.to_bytes()) == model
