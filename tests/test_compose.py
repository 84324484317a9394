"""The email itself: parsed back with the `email` package — structure, every header, escaping, size, text layout.

`DIGEST_UPDATE_GOLDEN=1 pytest tests/test_compose.py` rewrites tests/golden/ after a deliberate template change.
"""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import hmac
import os
import re
import webbrowser
from dataclasses import replace
from email.message import EmailMessage
from email.policy import default
from email.utils import parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from digest.cli import app
from digest.compose import (
    MAX_BYTES,
    SUMMARY_STEPS,
    Composer,
    DigestInfo,
    excerpt,
    link_for_email,
    message_id,
    one_line,
    paper_url,
    paper_views,
    unsubscribe_links,
    unsubscribe_token,
)
from digest.inliner import NotInlinable, inline_fragment
from digest.models import Paper
from digest.ranking import Match, RankedPaper
from digest.sources.file import read_file
from tests.helpers import corpus_files, papers_json
from tests.reference_mime import reference_message

UPDATE_GOLDEN = os.environ.get("DIGEST_UPDATE_GOLDEN") == "1"  # read at import: conftest clears DIGEST_* later
GOLDEN = Path(__file__).parent / "golden"
NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 23)
SECRET = "s3cret-unsubscribe-key"
EXPECTED_HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
]


@pytest.fixture(scope="module")
def composer() -> Composer:
    return Composer()


def paper(i: int, **fields: Any) -> Paper:
    values: dict[str, Any] = {
        "key": f"k{i}",
        "title": f"Paper number {i}",
        "abstract": "",
        "authors": [],
        "first_seen_at": NOW,
        "last_seen_at": NOW,
    }
    values.update(fields)
    return Paper(**values)


def ranked(*papers: Paper, matched: tuple[Match, ...] = (Match("mamba", ("title",)),)) -> list[RankedPaper]:
    return [RankedPaper(p, 1.0 / (i + 1), matched) for i, p in enumerate(papers)]


def info(
    name: str = "Ada Lovelace",
    email_addr: str = "ada@example.org",
    url_template: str = "https://papers.example.org/unsubscribe?email={email}&token={token}",
    interests: tuple[str, ...] = ("linear attention", "state space model", "mamba"),
) -> DigestInfo:
    url, mailto = unsubscribe_links(email_addr, "Daily Papers <papers@example.org>", url_template, SECRET)
    return DigestInfo(
        subscriber_email=email_addr,
        subscriber_name=name,
        digest_date=DAY,
        interests=list(interests),
        from_addr="Daily Papers <papers@example.org>",
        unsubscribe_url=url,
        unsubscribe_mailto=mailto,
    )


def parse(msg: EmailMessage | bytes) -> EmailMessage:
    """The message as a mail client sees it: serialised to bytes and parsed back."""
    parsed = email.message_from_bytes(bytes(msg), policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(msg: EmailMessage) -> tuple[str, str]:
    text_part, html_part = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text_part is not None and html_part is not None
    crlf = "\r\n"  # bodies are serialised with CRLF; a client reads lines
    return str(text_part.get_content()).replace(crlf, "\n"), str(html_part.get_content()).replace(crlf, "\n")


def fixture_papers() -> list[RankedPaper]:
    """The fixed input of the golden file: every kind of field, present and missing."""
    return [
        RankedPaper(
            paper(
                1,
                title="Mamba-3: Selective State Space Models That Scale to Million-Token Contexts Without Attention",
                arxiv_id="2611.01234",
                url="https://huggingface.co/papers/2611.01234",
                authors=["Albert Gu", "Tri Dao", "Sasha Rush", "Jürgen Schmidhuber"],
                upvotes=214,
                comments=17,
                ai_summary="Mamba-3 matches Transformers on long-context retrieval while running in linear time, "
                "thanks to a chunked parallel scan and a learned forgetting gate.",
                abstract="We present Mamba-3. It is long. This abstract is not shown because an AI summary exists.",
                github_repo="https://github.com/state-spaces/mamba",
                project_page="https://mamba3.github.io/",
            ),
            3.2,
            (Match("mamba", ("title", "abstract")), Match("state space model", ("title", "keywords", "abstract"))),
        ),
        RankedPaper(
            paper(
                2,
                title="Linear Attention Is (Almost) All You Need for Speech",
                arxiv_id="2611.04567",
                url="https://arxiv.org/abs/2611.04567",
                authors=["Ada Lovelace", "Grace Hopper"],
                upvotes=3,
                abstract="Linear attention has been proposed many times. We revisit it for speech recognition, where "
                "sequences are long and latency matters. Our model, LinSpeech, reaches the word error rate of a "
                "Conformer with 4.1x less compute. We release code. This fifth sentence is never shown.",
            ),
            1.1,
            (Match("linear attention", ("title", "abstract")),),
        ),
        RankedPaper(
            paper(
                3,
                title="A Paper Seen Only in an RSS Feed, Without Any Identifier",
                url="https://example.com/feed/item/42",
                abstract="Short abstract.",
            ),
            0.4,
            (Match("state space model", ("abstract",)),),
        ),
    ]


# ---------------------------------------------------------------- structure and headers


def test_structure_is_multipart_alternative_text_then_html(composer: Composer) -> None:
    raw = bytes(composer.compose(info(), fixture_papers(), NOW))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    msg = email.message_from_bytes(raw, policy=default)
    assert isinstance(msg, EmailMessage)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    for part in msg.iter_parts():
        assert part.get_content_charset() in {"utf-8", "us-ascii"}
        assert part["Content-Transfer-Encoding"] in {"7bit", "quoted-printable"}
    html_part = msg.get_body(("html",))
    assert html_part is not None
    assert html_part["Content-Transfer-Encoding"] == "7bit", "ASCII HTML, lines < 998: no QP bloat"
    text, html = parts(msg)
    assert text.startswith("Daily papers for Monday 23 November 2026\n")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert html.isascii(), "non-ASCII is sent as character references"


def test_many_interests_and_long_feedback_links_keep_the_html_part_7bit(composer: Composer) -> None:
    """A reader with a dozen interests and feedback links on a long base URL still gets 7bit HTML: chips and
    links are laid out a line each, so no line nears 998 octets and the whole part is not quoted-printable."""
    interests = tuple(f"interest number {n} with words" for n in range(12))
    base = "https://papers.example.org/" + "long-prefix/" * 12
    numbered = [replace(r, paper=paper(n + 10, id=n + 10)) for n, r in enumerate(fixture_papers())]
    reader = replace(info(interests=interests), feedback=lambda pid: (f"{base}m/{pid}.{'x' * 60}", f"{base}l/{pid}"))
    msg = parse(composer.compose(reader, numbered, NOW))
    html_part = msg.get_body(("html",))
    assert html_part is not None and html_part["Content-Transfer-Encoding"] == "7bit"
    _, html = parts(msg)
    assert html.count('class="chip"') == 12 and html.count("More like this") == 3


def test_every_header(composer: Composer) -> None:
    papers = fixture_papers()
    raw = composer.compose(info(), papers, NOW)
    msg = parse(raw)
    assert list(msg.keys()) == EXPECTED_HEADERS
    assert msg["From"] == "Daily Papers <papers@example.org>"
    (to,) = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Ada Lovelace", "ada@example.org")
    assert msg["Subject"] == (
        "Your papers for Mon 23 Nov: Mamba-3: Selective State Space Models That Scale to "
        "Million-Token Contexts Without… +2 more"
    )
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["Message-ID"] == message_id("ada@example.org", DAY, "papers@example.org")
    assert re.fullmatch(r"<digest-2026-11-23\.[0-9a-f]{16}@example\.org>", msg["Message-ID"])
    assert msg["List-Id"] == "Daily papers digest <digest.example.org>"
    token = hmac.new(SECRET.encode(), b"ada@example.org", hashlib.sha256).hexdigest()[:32]
    assert " ".join(msg["List-Unsubscribe"].split()) == (
        "<mailto:papers@example.org?subject=unsubscribe%20ada%40example.org>, "
        f"<https://papers.example.org/unsubscribe?email=ada%40example.org&token={token}>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert SECRET.encode() not in bytes(raw)


def _raw_header(data: bytes, name: str) -> list[bytes]:
    """The physical lines of one header in the message bytes, folding included."""
    lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.lower().startswith(name.lower().encode() + b":"))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    return lines[start:end]


@pytest.mark.parametrize(
    ("address", "template"),
    [
        ("ada@example.org", "https://papers.example.org/unsubscribe?email={email}&token={token}"),
        (
            "a.very.long.local.part.for.testing@subdomain.example.org",
            "https://example.org/u/{token}/{email}?x=" + "y" * 90,
        ),
        ("ada@example.org", "https://papers.example.org/abbestellen/für?e={email}&t={token}"),
    ],
)
def test_list_unsubscribe_keeps_each_uri_whole_on_the_wire(composer: Composer, address: str, template: str) -> None:
    """RFC 2369/8058: mail clients read the URIs from the raw header; RFC 2047 encoded words inside a URI
    (what the email package folds a long URI into) break one-click unsubscribe."""
    inf = info(email_addr=address, url_template=template)
    data = composer.fit(inf, fixture_papers(), NOW).data
    lines = _raw_header(data, "List-Unsubscribe")
    raw = b"".join(lines)
    assert b"=?" not in raw
    assert all(len(line) <= 998 for line in lines)
    assert inf.unsubscribe_url is not None
    url = inf.unsubscribe_url.replace("für", "f%C3%BCr").encode()
    assert b"<" + url + b">" in raw, "the https URI appears verbatim, unbroken"
    assert inf.unsubscribe_mailto is not None
    assert b"<" + inf.unsubscribe_mailto.encode() + b">" in raw
    assert parse(data)["List-Unsubscribe"].split() == [f"<{inf.unsubscribe_mailto}>,", f"<{url.decode()}>"]


def test_subject_counts_and_short_date(composer: Composer) -> None:
    ten = ranked(*(paper(i, title=f"Title {i}") for i in range(10)))
    assert parse(composer.compose(info(), ten, NOW))["Subject"] == "Your papers for Mon 23 Nov: Title 0 +9 more"
    one = parse(composer.compose(info(), ten[:1], NOW))
    assert one["Subject"] == "Your papers for Mon 23 Nov: Title 0"
    early = DigestInfo("a@example.org", "", dt.date(2026, 12, 3), [], "p@example.org")
    none = parse(composer.compose(early, [], NOW))
    assert none["Subject"] == "Your papers for Thu 3 Dec: nothing matched today"
    assert none["To"] == "a@example.org"


def test_without_unsubscribe_url_only_mailto_and_no_one_click(composer: Composer) -> None:
    msg = parse(composer.compose(info(url_template=""), fixture_papers(), NOW))
    assert msg["List-Unsubscribe"].strip() == "<mailto:papers@example.org?subject=unsubscribe%20ada%40example.org>"
    assert "List-Unsubscribe-Post" not in msg
    text, html = parts(msg)
    assert "mailto:papers@example.org?subject=unsubscribe%20ada%40example.org" in text
    assert 'href="mailto:papers@example.org?subject=unsubscribe%20ada%40example.org"' in html


def test_message_id_is_deterministic_per_subscriber_date_and_domain(composer: Composer) -> None:
    a = composer.compose(info(), fixture_papers(), NOW)
    b = Composer().compose(info(), fixture_papers(), NOW)
    assert bytes(a) == bytes(b), "same input, same bytes: preview --format eml equals what send stores"
    ids = {
        message_id("ada@example.org", DAY, "papers@example.org"),
        message_id("grace@example.org", DAY, "papers@example.org"),
        message_id("ada@example.org", DAY + dt.timedelta(days=1), "papers@example.org"),
        message_id("ada@example.org", DAY, "Papers <papers@other.example>"),
    }
    assert len(ids) == 4
    assert message_id("ADA@example.org ", DAY, "papers@example.org") == message_id(
        "ada@example.org", DAY, "x <papers@example.org>"
    )


def test_unsubscribe_token_is_an_hmac_of_the_address() -> None:
    token = unsubscribe_token("Ada@Example.org", SECRET)
    assert token == hmac.new(SECRET.encode(), b"ada@example.org", hashlib.sha256).hexdigest()[:32]
    assert unsubscribe_token("ada@example.org", "other") != token
    url, _ = unsubscribe_links("a+b@example.org", "p@example.org", "https://x.org/u/{email}/{token}", SECRET)
    assert url == f"https://x.org/u/a%2Bb%40example.org/{unsubscribe_token('a+b@example.org', SECRET)}"


def test_long_subject_is_folded_and_unfolds_to_one_line(composer: Composer) -> None:
    title = "Über-long títle about state space models " * 4
    raw = bytes(composer.compose(info(), ranked(paper(1, title=title), paper(2)), NOW))
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    assert all(len(line) <= 78 for line in lines)
    subject_lines = [i for i, line in enumerate(lines) if line.startswith(b"Subject:")]
    assert lines[subject_lines[0] + 1].startswith((b" ", b"\t")), "a long subject is folded"
    subject = email.message_from_bytes(raw, policy=default)["Subject"]
    assert subject.startswith("Your papers for Mon 23 Nov: Über-long títle about state space models")
    assert subject.endswith("… +1 more")
    assert not re.search(r"[\x00-\x1f\x7f]", subject)


# ---------------------------------------------------------------- hostile input


HOSTILE_TITLE = "Hi\r\nBcc: victim@example.net\r\n\r\n<script>alert('title')</script>\x00\u2028\u202eevil"


def test_crlf_in_title_or_name_cannot_inject_headers(composer: Composer) -> None:
    papers = ranked(paper(1, title=HOSTILE_TITLE), paper(2))
    hostile = info(name="Eve\r\nBcc: victim@example.net")
    msg = parse(composer.compose(hostile, papers, NOW))
    assert list(msg.keys()) == EXPECTED_HEADERS
    assert "Bcc" not in msg
    (to,) = msg["To"].addresses
    assert to.addr_spec == "ada@example.org"
    assert "\n" not in to.display_name and "\r" not in to.display_name
    subject = msg["Subject"]
    assert not re.search(r"[\x00-\x1f\x7f\u2028\u202e]", subject)
    assert subject.startswith("Your papers for Mon 23 Nov: Hi Bcc: victim@example.net <script>")
    text, _ = parts(msg)
    assert "\x00" not in text and "\u202e" not in text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.text(min_size=1, max_size=200), name=st.text(max_size=40))
def test_any_title_or_name_yields_exactly_the_expected_headers(composer: Composer, title: str, name: str) -> None:
    # the bytes sent, not `compose` (a parsed message): refolding a parsed header is a CPython round trip, not ours
    msg = parse(composer.fit(info(name=name), ranked(paper(1, title=title)), NOW).data)
    assert list(msg.keys()) == EXPECTED_HEADERS
    assert msg["To"].addresses[0].addr_spec == "ada@example.org"
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["Subject"].startswith("Your papers for Mon 23 Nov: ")


def test_html_autoescapes_titles_abstracts_authors_and_interests(composer: Composer) -> None:
    evil = paper(
        1,
        title="<script>alert('t')</script> & <b>bold</b>",
        abstract='<script>alert("a")</script> Abstract with <img src=x onerror=alert(1)>.',
        authors=["<script>x</script>"],
        url='https://huggingface.co/papers/1"><script>alert(1)</script>',
    )
    interests = ("<script>i</script>",)
    _, html = parts(parse(composer.compose(info(interests=interests), ranked(evil), NOW)))
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(&#34;a&#34;)&lt;/script&gt;" in html
    assert "&lt;script&gt;i&lt;/script&gt;" in html


def test_feedback_links_are_escaped_in_the_html_and_kept_whole_in_the_text(composer: Composer) -> None:
    """Signed links never hold `&`, quotes or brackets, and skip escaping; a link that does is escaped."""
    plain, odd = "https://papers.example.org/f/m.x.1", "https://papers.example.org/f/l?a=1&b=\"<x>'"
    reader = replace(info(), feedback=lambda pid: (plain, odd))
    text, html = parts(parse(composer.compose(reader, ranked(paper(1, id=1)), NOW)))
    assert f'href="{plain}"' in html
    assert 'href="https://papers.example.org/f/l?a=1&amp;b=&#34;&lt;x&gt;&#39;"' in html
    assert plain in text and odd in text


def test_javascript_and_other_schemes_never_become_links(composer: Composer) -> None:
    bad = paper(
        1,
        url="javascript:alert(document.cookie)",
        github_repo=" JavaScript:alert(1)",
        project_page="data:text/html,<script>alert(1)</script>",
    )
    tricky = paper(2, url="https://exa mple.org/x", github_repo="https://github.com/ok/repo\nBcc: x")
    text, html = parts(parse(composer.compose(info(), ranked(bad, tricky), NOW)))
    for body in (text, html.lower()):
        assert "javascript:" not in body.lower()
        assert "data:text" not in body
        assert "exa mple" not in body
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs and all(h.startswith(("https://", "mailto:")) for h in hrefs)
    assert link_for_email("https://github.com/ok/repo\nBcc: x") is None
    assert link_for_email("http://") is None
    assert link_for_email(" https://arxiv.org/abs/1 ") == "https://arxiv.org/abs/1"


# ---------------------------------------------------------------- content


def test_per_paper_content_in_both_parts(composer: Composer) -> None:
    text, html = parts(parse(composer.compose(info(), fixture_papers(), NOW)))
    assert 'href="https://huggingface.co/papers/2611.01234"' in html, "HF page first"
    assert 'href="https://arxiv.org/abs/2611.04567"' in html, "else arXiv abs"
    assert 'href="https://example.com/feed/item/42"' in html, "else the source link"
    assert "Albert Gu, Tri Dao, Sasha Rush et al." in html
    assert "214 upvotes &#183; 17 comments" in html
    assert "Why you&#8217;re seeing this: <b>mamba</b> in the title and abstract" in html
    assert "<b>state space model</b> in the title, keywords and abstract" in html
    assert "thanks to a chunked parallel scan" in html, "ai_summary is preferred"
    assert "not shown because" not in html
    assert ">Code</a>" in html and ">Project page</a>" in html and ">arXiv</a>" in html
    assert "3 new papers for you" in html
    for term in ("linear attention", "state space model", "mamba"):
        assert f">{term}</span>" in html
    assert "Monday 23 November 2026" in html
    for body in (text, html):
        assert "You receive this because ada@example.org is subscribed" in body
        assert "To change your interests" in body
        assert "Unsubscribe" in body
    assert '<meta name="color-scheme" content="light dark">' in html


def test_summary_is_first_sentences_cut_on_a_boundary() -> None:
    abstract = "One. Two is here. Three is here too. Four never shows."
    assert excerpt(abstract) == "One. Two is here. Three is here too."
    long = "A first sentence that is fairly long and informative. " * 20
    cut = excerpt(long, 120)
    assert cut.endswith(".") and len(cut) <= 120 and cut.count(".") == 2
    no_stop = "word " * 200
    assert excerpt(no_stop, 50).endswith("…") and len(excerpt(no_stop, 50)) <= 50
    assert excerpt("Anything.", 0) == ""
    ai = paper(1, ai_summary="The AI summary.", abstract="The abstract.")
    assert paper_views(ranked(ai))[0].summary == "The AI summary."


def test_paper_url_prefers_hf_then_arxiv_then_source() -> None:
    assert paper_url(paper(1, url="https://huggingface.co/papers/1", arxiv_id="1")) == "https://huggingface.co/papers/1"
    assert paper_url(paper(1, url="https://example.org/x", arxiv_id="2401.00001")) == "https://arxiv.org/abs/2401.00001"
    assert paper_url(paper(1, url="https://example.org/x")) == "https://example.org/x"
    assert paper_url(paper(1, arxiv_id="hep-th/9901001")) == "https://arxiv.org/abs/hep-th/9901001"
    assert paper_url(paper(1, url="javascript:x")) is None


def test_trending_digest_without_interests_and_the_empty_digest(composer: Composer) -> None:
    trending = info(interests=())
    text, html = parts(parse(composer.compose(trending, ranked(paper(1, upvotes=5), matched=()), NOW)))
    assert "most upvoted papers" in text and "most upvoted papers" in html
    assert "Why" not in text
    text, html = parts(parse(composer.compose(info(), [], NOW)))
    assert "Nothing new matched" in text and "Nothing new matched" in html


# ---------------------------------------------------------------- text part layout


def test_text_part_is_78_columns_numbered_with_urls_on_their_own_lines(composer: Composer) -> None:
    papers = ranked(
        *fixture_papers_as_papers(),
        *(paper(i, title="Word " * 40, abstract="Sentence number one is here. " * 30) for i in range(4, 13)),
    )
    text, _ = parts(parse(composer.compose(info(), papers, NOW)))
    for line in text.splitlines():
        assert len(line) <= 78 or re.fullmatch(r"\s*https?://\S+", line), line
    for match in re.finditer(r"https?://\S+", text):
        line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
        assert line.strip() == match.group(0), f"URL not alone on its line: {line!r}"
    numbers = re.findall(r"^ ?(\d+)\. ", text, flags=re.MULTILINE)
    assert numbers == [str(i) for i in range(1, 13)]


def fixture_papers_as_papers() -> list[Paper]:
    return [r.paper for r in fixture_papers()]


def test_text_part_of_real_corpus_papers_stays_within_78_columns(composer: Composer) -> None:
    records = read_file(corpus_files()[0], "corpus").records[:30]
    papers = [paper(i, title=r.title, abstract=r.abstract, authors=list(r.authors)) for i, r in enumerate(records)]
    msg = parse(composer.compose(info(), ranked(*papers), NOW))
    text, _ = parts(msg)
    assert all(len(line) <= 78 or line.strip().startswith("http") for line in text.splitlines())
    assert len(bytes(msg)) < MAX_BYTES


def test_golden_text_part(composer: Composer) -> None:
    text, _ = parts(parse(composer.compose(info(), fixture_papers(), NOW)))
    golden = GOLDEN / "digest.txt"
    if UPDATE_GOLDEN:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), "run with DIGEST_UPDATE_GOLDEN=1 to create tests/golden/digest.txt"
    assert text == golden.read_text(encoding="utf-8"), (
        "the text part changed; if intended, run DIGEST_UPDATE_GOLDEN=1 pytest tests/test_compose.py and review"
    )


# ---------------------------------------------------------------- size


def long_paper(i: int, title_words: int = 14) -> Paper:
    sentence = "This sentence about long-context state space models makes the abstract long. "
    return paper(
        i,
        title=" ".join(["Selective State Space Models Meet Linear Attention"] * (title_words // 7)) + f" {i}",
        abstract=sentence * 60,
        ai_summary=sentence * 8,
        authors=[f"Firstname Lastname{j}" for j in range(12)],
        arxiv_id=f"2611.{i:05d}",
        url=f"https://huggingface.co/papers/2611.{i:05d}",
        upvotes=100 + i,
        comments=i,
        github_repo=f"https://github.com/some-org/repo-{i}",
    )


def test_fifty_long_papers_fit_under_100kb_by_trimming_summaries(composer: Composer) -> None:
    papers = ranked(*(long_paper(i) for i in range(50)))
    untrimmed = reference_message(composer, info(), paper_views(papers), NOW)
    assert len(bytes(untrimmed)) > MAX_BYTES, "the input is large enough to need trimming"
    fitted = composer.fit(info(), papers, NOW)
    assert len(bytes(fitted.message)) < MAX_BYTES
    assert fitted.shown == 50, "summaries are trimmed before any paper is dropped"
    assert fitted.summary_chars != SUMMARY_STEPS[0]
    text, html = parts(parse(fitted.message))
    for i in range(50):
        assert f"2611.{i:05d}" in text and f"2611.{i:05d}" in html
    top, rest = fitted.summary_chars
    assert top >= rest, "lower-ranked summaries shrink first"


def test_papers_are_dropped_only_after_summaries_are_gone(composer: Composer) -> None:
    papers = ranked(*(long_paper(i, title_words=28) for i in range(120)))
    fitted = composer.fit(info(), papers, NOW)
    assert len(bytes(fitted.message)) < MAX_BYTES
    assert 0 < fitted.shown < 120
    assert fitted.summary_chars == (0, 0)
    more = reference_message(
        composer, info(), paper_views(papers[: fitted.shown + 1], (0, 0)), NOW, omitted=119 - fitted.shown
    )
    assert len(bytes(more)) >= MAX_BYTES, "as many papers as fit are kept"
    text, html = parts(parse(fitted.message))
    assert f"{120 - fitted.shown} more matching papers did not fit" in text
    assert f"{120 - fitted.shown} more matching papers did not fit" in html
    assert parse(fitted.message)["Subject"].endswith(f"+{fitted.shown - 1} more")


# ---------------------------------------------------------------- CSS inlining


class _Tags(HTMLParser):
    """(tag, attributes, text) events with character references decoded, to compare two HTML documents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[str, ...]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, *sorted(f"{k}={v}" for k, v in attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.events.append(("text", data.strip()))


def _events(html: str) -> list[tuple[str, ...]]:
    parser = _Tags()
    parser.feed(html)
    return parser.events


def test_css_is_inlined_once_at_load_and_matches_per_email_inlining(composer: Composer) -> None:
    assert composer.inline_mode == "load"
    loader = composer.env.loader
    assert loader is not None
    assert 'class="paper" style="' in loader.get_source(composer.env, "digest.html.j2")[0]
    source = loader.get_source(composer.env, "paper.html.j2")[0]
    assert 'class="summary" style="' in source, "the loaded paper partial itself carries the inlined styles"
    _, html = parts(parse(composer.compose(info(), fixture_papers(), NOW)))
    style_blocks = re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.DOTALL)
    assert len(style_blocks) == 1
    assert "@media (prefers-color-scheme: dark)" in style_blocks[0]
    assert re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", style_blocks[0]).strip() == "", (
        "only @-rules stay in the <style> block; everything else is inline"
    )
    assert re.search(r'<td class="paper" style="[^"]*border-top:1px solid', html)
    assert "max-width:600px" in html
    per_email = Composer(inline="render")
    assert per_email.inline_mode == "render"
    _, rendered = parts(parse(per_email.compose(info(), fixture_papers(), NOW)))
    assert _events(html) == _events(rendered)


def test_template_that_cannot_be_inlined_at_load_falls_back_per_email(tmp_path: Path) -> None:
    for name in ("base.html.j2", "base.txt.j2", "digest.txt.j2"):
        (tmp_path / name).write_text((Composer().directory / name).read_text())
    (tmp_path / "digest.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block content %}'
        '<p class="{{ "summary" if papers else "empty" }}">{{ papers|length }}</p>{% endblock %}'
    )
    fallback = Composer(tmp_path)
    assert fallback.inline_mode == "render"
    _, html = parts(parse(fallback.compose(info(), fixture_papers(), NOW)))
    assert re.search(r'<p class="summary" style="[^"]*font-size:15px', html)
    with pytest.raises(NotInlinable):
        inline_fragment('<p style="color: {{ c }}">x</p>', "p { margin: 0 }")


def test_loops_between_table_rows_survive_load_time_inlining() -> None:
    source = "<table><tbody>{% for p in papers %}<tr><td class='x'>{{ p }}</td></tr>{% endfor %}</tbody></table>"
    inlined = inline_fragment(source, ".x { color: red }")
    assert inlined.index("{% for p in papers %}") < inlined.index("<tr>") < inlined.index("{% endfor %}")
    assert 'style="color:red"' in inlined


def test_one_line_strips_controls_and_bidi_overrides() -> None:
    assert one_line("a\r\nb\tc\x00d\u2028e\u202ef  g") == "a b c d e f g"


# ---------------------------------------------------------------- preview --open / --format eml


CONFIG = """
database_url = "sqlite:///digest.db"
[delivery]
maildir = "mail"
from = "Papers <papers@example.org>"
unsubscribe_url = "https://papers.example.org/u?e={email}&t={token}"
unsubscribe_secret = "s3cret-unsubscribe-key"
[[sources]]
name = "today"
type = "file"
path = "today.json"
[[subscribers]]
email = "ada@example.org"
name = "Ada Lovelace"
keywords = ["mamba"]
"""


def test_preview_open_writes_the_html_part_and_opens_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    (tmp_path / "today.json").write_text(json.dumps(papers_json([{"title": "Mamba Meets Vision", "upvotes": 3}])))
    (tmp_path / "digest.toml").write_text(CONFIG)
    opened: list[str] = []

    def fake_open(url: str, *args: object, **kwargs: object) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", fake_open)
    eml = tmp_path / "digest.eml"
    result = CliRunner().invoke(
        app, ["--config", str(tmp_path / "digest.toml"), "preview", "--format", "eml", "-o", str(eml), "--open"]
    )
    assert result.exit_code == 0, result.output
    (url,) = opened
    assert url.startswith("file://")
    html_path = Path(url.removeprefix("file://"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=default)
    assert isinstance(msg, EmailMessage)
    assert html_path.read_text(encoding="utf-8") == parts(msg)[1]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert b"s3cret-unsubscribe-key" not in eml.read_bytes()
    assert parseaddr(msg["To"])[1] == "ada@example.org"


def test_papers_left_out_for_size_are_not_recorded_as_sent(tmp_path: Path) -> None:
    import json
    import mailbox

    from sqlalchemy import func, select

    from digest import pipeline, store
    from digest.config import load_config

    many = [{"title": f"Mamba variant {i}", "summary": "A mamba paper. " * 30, "upvotes": i} for i in range(40)]
    (tmp_path / "today.json").write_text(json.dumps(papers_json(many)))
    (tmp_path / "digest.toml").write_text(
        CONFIG.replace('keywords = ["mamba"]', 'keywords = ["mamba"]\nmax_papers = 40')
    )
    settings = load_config(tmp_path / "digest.toml")
    engine = store.open_engine(settings.database_url)
    report = pipeline.run_once(engine, settings, NOW, composer=Composer(max_bytes=20_000))
    assert report.ok
    (planned,) = report.planned
    assert planned.message is not None
    assert 0 < len(planned.ranked) < 40
    with engine.connect() as conn:
        items = conn.execute(select(func.count()).select_from(store.item_t)).scalar()
    assert items == len(planned.ranked)
    (key,) = mailbox.Maildir(tmp_path / "mail", create=False).keys()
    sent = email.message_from_bytes(mailbox.Maildir(tmp_path / "mail").get_bytes(key), policy=default)
    assert isinstance(sent, EmailMessage)
    text, _ = parts(sent)
    assert f"{40 - len(planned.ranked)} more matching papers did not fit" in text


def test_signed_unsubscribe_url_needs_a_secret(tmp_path: Path) -> None:
    from digest.config import ConfigError, load_config

    (tmp_path / "digest.toml").write_text(CONFIG.replace('unsubscribe_secret = "s3cret-unsubscribe-key"\n', ""))
    with pytest.raises(ConfigError, match="unsubscribe_secret is empty"):
        load_config(tmp_path / "digest.toml")


def test_a_partly_matched_interest_is_not_said_to_be_in_the_title(composer: Composer) -> None:
    from digest.ranking import Interests, rank_papers

    filler = "We evaluate the system on standard benchmarks and report results with ablations."
    pool = [
        paper(1, title="Hybrid Memory Architectures for Large Language Model Serving", abstract=filler, id=1),
        paper(2, title="Hybrid Mesons from Lattice QCD", abstract=filler, id=2),
        *[paper(10 + i, title=f"A study of topic {i}", abstract=filler, id=10 + i) for i in range(20)],
    ]
    by_id = {r.paper.id: r for r in rank_papers(pool, Interests(("hybrid mesons",)))}
    assert not by_id[2].matched[0].partial and by_id[1].matched[0].partial
    text, html = parts(parse(composer.compose(info(), [by_id[2], by_id[1]], NOW)))
    flat = " ".join(text.split())
    assert 'Why: "hybrid mesons" in the title' in flat
    assert 'Why: "hybrid mesons" partly in the title' in flat
    assert "<b>hybrid mesons</b> in the title" in html
    assert "<b>hybrid mesons</b> partly in the title" in html
