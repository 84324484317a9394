"""More than keywords: followed authors, a trending section, quiet days, and a reader's own Atom feed."""

from __future__ import annotations

import datetime as dt
import email
import json
import unicodedata
from email.message import Message
from pathlib import Path

import feedparser
import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from digest import store
from digest.authors import AuthorIndex, meets, name_key
from digest.cli import app
from digest.config import load_config
from digest.links import Action, signer_of
from digest.models import Paper
from digest.ranking import Match, RankedPaper
from digest.sections import Section, assemble, relevance
from digest.web import create_app
from tests.helpers import papers_json
from tests.web_client import AppClient

SAME = [
    ("T. Dao", "Tri Dao"),
    ("tri dao", "Tri Dao"),
    ("Dao, Tri", "Tri Dao"),
    ("TRI DAO", "Tri Dao"),
    ("Albert Gu", "Albert F. Gu"),
    ("A. Gu", "Albert Gu"),
    ("Dénes Berta", "Denes Berta"),
    ("Przemysław Olbratowski", "Przemyslaw Olbratowski"),
    ("J. van der Waals", "Johannes van der Waals"),
    ("Kukla, D.", "Daniel Kukla"),
    ("José Ángel García-López", "Jose A. Garcia-Lopez"),
]
DIFFERENT = [
    ("Tri Dao", "Tri Daoud"),
    ("Tri Dao", "Tom Dao"),
    ("Tri Dao", "Dao"),
    ("Albert Gu", "Albert Guo"),
    ("Johannes van der Waals", "Johannes Waals"),
    ("", "Tri Dao"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_names_of_one_person_meet(a: str, b: str) -> None:
    assert meets(a, b) and meets(b, a)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_names_of_different_people_do_not_meet(a: str, b: str) -> None:
    assert not meets(a, b) and not meets(b, a)


names = st.lists(
    st.sampled_from(["tri", "Tri", "T.", "dao", "Dao", "Dénes", "berta", "van", "der", "waals", "Ørsted", "ß", "Gu"])
    | st.text(min_size=1, max_size=8),
    min_size=1,
    max_size=4,
).map(" ".join)


def _accents_off(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@given(names, names)
def test_matching_is_symmetric_and_stable_under_case_and_accents(a: str, b: str) -> None:
    assert meets(a, b) == meets(b, a)
    assert meets(a, b) == meets(a.upper(), b.lower()) == meets(_accents_off(a), b)
    if name_key(a) is not None:
        assert meets(a, a)


NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def _paper(i: int, title: str, authors: list[str] | None = None, upvotes: int = 0) -> Paper:
    return Paper(
        id=i, key=f"k{i}", title=title, authors=authors or [], upvotes=upvotes, first_seen_at=NOW, last_seen_at=NOW
    )


def test_author_index_finds_papers_by_any_spelling() -> None:
    pool = [_paper(1, "a", ["Tri Dao", "Albert Gu"]), _paper(2, "b", ["Tri Daoud"]), _paper(3, "c")]
    found = AuthorIndex(p.authors for p in pool).papers_by(["T. Dao", "Nobody Here"])
    assert found == {0: "T. Dao"}


def test_relevance_is_a_fixed_scale() -> None:
    assert relevance([Match("x", ("title",))]) == 1.0
    assert relevance([Match("x", ("abstract",)), Match("y", ("keywords",))]) == 0.8
    assert relevance([Match("x", ("abstract",))]) == 0.6
    assert relevance([Match("x", ("title",), partial=True)]) == 0.5
    assert relevance([Match("x", ("title",), via="synonym")]) == 0.8
    assert relevance([Match("x", ("abstract",), semantic=True)]) == pytest.approx(0.3)
    assert relevance([]) == 0.0


def test_assemble_puts_followed_first_picks_next_trending_last_and_never_twice() -> None:
    a, b, c, d = (_paper(i, f"p{i}", upvotes=10 * i) for i in range(1, 5))
    ranked = [RankedPaper(b, 1.0, (Match("x", ("title",)),)), RankedPaper(a, 0.9, (Match("x", ("abstract",)),))]
    picks = assemble(ranked, [(a, "Tri Dao")], [d, c, b, a], has_keywords=True, max_papers=5, trending_count=3)
    assert [(p.item.paper.id, p.section, p.because) for p in picks] == [
        (1, Section.followed, "Tri Dao"),
        (2, Section.for_you, None),
        (4, Section.trending, None),
        (3, Section.trending, None),
    ]
    assert picks[0].item.matched  # a followed paper that also matched keeps its explanation
    quiet = assemble(ranked, [], [d, c], has_keywords=True, max_papers=5, min_relevance=0.7, trending_count=3)
    assert [p.item.paper.id for p in quiet] == [2, 4, 3]
    nothing = assemble(ranked[1:], [], [d, c], has_keywords=True, max_papers=5, min_relevance=0.7, trending_count=3)
    assert nothing == [], "no trending filler on a quiet day"


CONFIG = """
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
[web]
base_url = "http://127.0.0.1:8080"
[[sources]]
name = "today"
type = "file"
path = "today.json"
[[subscribers]]
email = "ada@example.org"
name = "Ada"
keywords = ["state space model"]
authors = ["T. Dao"]
max_papers = 5
[[subscribers]]
email = "grace@example.org"
keywords = ["quantization"]
min_relevance = 0.9
send_empty = true
trending = 0
[[subscribers]]
email = "alan@example.org"
"""


def _day(tmp_path: Path, day: int) -> None:
    items: list[dict[str, object]] = [
        {
            "id": f"2611.{day}0001",
            "title": f"Day {day}: a state space model",
            "summary": "state space model",
            "upvotes": 5,
        },
        {
            "id": f"2611.{day}0002",
            "title": f"Day {day}: proteins",
            "summary": "folding",
            "authors": [{"name": "Tri Dao"}],
        },
        {"id": f"2611.{day}0003", "title": f"Day {day}: galaxies", "summary": "stars", "upvotes": 90},
        {"id": f"2611.{day}0004", "title": f"Day {day}: rocks", "summary": "geology", "upvotes": 40},
        {
            "id": f"2611.{day}0005",
            "title": f"Day {day}: low-bit models",
            "summary": "we study quantization",
            "upvotes": 7,
        },
    ]
    (tmp_path / "today.json").write_text(json.dumps(papers_json(items)))


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _preview(config: Path, who: str) -> list[tuple[str, str]]:
    out = _run(config, "preview", "--format", "json", "--no-fetch", "--subscriber", who)
    return [(p["title"], p["section"]) for p in json.loads(out[: out.rindex("}") + 1])["papers"]]


def _texts(tmp_path: Path) -> dict[str, list[str]]:
    by: dict[str, list[str]] = {}
    for path in sorted((tmp_path / "mail" / "new").iterdir(), key=lambda p: p.stat().st_mtime_ns):
        msg: Message = email.message_from_bytes(path.read_bytes())
        part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        by.setdefault(email.utils.parseaddr(msg["To"])[1], []).append(payload.decode().replace("\r\n", "\n"))
    return by


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(CONFIG)
    return path


def test_a_followed_authors_paper_comes_first_and_trending_never_repeats_a_pick_or_a_sent_paper(
    tmp_path: Path, config: Path
) -> None:
    _day(tmp_path, 1)
    with freeze_time("2026-11-23 08:00:00"):
        _run(config, "fetch")
        assert _preview(config, "ada@example.org") == [
            ("Day 1: proteins", "followed"),  # no keyword matched: shown because Tri Dao wrote it
            ("Day 1: a state space model", "for_you"),
            ("Day 1: galaxies", "trending"),
            ("Day 1: rocks", "trending"),
            ("Day 1: low-bit models", "trending"),
        ]
        assert [s for _, s in _preview(config, "alan@example.org")] == ["for_you"] * 5  # no keywords: as before
        _run(config, "send", "--no-fetch")
    text = _texts(tmp_path)["ada@example.org"][0]
    assert "BY PEOPLE YOU FOLLOW" in text and "By T. Dao, whom you follow" in text
    assert "TRENDING TODAY" in text and text.index("BY PEOPLE YOU FOLLOW") < text.index("TRENDING TODAY")
    _day(tmp_path, 2)
    with freeze_time("2026-11-24 08:00:00"):
        _run(config, "send")
    engine = store.open_engine(load_config(config).database_url)
    with engine.connect() as conn:
        t, i = store.delivery_t, store.item_t
        rows = conn.execute(
            select(t.c.subscriber, i.c.paper_id)
            .join(i, i.c.delivery_id == t.c.id)
            .where(t.c.subscriber == "ada@example.org")
        ).all()
    assert len(rows) == 10 and len({pid for _, pid in rows}) == 10, "nothing sent twice, trending included"


def test_min_relevance_skips_a_quiet_day_rather_than_send_filler(tmp_path: Path, config: Path) -> None:
    _day(tmp_path, 1)
    with freeze_time("2026-11-23 08:00:00"):
        _run(config, "send")
    grace = _texts(tmp_path)["grace@example.org"]
    assert len(grace) == 1 and "Nothing new matched your interests today" in grace[0]
    assert "low-bit" not in grace[0] and "galaxies" not in grace[0]  # 0.6 (abstract) is below her 0.9
    config.write_text(CONFIG.replace("send_empty = true\n", ""))
    _day(tmp_path, 2)
    with freeze_time("2026-11-24 08:00:00"):
        _run(config, "send")
    assert len(_texts(tmp_path)["grace@example.org"]) == 1, "no email at all on the next quiet day"


def test_the_atom_feed_parses_and_lists_what_was_sent_newest_first(tmp_path: Path, config: Path) -> None:
    for day in (1, 2):
        _day(tmp_path, day)
        with freeze_time(f"2026-11-2{2 + day} 08:00:00"):
            _run(config, "send")
    settings = load_config(config)
    engine = store.open_engine(settings.database_url)
    signer = signer_of(settings, engine, always=True)
    assert signer is not None
    client = AppClient(create_app(settings, engine, signer))
    try:
        url = signer.url(Action.feed, "ada@example.org")
        assert url in _texts(tmp_path)["ada@example.org"][0]
        reply = client.get(url.removeprefix("http://127.0.0.1:8080"))
    finally:
        client.close()
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(reply.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10" and parsed.feed.title == "Daily papers for Ada"
    titles = [e.title for e in parsed.entries]
    assert titles[:5] == [
        "Day 2: proteins",
        "Day 2: a state space model",
        "Day 2: galaxies",
        "Day 2: rocks",
        "Day 2: low-bit models",
    ]
    assert titles[5:] == [t.replace("Day 2", "Day 1") for t in titles[:5]]
    assert len({e.id for e in parsed.entries}) == 10
    assert parsed.entries[0].link == "https://huggingface.co/papers/2611.20002"
    assert parsed.entries[0].author == "Tri Dao"
