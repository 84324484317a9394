"""The fast message path equals the `email` package byte for byte, on hostile input.

`Composer.build_bytes` (cached paper blocks, headers folded by `digest.mime`) must write exactly what
`Composer.build` (an `EmailMessage`) writes; each shortcut is also checked against the package alone.
"""

from __future__ import annotations

import datetime as dt
import email
import textwrap
from email import quoprimime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any, Literal
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import mime
from digest.compose import Composer, DigestInfo, paper_views, unsubscribe_links, wrap
from digest.models import Paper
from digest.ranking import Match, RankedPaper
from tests.reference_mime import reference_message

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
FROM = "Daily Papers <papers@example.org>"
WORDS = ["a", "mamba", "State", "=?utf-8?q?x?=", "Zoë", "naïve", "…", "(x)", '"q"', "<a@b>", "x" * 80, "é" * 30]

words = st.lists(st.sampled_from(WORDS) | st.text(min_size=1, max_size=12), max_size=14).map(" ".join)
simple_addr = st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9_+-]{1,8})?@[a-z0-9-]{1,20}\.(org|example|com)", fullmatch=True)
any_addr = simple_addr | st.sampled_from(["a b@example.org", 'q"x@example.org', "long" * 20 + "@example.org"])


@pytest.fixture(scope="module")
def composer() -> Composer:
    return Composer()


def _one_line(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


@given(
    name=st.sampled_from(["Subject", "List-Unsubscribe", "List-Id"]),
    value=words.map(_one_line),
)
def test_unstructured_headers_fold_like_the_email_package(name: str, value: str) -> None:
    assert mime.fold_unstructured(name, value) == str(SMTP.header_factory(name, value).fold(policy=SMTP))


@given(display=words.map(_one_line), addr=any_addr)
def test_address_headers_fold_like_the_email_package(display: str, addr: str) -> None:
    try:
        value: Address | str = Address(display_name=display, addr_spec=addr)
    except (ValueError, IndexError):
        value = addr
    expected = str(SMTP.header_factory("To", value).fold(policy=SMTP))
    assert mime.fold_address("To", display, addr) == expected


SURROGATES: tuple[Literal["Cs"]] = ("Cs",)


@given(
    st.text(
        alphabet=st.sampled_from("ab =\t\x0b\x85é…€\n\r") | st.characters(blacklist_categories=SURROGATES), max_size=400
    )
)
def test_quoted_printable_bodies_match_the_email_package(text: str) -> None:
    lines = text.encode().splitlines()
    expected = quoprimime.body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), 78)
    assert mime.encode_body(text, "quoted-printable") == expected.replace("\n", "\r\n").encode()


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=60, max_size=600))
def test_long_safe_lines_soft_break_like_the_email_package(line: str) -> None:
    expected = quoprimime.body_encode(line + "\n", 78)
    assert mime.encode_body(line, "quoted-printable") == expected.replace("\n", "\r\n").encode()


@given(
    st.lists(st.sampled_from(["a", "bb", " ", "  ", "-", "\t", "\n", "\u3000", "é", "x" * 90]), max_size=80).map(
        "".join
    )
)
def test_wrap_matches_textwrap(text: str) -> None:
    for first in (None, " 1. ", "100. "):
        expected = textwrap.fill(
            " ".join(text.split()),
            width=78,
            initial_indent="    " if first is None else first,
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        assert wrap(text, first=first) == expected


def _paper(i: int, title: str, **fields: Any) -> Paper:
    return Paper(
        key=f"k{i}",
        title=title,
        abstract=fields.pop("abstract", "We study things. It works well. " * 5),
        authors=fields.pop("authors", ["Ada Lovelace", "Zoë Núñez"]),
        arxiv_id=f"2611.{i:05d}",
        url=f"https://huggingface.co/papers/2611.{i:05d}",
        upvotes=fields.pop("upvotes", i),
        first_seen_at=NOW,
        last_seen_at=NOW,
        **fields,
    )


POOL = [_paper(i, t) for i, t in enumerate(["Mamba Meets Vision", "Naïve Bayes, Revisited…", "=?utf-8?q?x?= LLM"])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    title=words,
    name=words,
    addr=any_addr,
    from_addr=st.sampled_from([FROM, "papers@example.org", "Ünï Papers <p@example.org>", '"A, B" <x@example.org>']),
    url_template=st.sampled_from(["", "https://example.org/u?e={email}&t={token}"]),
    order=st.permutations(range(4)),
    matched=st.lists(st.sampled_from(["mamba", "state space model", "Zoë"]), max_size=3, unique=True),
)
def test_fast_bytes_equal_the_email_message(
    composer: Composer,
    title: str,
    name: str,
    addr: str,
    from_addr: str,
    url_template: str,
    order: list[int],
    matched: list[str],
) -> None:
    papers = [*POOL, _paper(9, title or "x")]
    ranked = [RankedPaper(papers[i], 1.0, tuple(Match(m, ("title",)) for m in matched)) for i in order]
    url, mailto = unsubscribe_links(addr, from_addr, url_template, "secret")
    info = DigestInfo(addr, name, NOW.date(), ["mamba", *matched], from_addr, url, mailto)
    for views in (paper_views(ranked), paper_views(ranked[:1], (0, 0)), []):
        data, message_id = composer.build_bytes(info, views, NOW)
        reference = reference_message(composer, info, views, NOW)
        assert data == bytes(reference)
        assert message_id == reference["Message-ID"]


def test_cached_blocks_follow_rank_and_content(composer: Composer) -> None:
    """The same paper at another rank, or with other matched terms, is never served a stale block."""
    info = DigestInfo("ada@example.org", "Ada", NOW.date(), ["mamba"], FROM)
    a = [RankedPaper(POOL[0], 1.0, (Match("mamba", ("title",)),)), RankedPaper(POOL[1], 0.5)]
    b = [RankedPaper(POOL[1], 1.0), RankedPaper(POOL[0], 0.5, (Match("vision", ("title", "abstract")),))]
    for ranked in (a, b, a):
        fitted = composer.fit(info, ranked, NOW)
        assert fitted.data == bytes(reference_message(composer, info, paper_views(ranked), NOW))
    text = composer.fit(info, b, NOW).message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert " 2. Mamba Meets Vision" in body and '"vision" in the title and abstract' in body


@given(st.lists(st.text(alphabet=st.sampled_from("abc/?=&%:é "), min_size=1, max_size=1500), min_size=1, max_size=3))
def test_uri_lists_fold_to_short_ascii_lines_that_read_back(uris: list[str]) -> None:
    """Every physical line within RFC 5322's 998 octets, pure ASCII, and the URIs read back once the
    folding whitespace is dropped, as RFC 2369 tells clients to."""
    folded = mime.fold_uri_list("List-Unsubscribe", uris)
    assert folded.isascii()
    assert all(len(line) <= 998 for line in folded.split("\r\n"))
    value = folded.split(":", 1)[1].replace("\r\n ", "").strip()
    expected = [quote(u, safe=mime._URI_SAFE) for u in uris]
    assert [part.strip().strip("<>") for part in value.split(">,")] == expected


@given(st.text(alphabet=st.sampled_from("ab \r\n\t<>&é"), max_size=300))
def test_7bit_bodies_match_the_email_package(text: str) -> None:
    """Line ends normalised to CRLF, one final CRLF, exactly as `set_content(..., cte="7bit")` stores it."""
    expected = b"".join(line + b"\r\n" for line in text.encode().splitlines()) or b"\r\n"
    assert mime.encode_body(text, "7bit") == expected


@given(st.lists(st.sampled_from(["a" * 400, "b", "\r", "\n", "\r\n", "\x0c", "\x0b", "é"]), max_size=12))
def test_7bit_is_chosen_exactly_when_every_line_sent_fits(pieces: list[str]) -> None:
    """No encoded line over 998 octets goes out as 7bit: lines are what SMTP sees (a form feed breaks none)."""
    body = "".join(pieces)
    fits = body.isascii() and all(len(line) <= 998 for line in mime.encode_body(body, "7bit").split(b"\r\n"))
    assert (mime.transfer_encoding(body) == "7bit") == fits


@settings(max_examples=40, deadline=None)
@given(html=st.text(max_size=300), text=st.text(max_size=50))
def test_the_html_part_reads_back_as_the_email_package_reads_it(html: str, text: str) -> None:
    data = mime.alternative(["Subject: x\r\n"], "==b", text, html)
    message = email.message_from_bytes(data, policy=SMTP)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("html",))
    assert part is not None and mime.html_part(data) == part.get_content()
