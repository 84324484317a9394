"""Property-based fuzzing of every parser: any input ends as a value or a clear, expected error.

Runs `DIGEST_FUZZ_EXAMPLES` examples per parser (default 2000 in CI); set it higher to dig deeper.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.config import ConfigError, parse_config
from digest.models import PaperRecord
from digest.ranking import KeywordError, compile_terms, parse_keyword
from digest.sources.base import RecordError
from digest.sources.file import parse_jsonl, parse_page_dump
from digest.sources.hf_daily import parse_hf_item

EXAMPLES = int(os.environ.get("DIGEST_FUZZ_EXAMPLES", "2000"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=6), scalars, max_size=3)
FIELDS = [
    "id",
    "title",
    "summary",
    "authors",
    "upvotes",
    "publishedAt",
    "submittedOnDailyAt",
    "ai_summary",
    "ai_keywords",
    "githubRepo",
    "githubStars",
    "projectPage",
    "discussionId",
    "doi",
]
hf_items = st.fixed_dictionaries(
    {},
    optional={
        "paper": st.fixed_dictionaries({}, optional={f: json_values for f in FIELDS}) | json_values,
        "title": json_values,
        "summary": json_values,
        "thumbnail": json_values,
        "numComments": json_values,
        "publishedAt": json_values,
    },
)


def _valid(record: PaperRecord) -> None:
    assert record.title and "\x00" not in record.title
    for url in (record.url, record.github_repo, record.project_page, record.thumbnail):
        assert url is None or url.lower().startswith(("http://", "https://"))


@fuzz
@given(hf_items | json_values)
def test_hf_item_parser(item: object) -> None:
    try:
        _valid(parse_hf_item(item, "fuzz"))
    except RecordError as exc:
        assert str(exc)


@fuzz
@given(st.text())
def test_page_dump_parser(text: str) -> None:
    for record in parse_page_dump(text, "fuzz").records:
        _valid(record)


@fuzz
@given(st.lists(st.one_of(st.text(max_size=30), hf_items.map(json.dumps)), max_size=3))
def test_jsonl_parser(lines: list[str]) -> None:
    result = parse_jsonl("\n".join(lines), "fuzz", "f.jsonl")
    for record in result.records:
        _valid(record)


toml_scalars = st.one_of(
    st.integers(-10, 10_000).map(str),
    st.text(max_size=12).map(json.dumps),
    st.sampled_from(["true", "false", "[]", '["mamba", "x^2"]', "{}", '"07:00"', '"Europe/Berlin"', "1.5"]),
)
keys = st.sampled_from(
    [
        "email",
        "name",
        "keywords",
        "exclude",
        "max_papers",
        "send_at",
        "timezone",
        "days",
        "synonyms",
        "port",
        "host",
        "security",
        "transport",
        "lookback_days",
        "bogus",
    ]
)


@fuzz
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "[smtp]", "[schedule]", "[delivery]", "[[subscribers]]", "[[sources]]"]),
            keys,
            toml_scalars,
        ),
        max_size=8,
    ),
    st.text(max_size=40),
)
def test_config_parser(entries: list[tuple[str, str, str]], noise: str) -> None:
    text = "\n".join(f"{table}\n{key} = {value}" for table, key, value in entries) + "\n" + noise
    try:
        parse_config(text, Path("/fuzz/digest.toml"))
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("/fuzz/digest.toml")
        assert "Traceback" not in message


@fuzz
@given(st.text(max_size=40))
def test_keyword_syntax(raw: str) -> None:
    try:
        label, weight = parse_keyword(raw)
    except KeywordError as exc:
        assert raw in str(exc) or repr(raw) in str(exc)
        return
    assert label and 0 < weight <= 100
    assert compile_terms([raw])


SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
xml_text = st.text(alphabet=st.characters(blacklist_categories=SURROGATES), max_size=40)


def _atom(title: str, ident: str, summary: str, author: str, date: str, link: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom"><title>q</title>'
        f"<entry><id>{ident}</id><title>{title}</title><summary>{summary}</summary>"
        f"<author><name>{author}</name></author><published>{date}</published><updated>{date}</updated>"
        f'<link href="{link}" rel="alternate"/></entry></feed>'
    ).encode("utf-8", "surrogatepass")


def _rss(title: str, guid: str, description: str, creator: str, date: str, link: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom"><channel><title>c</title>'
        f"<item><title>{title}</title><link>{link}</link><description>{description}</description>"
        f"<guid>{guid}</guid><dc:creator>{creator}</dc:creator><pubDate>{date}</pubDate>"
        f"<arxiv:announce_type>new</arxiv:announce_type></item></channel></rss>"
    ).encode("utf-8", "surrogatepass")


FEED_EXAMPLES = EXAMPLES
feed_fuzz = settings(max_examples=FEED_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
ids = st.one_of(
    xml_text,
    st.sampled_from(
        [
            "http://arxiv.org/abs/2401.01234v2",
            "oai:arXiv.org:2401.01234v3",
            "hep-th/9901001v1",
            "javascript:alert(1)",
            "",
        ]
    ),
)


def _feed_records(body: bytes) -> None:
    from digest.sources import arxiv, rss
    from digest.sources.base import SourceError
    from digest.sources.feeds import parse_feed
    from digest.sources.http import Fetched

    try:
        parsed = parse_feed(Fetched("http://127.0.0.1/feed", 200, body, "application/xml"))
    except SourceError as exc:
        assert str(exc)
        return
    for entry in parsed.entries:
        for parse in (arxiv.parse_api_entry, arxiv.parse_rss_entry, rss.parse_entry):
            try:
                _valid(parse(entry, "fuzz"))
            except RecordError as exc:
                assert str(exc)


@feed_fuzz
@given(xml_text, ids, xml_text, xml_text, xml_text, xml_text)
def test_atom_parser(title: str, ident: str, summary: str, author: str, date: str, link: str) -> None:
    _feed_records(_atom(title, ident, summary, author, date, link))


@feed_fuzz
@given(xml_text, ids, xml_text, xml_text, xml_text, xml_text)
def test_rss_parser(title: str, guid: str, description: str, creator: str, date: str, link: str) -> None:
    _feed_records(_rss(title, guid, description, creator, date, link))


@feed_fuzz
@given(st.binary(max_size=300))
def test_feed_parser_on_junk_bytes(body: bytes) -> None:
    _feed_records(body)


# ---------------------------------------------------------------- names, TeX, markup (sources.text)

TEX_PIECES = [
    "\\'e",
    '\\"o',
    "\\v{c}",
    "{\\l}",
    "\\u{g}",
    "{\\i}",
    "\\c c",
    "\\c",
    "\\ss",
    "\\$",
    "\\%",
    "\\&",
    "\\textit{",
    "{\\em ",
    "\\alpha",
    "\\cite{x}",
    "\\",
    "\\\\",
    "$",
    "$$",
    "\\(",
    "\\)",
    "\\[",
    "{",
    "}",
    "\\'",
    "\\H",
    "~",
    " ",
    "a",
    "Z",
    "é",
    "\x00",
    "\ud800",
]
NAME_PIECES = [
    "Ana Souza",
    "Kukla",
    "D.",
    "J.-P.",
    "JP",
    ",",
    ", ",
    ";",
    " and ",
    " & ",
    "(",
    ")",
    "[",
    "]",
    "et al.",
    "(909 additional authors not shown)",
    "others",
    "van der Berg",
    "University of Birmingham, UK",
    " ",
    "",
]
MARKUP_PIECES = [
    "<sub>",
    "</sub>",
    "<sup>",
    "</sup>",
    "2",
    "+",
    "<p>",
    "</p>",
    "<br/>",
    "<i>",
    "</i>",
    "<a href='x'>",
    "</a>",
    "<!-- c -->",
    "<",
    ">",
    "&amp;",
    "&lt;",
    "&#x2;",
    "CO",
    " ",
    "<sub><sup>",
    "<td>",
    "x < y",
]


def _joined(pieces: list[str], alphabet: st.SearchStrategy[str] = xml_text) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces) | alphabet, max_size=12).map("".join)


@fuzz
@given(_joined(TEX_PIECES, st.text(max_size=4)))
def test_tex_to_unicode(text: str) -> None:
    from digest.sources.text import tex_to_unicode

    out = tex_to_unicode(text)
    assert out.count("\\") <= text.count("\\"), "conversion never adds a backslash"
    if "\\" not in text:
        assert out == text


@fuzz
@given(_joined(NAME_PIECES + TEX_PIECES, st.text(max_size=6)), st.booleans())
def test_author_names(text: str, one_person: bool) -> None:
    from digest.sources.text import MAX_NAME, author_list, split_names

    for name in split_names(text, one_person=one_person):
        assert name and name == name.strip() and len(name) <= MAX_NAME and "\x00" not in name
    names = author_list([text, text[::-1]], limit=3)
    assert len(names) <= 3 and len(set(names)) == len(names)


@fuzz
@given(_joined(MARKUP_PIECES + TEX_PIECES, st.text(max_size=6)))
def test_markup_to_plain_text(text: str) -> None:
    from digest.sources.text import plain

    out = plain(text, limit=200)
    assert len(out) <= 200 and "\x00" not in out and "\n" not in out and out == out.strip()
    if "&" not in text:
        assert "<sub>" not in out and "<p>" not in out


@fuzz
@given(xml_text, _joined(NAME_PIECES + TEX_PIECES), xml_text, xml_text, ids)
def test_rdf_parser_with_dc_elements(title: str, creator: str, identifier: str, dc_title: str, about: str) -> None:
    from xml.sax.saxutils import escape, quoteattr

    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="c">'
        f"<title>c</title></channel><item rdf:about={quoteattr(about)}><title>{escape(title)}</title>"
        f"<link>{escape(about)}</link><dc:creator>{escape(creator)}</dc:creator>"
        f"<dc:identifier>info:doi/{escape(identifier)}</dc:identifier><dc:identifier>{escape(identifier)}</dc:identifier>"
        f"<dc:title>{escape(dc_title)}</dc:title></item></rdf:RDF>"
    ).encode("utf-8", "surrogatepass")
    _feed_records(body)


def test_counts_that_are_not_finite_or_too_big() -> None:
    for value, expected in [(float("inf"), 0), (float("nan"), 0), (-5, 0), (10**30, 2**31 - 1), (7.9, 7)]:
        record = parse_hf_item({"paper": {"title": "T", "upvotes": value}, "numComments": value}, "f")
        assert (record.upvotes or 0) == expected and (record.comments or 0) == expected
