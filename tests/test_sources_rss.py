"""Any RSS 2.0 / Atom feed against a loopback server, with conditional GET, into SQLite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from digest import fetching, store
from digest.cli import app
from digest.config import RssSourceConfig, Settings, load_config
from digest.models import Paper
from digest.sources.base import SourceError
from digest.sources.rss import feed_url
from tests.loopback_http import LoopbackServer, Reply, fixture_bytes, server, static, write_config  # noqa: F401

NOW = dt.datetime(2026, 2, 26, 12, 30, tzinfo=dt.UTC)


def setup(tmp_path: Path, srv: LoopbackServer, url: str) -> tuple[Settings, Engine]:
    config = write_config(
        tmp_path,
        f'[[sources]]\nname = "feed"\ntype = "rss"\nbase_url = "{srv.base_url}"\nurl = "{url}"\nbackoff_seconds = 0.01',
    )
    settings = load_config(config)
    return settings, store.open_engine(settings.database_url)


def papers(engine: Engine) -> dict[str, Paper]:
    with engine.connect() as conn:
        rows = conn.execute(select(store.paper_t)).all()
    return {r.title: Paper.model_validate(dict(r._mapping)) for r in rows}


def test_atom_feed_with_wrapped_title_and_versioned_id(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/papers.atom", static("lab_blog_atom.xml", "application/atom+xml"))
    settings, engine = setup(tmp_path, server, "/papers.atom")
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new, report.rejected) == ("ok", 3, 1)
    stored = papers(engine)
    gla = stored["Gated Linear Attention at Scale: Training 7B State Space Hybrids"]
    assert (gla.arxiv_id, gla.arxiv_version, gla.key) == ("2602.23229", 3, "arxiv:2602.23229")
    assert gla.abstract == "Our 7B gated hybrid, now with a fixed Table 3 & new ablations."
    assert gla.authors == ["Mira Okafor", "Jun Tanaka"]
    assert gla.url == "https://arxiv.org/abs/2602.23229v3"
    assert gla.published_at is not None
    notes = stored["Notes on Evaluating Retrieval with LLM Judges"]
    assert notes.abstract == "When do LLM judges agree with people? A short study."
    assert notes.url == "https://lab.example.org/papers/llm-judges/"
    assert stored["A Post With a Script Link"].url is None, "a javascript: link is dropped"


def test_rss_feed_with_html_summaries_creators_and_doi(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/jeml/latest.rss", static("journal_rss.xml"))
    settings, engine = setup(tmp_path, server, "jeml/latest.rss")
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new, report.rejected) == ("ok", 2, 0)
    robust = papers(engine)["Robust Estimation with Heavy Tails & Outliers"]
    assert robust.abstract == (
        "We give estimators that remain accurate when both heavy tails and adversarial outliers are present."
    )
    assert robust.authors == ["Rosa Martín", "Li Wei"]
    assert robust.key == "doi:10.5555/jeml.2026.0142"


def test_unchanged_feed_is_not_modified_and_leaves_the_store_alone(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/papers.atom", static("lab_blog_atom.xml", "application/atom+xml"))
    settings, engine = setup(tmp_path, server, "/papers.atom")
    fetching.fetch(engine, settings, NOW)
    with engine.connect() as conn:
        [(url, (etag, modified))] = store.load_validators(conn, "feed").items()
        before = [dict(r._mapping) for r in conn.execute(select(store.paper_t)).all()]
    assert url == f"{server.base_url}/papers.atom" and etag and modified
    [again] = fetching.fetch(engine, settings, NOW + dt.timedelta(hours=2))
    assert (again.status, again.counts.seen) == ("not_modified", 0)
    assert server.requests[-1].headers["if-none-match"] == etag
    with engine.connect() as conn:
        assert [dict(r._mapping) for r in conn.execute(select(store.paper_t)).all()] == before


def test_a_feed_with_a_stray_ampersand_is_still_read(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    body = fixture_bytes("journal_rss.xml").replace(b"Heavy Tails &amp; Outliers", b"Heavy Tails & Outliers")
    server.route("/feed", lambda seen: Reply(200, body, {"Content-Type": "application/rss+xml"}))
    settings, engine = setup(tmp_path, server, "/feed")
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new) == ("ok", 2)


def test_a_missing_feed_fails_cleanly(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    settings, engine = setup(tmp_path, server, "/nowhere.xml")
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed" and report.error and "HTTP 404" in report.error
    assert len(server.requests) == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/feed.xml", "feed.xml"])
def test_only_http_feed_urls_are_fetched(url: str) -> None:
    with pytest.raises(SourceError, match="must be an http:// or https:// URL"):
        feed_url(RssSourceConfig(name="f", type="rss", url=url))


# ---------------------------------------------------------------- journal feeds as they come (issue 19)


def test_biorxiv_surname_initials_pairs_are_one_author_each(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/biorxiv.xml", static("biorxiv_rss.xml", "application/xml"))
    settings, engine = setup(tmp_path, server, "/biorxiv.xml")
    fetching.fetch(engine, settings, NOW)
    stored = papers(engine)
    liver = stored["Engineered liver microtissues for long-term drug toxicity screening"]
    assert liver.authors == ["D. Kukla", "A. Crampton", "D. Wood", "S. Khetani"]
    gut = stored["A microfluidic gut-on-chip with living microbiota"]
    assert gut.authors == ["S. Jalili-Firoozinezhad", "F. S. Gazzaniga", "E. L. Calamari"]
    assert liver.doi == "10.1101/2024.05.20.594980"


def test_one_creator_listing_thirteen_names_is_thirteen_authors(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/atypon.xml", static("atypon_rss.xml"))
    settings, engine = setup(tmp_path, server, "/atypon.xml")
    fetching.fetch(engine, settings, NOW)
    [paper] = papers(engine).values()
    assert len(paper.authors) == 13
    assert paper.authors[:2] == ["Gbolahan Ajibola", "Jean Leidner"] and paper.authors[-1] == "Kenji Watanabe"


def test_inline_markup_does_not_split_words(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/atypon.xml", static("atypon_rss.xml"))
    settings, engine = setup(tmp_path, server, "/atypon.xml")
    fetching.fetch(engine, settings, NOW)
    [paper] = papers(engine).values()
    assert paper.title == "Direct Air Capture of CO₂ with Amine-Grafted Silica"
    assert "Uptake of CO₂ rose when Ca²⁺ was added; a pilot unit of 480ft² captured 1.2 t per day." in paper.abstract
    assert "Technology DOI:" in paper.abstract, "block-level tags still separate words"


def test_highwire_dois_survive_a_second_dc_identifier(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/science.xml", static("science_rss.xml", "application/xml"))
    settings, engine = setup(tmp_path, server, "/science.xml")
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.counts.new == 2
    stored = papers(engine)
    qubit = stored["A room-temperature superconducting qubit coupler"]
    assert (qubit.doi, qubit.key) == ("10.1126/science.adk1234", "doi:10.1126/science.adk1234")
    assert stored["Ocean heat uptake slowed by a stronger Southern Ocean overturning"].doi == "10.1126/science.adl5678"
    assert qubit.authors == ["A. Rivera", "K. Osei"]


def test_the_http_charset_reaches_the_feed_parser(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    body = (
        '<?xml version="1.0"?>\n<rss version="2.0"><channel><title>中国科学: 最新论文</title>'
        "<item><title>量子纠缠的实验观测</title><link>https://journal.example.cn/a/1</link>"
        "<description>我们报告了光子纠缠的实验观测。</description></item></channel></rss>"
    ).encode("gb2312")
    server.route("/cn.xml", lambda seen: Reply(200, body, {"Content-Type": "application/rss+xml; charset=gb2312"}))
    settings, engine = setup(tmp_path, server, "/cn.xml")
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new) == ("ok", 1)
    [paper] = papers(engine).values()
    assert (paper.title, paper.abstract) == ("量子纠缠的实验观测", "我们报告了光子纠缠的实验观测。")


def test_a_plain_rss_source_reads_an_arxiv_listing_like_arxiv(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/cs.LG+cs.CL", static("arxiv_rss_cs.LG+cs.CL.xml"))
    settings, engine = setup(tmp_path, server, "/rss/cs.LG+cs.CL")
    fetching.fetch(engine, settings, NOW)
    by_id = {p.arxiv_id: p for p in papers(engine).values()}
    conformal = by_id["2602.22871"]
    assert conformal.abstract.startswith("We calibrate retrieval-augmented generators"), "no 'arXiv:… Announce Type'"
    assert conformal.authors == ["Elif Demir", "Marco Rossi", "Yuki Sato"]
    assert conformal.url == "https://arxiv.org/abs/2602.22871"


def test_mdpi_titles_come_from_dc_title_without_the_volume_prefix(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/fluids.xml", static("mdpi_rss.xml", "application/rdf+xml"))
    settings, engine = setup(tmp_path, server, "/fluids.xml")
    fetching.fetch(engine, settings, NOW)
    [paper] = papers(engine).values()
    assert paper.title == "Numerical Study of Vortex Shedding Behind Heated Cylinders"
    assert (paper.doi, paper.authors) == ("10.3390/fluids9050120", ["Laura Pérez", "Jonas Richter"])


def test_check_says_to_use_the_arxiv_type_for_rss_arxiv_org(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[[sources]]\nname = "feed"\ntype = "rss"\nurl = "https://rss.arxiv.org/rss/cs.LG"')
    result = CliRunner().invoke(app, ["--config", str(config), "check"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "source 'feed': use type = \"arxiv\" for rss.arxiv.org" in result.output


def test_same_title_items_with_other_dois_or_links_are_not_merged(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    body = fixture_bytes("journal_corrections_rss.xml")
    server.route("/jep.xml", lambda seen: Reply(200, body, {"Content-Type": "application/rss+xml"}))
    settings, engine = setup(tmp_path, server, "/jep.xml")
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.counts.seen, report.counts.new, report.counts.unchanged) == (6, 6, 0)
    with engine.connect() as conn:
        rows = conn.execute(select(store.paper_t.c.title, store.paper_t.c.doi, store.paper_t.c.url)).all()
    assert sorted(r.doi for r in rows if r.title == "Correction") == [
        "10.5555/jep.2026.0101",
        "10.5555/jep.2026.0102",
        "10.5555/jep.2026.0103",
    ]
    assert sorted(r.url for r in rows if r.title == "Editorial") == [
        "https://journal.example.org/jep/editorial/2026-03",
        "https://journal.example.org/jep/editorial/2026-04",
    ]
    [again] = fetching.fetch(engine, settings, NOW + dt.timedelta(days=1))
    assert (again.counts.seen, again.counts.new, again.counts.unchanged) == (6, 0, 6), "each finds its own row again"
    with engine.connect() as conn:
        assert store.count_papers(conn) == 6
