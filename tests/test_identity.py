"""Identity keys: arXiv ids in every shape the sources use, DOIs, and title fingerprints on the real corpus."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.identity import (
    ArxivId,
    key_strength,
    keys_for,
    normalize_doi,
    parse_arxiv_id,
    strip_tex,
    title_fingerprint,
    title_key,
)
from digest.models import PaperRecord
from digest.sources.file import read_file
from tests.helpers import corpus_files


def key(title: str) -> str:
    return title_key(title_fingerprint(title), title)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2401.01234", ArxivId("2401.01234", None)),
        ("2401.01234v3", ArxivId("2401.01234", 3)),
        ("0704.0001", ArxivId("0704.0001", None)),
        ("arXiv:0704.0001v1", ArxivId("0704.0001", 1)),
        ("hep-th/9901001v2", ArxivId("hep-th/9901001", 2)),
        ("HEP-TH/9901001", ArxivId("hep-th/9901001", None)),
        ("math.GT/0309136", ArxivId("math/0309136", None)),
        ("cond-mat/0102536v1", ArxivId("cond-mat/0102536", 1)),
        ("http://arxiv.org/abs/2401.01234v2", ArxivId("2401.01234", 2)),
        ("https://export.arxiv.org/abs/2401.01234", ArxivId("2401.01234", None)),
        ("https://arxiv.org/pdf/2401.01234v2.pdf", ArxivId("2401.01234", 2)),
        ("https://arxiv.org/pdf/2401.01234v2", ArxivId("2401.01234", 2)),
        ("https://arxiv.org/abs/hep-th/9901001v2/", ArxivId("hep-th/9901001", 2)),
        ("oai:arXiv.org:2401.01234v3", ArxivId("2401.01234", 3)),
        ("oai:arXiv.org:hep-th/9901001v2", ArxivId("hep-th/9901001", 2)),
        ("arXiv:2401.01234v2 [cs.LG]", ArxivId("2401.01234", 2)),
        ("arXiv:2401.01234v2 Announce Type: new Abstract: We", ArxivId("2401.01234", 2)),
        ("https://doi.org/10.48550/arXiv.2401.01234", ArxivId("2401.01234", None)),
        ("https://huggingface.co/papers/2401.01234", ArxivId("2401.01234", None)),
        ("  2401.01234  ", ArxivId("2401.01234", None)),
    ],
)
def test_arxiv_ids_in_every_shape(text: str, expected: ArxivId) -> None:
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "2413.01234",  # no month 13
        "2401.0123",  # 5 digits since 2015
        "1412.12345",  # 4 digits before 2015
        "2401.012345",
        "https://example.org/2401.01234",
        "10.1145/3292500.3330701",
        "Tight bounds 2401.01234",
    ],
)
def test_not_arxiv_ids(text: str | None) -> None:
    assert parse_arxiv_id(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.1145/3292500.3330701", "10.1145/3292500.3330701"),
        ("doi:10.1145/3292500.3330701.", "10.1145/3292500.3330701"),
        ("https://doi.org/10.1000/ABC.Def", "10.1000/abc.def"),
        ("https://doi.org/10.1000%2FABC", "10.1000/abc"),
        ("(see 10.1000/xyz)", "10.1000/xyz"),
        ("10.1016/0010-0277(88)90032-6", "10.1016/0010-0277(88)90032-6"),
        ("not a doi", None),
        (None, None),
    ],
)
def test_normalize_doi(text: str | None, expected: str | None) -> None:
    assert normalize_doi(text) == expected


@pytest.mark.parametrize(
    ("tex", "plain"),
    [
        ("$\\ell_p$", "ell_p"),
        ("$\\beta$-VAE", "beta-VAE"),
        ("$\\delta$ and $\\varepsilon$", "delta and varepsilon"),
        ("\\textbf{Deep} \\emph{nets}", "Deep nets"),
        ("$\\mathcal{O}(n)$", "O(n)"),
        ('Schr\\"odinger and Schr\\"{o}dinger', "Schrodinger and Schrodinger"),
        ("Mart\\'{\\i}nez", "Martinez"),
        ("\\v{C}ech", "Cech"),
    ],
)
def test_strip_tex(tex: str, plain: str) -> None:
    assert strip_tex(tex) == plain


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Sharper Bounds for ell_p Sensitivity Sampling", "Sharper Bounds for $\\ell_p$ Sensitivity Sampling"),
        ("Sharper Bounds for ℓp Sensitivity Sampling", "sharper bounds for $\\ell_{p}$ sensitivity sampling"),
        ("A$^2$ATS: Retrieval", "A²ATS: Retrieval"),
        ("$\\alpha\\beta$-CROWN", "αβ-CROWN"),
        ("$\\varepsilon$-greedy exploration", "ε-Greedy Exploration"),
        ("Light Schrödinger Bridge", 'Light Schr\\"odinger Bridge'),
        ("Pre-training at Scale", "Pretraining at scale"),
        ("Learning on $\\mathbb{R}^n$", "Learning on mathbb R^n"),
        ("Q&amp;A over Tables", "Q&A over tables"),
    ],
)
def test_spellings_of_one_title_share_a_key(a: str, b: str) -> None:
    assert key(a) == key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Linear Attention Sequence Parallelism", "LASP-2: Rethinking Sequence Parallelism for Linear Attention"),
        ("Sharper Bounds for ell_p Sensitivity Sampling", "Sharper Bounds for ell_q Sensitivity Sampling"),
        ("On the Existence of Simpler Machine Learning Models", "On the Existence of Simple Machine Learning Models"),
        ("$$", "$ $ $"),
    ],
)
def test_different_titles_get_different_keys(a: str, b: str) -> None:
    assert key(a) != key(b)


def test_keys_strongest_first_and_never_empty() -> None:
    rec = PaperRecord(
        source="s", title="A Title", doi="https://doi.org/10.1000/X", url="https://arxiv.org/abs/2401.01234v2"
    )
    assert keys_for(rec) == ["arxiv:2401.01234", "doi:10.1000/x", "title:atitle"]
    assert [key_strength(k) for k in keys_for(rec)] == [0, 1, 2]
    (only,) = keys_for(PaperRecord(source="s", title="$\\;$"))
    assert only.startswith("title:#")
    with pytest.raises(ValueError, match="not an identity key"):
        key_strength("isbn:123")


def test_long_titles_are_shortened_with_a_hash() -> None:
    long_a, long_b = "word " * 100 + "alpha", "word " * 100 + "beta"
    assert len(key(long_a)) < 260
    assert key(long_a) != key(long_b)


# ---------------------------------------------------------------- the real corpus


@functools.cache
def corpus_records() -> tuple[PaperRecord, ...]:
    return tuple(r for path in corpus_files() for r in read_file(path, path.stem).records)


@functools.cache
def corpus_titles() -> tuple[list[str], frozenset[str]]:
    titles = sorted({r.title for r in corpus_records()})
    return titles, frozenset(key(t) for t in titles)


def _text_key(text: str) -> str:
    return title_fingerprint(text).replace(" ", "")


def test_corpus_title_keys_agree_exactly_with_abstracts() -> None:
    """Two corpus items share a title key exactly when they carry the same abstract: the abstract is independent
    evidence that they are one paper, so this shows no spelling is missed and no two papers collide."""
    records = corpus_records()
    by_key: dict[str, set[str]] = {}
    by_abstract: dict[str, set[str]] = {}
    for r in records:
        by_key.setdefault(key(r.title), set()).add(_text_key(r.abstract))
        by_abstract.setdefault(_text_key(r.abstract), set()).add(key(r.title))
    assert all(len(v) == 1 for v in by_key.values())
    assert all(len(v) == 1 for v in by_abstract.values())
    assert len(records) == 382
    assert len(by_key) == 361
    spellings = {r.title for r in records if key(r.title) == key("Sharper Bounds for ell_p Sensitivity Sampling")}
    assert spellings == {
        "Sharper Bounds for ell_p Sensitivity Sampling",
        "Sharper Bounds for $\\ell_p$ Sensitivity Sampling",
    }


# ---------------------------------------------------------------- properties

_TEX_SAFE = str.maketrans("", "", "$\\{}^_")
_WHITESPACE = st.sampled_from([" ", "  ", "\t", "\n", " \n ", "\u00a0", "\u2009"])
_ACCENTS = {"é": "\\'e", "ö": '\\"o', "ü": '\\"{u}', "è": "\\`e", "ñ": "\\~n", "á": "\\'{a}", "ç": "\\c{c}"}


@st.composite
def spelled(draw: st.DrawFn, title: str) -> str:
    """The same title as another source might spell it: case, white space, hyphens, TeX markup, TeX accents."""
    words = title.split()
    out = [draw(st.sampled_from(["", " ", "\n"]))]
    for index, word in enumerate(words):
        case = draw(st.sampled_from(["same", "upper", "lower", "swap"]))
        word = {"upper": word.upper(), "lower": word.lower(), "swap": word.swapcase()}.get(case, word)
        if draw(st.booleans()):
            word = word.replace("-", draw(st.sampled_from([" ", " - ", "--"])))
        if word.translate(_TEX_SAFE) == word and draw(st.booleans()):
            wrap = draw(st.sampled_from(["\\textbf{%s}", "\\emph{%s}", "{\\bf %s}", "$%s$", "\\textit{%s}"]))
            word = wrap % word
        if draw(st.booleans()):
            word = "".join(_ACCENTS.get(c, c) for c in word)
        out.append(word)
        if index < len(words) - 1:
            out.append(draw(st.sampled_from(["-", "--"])) if draw(st.integers(0, 5)) == 0 else draw(_WHITESPACE))
    out.append(draw(st.sampled_from(["", " ", "\t"])))
    return "".join(out)


_plain_titles = st.lists(
    st.text(st.characters(categories=["Lu", "Ll", "Nd"], codec="latin-1"), min_size=1, max_size=12),
    min_size=1,
    max_size=8,
).map(" ".join)


@given(title=_plain_titles, data=st.data())
def test_fingerprint_stable_under_spelling(title: str, data: st.DataObject) -> None:
    assert title_fingerprint(data.draw(spelled(title))) == title_fingerprint(title)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_corpus_titles_keep_their_own_key_under_spelling(data: st.DataObject) -> None:
    titles, keys = corpus_titles()
    title = data.draw(st.sampled_from(titles))
    variant = data.draw(spelled(title))
    assert title_fingerprint(variant) == title_fingerprint(title)
    assert key(variant) == key(title)
    assert len(keys) == 361


@given(st.text(max_size=80))
def test_fingerprint_is_normalised_and_idempotent(text: str) -> None:
    fp = title_fingerprint(text)
    assert fp == fp.strip() and "  " not in fp
    assert all(c == " " or c.isalnum() for c in fp)
    assert title_fingerprint(fp) == fp
    assert key(text).startswith("title:")
