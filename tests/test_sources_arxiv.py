"""arXiv in both modes against a loopback server: the Atom query API at `/api/query`, the listing at `/rss/…`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from digest import fetching, store
from digest.cli import app
from digest.config import ArxivSourceConfig, Settings, load_config
from digest.models import Paper
from digest.sources.arxiv import ArxivSource
from digest.sources.base import FetchContext, SourceResult
from tests.arxiv_listing import arxiv_listing
from tests.loopback_http import (  # noqa: F401
    LoopbackServer,
    Reply,
    arxiv_query_api,
    fixture_bytes,
    server,
    static,
    write_config,
)
from tests.test_sources_http import FakeTime

NOW = dt.datetime(2026, 2, 26, 9, 30, tzinfo=dt.UTC)


def setup(tmp_path: Path, srv: LoopbackServer, **options: object) -> tuple[Settings, Engine]:
    opts = {"categories": ["cs.LG", "cs.CL"], "delay_seconds": 0, "backoff_seconds": 0.01, **options}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in opts.items())
    config = write_config(
        tmp_path, f'[[sources]]\nname = "arxiv"\ntype = "arxiv"\nbase_url = "{srv.base_url}"\n{lines}'
    )
    settings = load_config(config)
    return settings, store.open_engine(settings.database_url)


def papers(engine: Engine) -> dict[str, Paper]:
    with engine.connect() as conn:
        rows = conn.execute(select(store.paper_t)).all()
    return {r.arxiv_id: Paper.model_validate(dict(r._mapping)) for r in rows}


def run_source(config: ArxivSourceConfig, fake: FakeTime) -> SourceResult:
    async def go() -> SourceResult:
        async with httpx.AsyncClient() as client:
            return await ArxivSource(config).fetch(FetchContext(NOW, client, {}, fake.sleep, fake.clock))

    return asyncio.run(go())


# ---------------------------------------------------------------- API mode


def test_api_pages_newest_first_until_the_window_ends(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/query", arxiv_query_api())
    settings, engine = setup(tmp_path, server, mode="api", page_size=2)
    [report] = fetching.fetch(engine, settings, NOW)

    assert (report.status, report.counts.new, report.rejected) == ("ok", 3, 1)
    queries = [r.query for r in server.requests]
    assert [q["start"] for q in queries] == ["0", "2", "4"]
    assert {q["search_query"] for q in queries} == {"cat:cs.LG OR cat:cs.CL"}
    assert {(q["sortBy"], q["sortOrder"], q["max_results"]) for q in queries} == {("submittedDate", "descending", "2")}
    stored = papers(engine)
    assert set(stored) == {"2602.23229", "2602.23310", "2602.22871"}, "the 2602.10001 entry predates the window"
    gla = stored["2602.23229"]
    assert gla.title == "Gated Linear Attention at Scale: Training 7B State Space Hybrids", "wrapped title collapsed"
    assert gla.arxiv_version == 2, "versioned <id> kept as version, the key is unversioned"
    assert gla.key == "arxiv:2602.23229"
    assert gla.abstract.endswith("matches Transformer perplexity.") and "\n" not in gla.abstract
    assert gla.authors == ["Mira Okafor", "Jun Tanaka"]
    assert gla.url == "https://arxiv.org/abs/2602.23229"
    assert stored["2602.23310"].title == "Tokenizer-Free Language Models with Byte-Level Mixture of Experts"


def test_api_requests_are_spaced_at_least_three_seconds(server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/query", arxiv_query_api())
    config = ArxivSourceConfig(
        name="arxiv", type="arxiv", mode="api", base_url=server.base_url, page_size=1, max_results=3, days=30
    )
    fake = FakeTime()
    result = run_source(config, fake)
    assert len(server.requests) == 3
    assert fake.sleeps == [3.0, 3.0], "the default delay_seconds, between consecutive requests only"
    assert [r.arxiv_id for r in result.records] == ["2602.23229v2", "2602.23310v1", "2602.22871v1"]


def test_the_real_arxiv_is_never_asked_faster_than_every_three_seconds() -> None:
    config = ArxivSourceConfig(name="arxiv", type="arxiv", mode="api", delay_seconds=0)
    assert ArxivSource(config).policy().min_interval == 3.0
    local = ArxivSourceConfig(name="arxiv", type="arxiv", mode="api", delay_seconds=0, base_url="http://127.0.0.1:9")
    assert ArxivSource(local).policy().min_interval == 0.0


def test_api_stops_at_max_results(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/query", arxiv_query_api())
    settings, engine = setup(tmp_path, server, mode="api", page_size=2, max_results=2)
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new) == ("ok", 2)
    assert len(server.requests) == 1


def test_api_error_feed_fails_cleanly(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/api/query", static("arxiv_api_error.xml", "application/atom+xml"))
    settings, engine = setup(tmp_path, server, mode="api")
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed"
    assert report.error and "arXiv API error: max_results must be non-negative" in report.error


def test_api_empty_page_while_results_remain_is_asked_again(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    api = arxiv_query_api()
    empty = fixture_bytes("arxiv_api_query.xml").split(b"  <entry>")[0] + b"</feed>\n"

    def flaky(seen: object) -> Reply:
        if len(server.requests) == 1:
            return Reply(200, empty, {"Content-Type": "application/atom+xml"})
        return api(seen)  # type: ignore[arg-type]

    server.route("/api/query", flaky)
    settings, engine = setup(tmp_path, server, mode="api")
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new) == ("ok", 3)
    assert len(server.requests) == 2


def test_a_bad_category_is_a_clear_failure(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    settings, engine = setup(tmp_path, server, mode="api", categories=["cs.LG&max_results=-1"])
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed" and report.error and "not an arXiv category" in report.error
    assert server.requests == []


# ---------------------------------------------------------------- RSS mode


def test_rss_keeps_new_and_cross_and_drops_replacements(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/cs.LG+cs.CL", static("arxiv_rss_cs.LG+cs.CL.xml"))
    settings, engine = setup(tmp_path, server, mode="rss")
    [report] = fetching.fetch(engine, settings, NOW)
    assert server.paths() == ["/rss/cs.LG+cs.CL"]
    assert (report.status, report.counts.new, report.rejected) == ("ok", 3, 1)
    stored = papers(engine)
    assert set(stored) == {"2602.23229", "2602.23310", "2602.22871"}
    tokenizer = stored["2602.23310"]
    assert tokenizer.title == "Tokenizer-Free Language Models with Byte-Level Mixture of Experts"
    assert tokenizer.abstract.startswith("We train byte-level"), (
        "the 'arXiv:ID Announce Type: … Abstract:' prefix is cut"
    )
    assert stored["2602.22871"].authors == ["Elif Demir", "Marco Rossi", "Yuki Sato"], "dc:creator split"
    assert stored["2602.23229"].arxiv_version == 1


def test_rss_can_include_replacements(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/cs.LG+cs.CL", static("arxiv_rss_cs.LG+cs.CL.xml"))
    settings, engine = setup(tmp_path, server, mode="rss", include_replacements=True)
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.counts.new, report.rejected) == (5, 1)
    assert papers(engine)["2511.04410"].arxiv_version == 3


def test_rss_weekend_feed_is_a_success_with_nothing(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/cs.LG", static("arxiv_rss_empty.xml"))
    settings, engine = setup(tmp_path, server, mode="rss", categories=["cs.LG"])
    [report] = fetching.fetch(engine, settings, dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC))
    assert (report.status, report.counts.seen, report.rejected, report.error) == ("ok", 0, 0, None)


def test_rss_then_api_then_hf_style_sightings_are_one_paper(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/cs.LG+cs.CL", static("arxiv_rss_cs.LG+cs.CL.xml"))
    server.route("/api/query", arxiv_query_api())
    settings, engine = setup(tmp_path, server, mode="rss")
    fetching.fetch(engine, settings, NOW)
    api_settings, _ = setup(tmp_path, server, mode="api")
    [report] = fetching.fetch(engine, api_settings, NOW + dt.timedelta(hours=1))
    assert (report.counts.new, report.counts.seen) == (0, 3)
    gla = papers(engine)["2602.23229"]
    assert gla.arxiv_version == 2, "the API's v2 supersedes the listing's v1"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<html><head><title>arXiv Maintenance</title></head><body>down</body></html>", "text/html", "HTML page"),
        (b'{"message": "not a feed"}', "application/json", "expected an RSS or Atom feed"),
    ],
)
def test_rss_body_that_is_not_a_feed_fails_cleanly(
    tmp_path: Path,
    server: LoopbackServer,  # noqa: F811
    body: bytes,
    content_type: str,
    expected: str,
) -> None:
    server.route("/rss/cs.LG", lambda seen: Reply(200, body, {"Content-Type": content_type}))
    settings, engine = setup(tmp_path, server, mode="rss", categories=["cs.LG"])
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed" and report.error and expected in report.error


# ---------------------------------------------------------------- real listings as they come (issue 19)


def test_a_real_day_sized_listing_adds_up_in_the_fetch_table(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    listing = arxiv_listing(1500)
    server.route("/rss/cs.LG", lambda seen: Reply(200, listing.body, {"Content-Type": "application/rss+xml"}))
    setup(tmp_path, server, mode="rss", categories=["cs.LG"])
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "digest.toml"), "fetch"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = [c.strip() for c in next(line for line in lines if "source" in line).split("┃")[1:-1]]
    row = [c.strip() for c in next(line for line in lines if line.strip("│ ").startswith("arxiv ")).split("│")[1:-1]]
    counts = {name: int(value) for name, value in zip(header, row, strict=True) if value.isdigit()}
    assert header == ["source", "status", "seen", "new", "updated", "unchanged", "skipped", "rejected", "time"]
    assert counts["skipped"] == listing.replacements > 0
    assert counts["seen"] + counts["skipped"] + counts["rejected"] == 1500
    assert counts["new"] + counts["updated"] + counts["unchanged"] == counts["seen"] == counts["new"]


def test_a_bad_archive_fails_with_arxivs_own_message(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/astroph", static("arxiv_rss_feed_error.xml"))
    settings, engine = setup(tmp_path, server, mode="rss", categories=["astroph"])
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed", "HTTP 200 with a 'Feed error' channel is not a quiet day"
    assert report.error and "Bad archive 'astroph'. Valid archive names are: astro-ph" in report.error
    with engine.connect() as conn:
        assert store.count_papers(conn) == 0


def test_tex_accents_in_the_listing_become_unicode(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/quant-ph+hep-ph", static("arxiv_rss_tex_names.xml"))
    settings, engine = setup(tmp_path, server, mode="rss", categories=["quant-ph", "hep-ph"])
    fetching.fetch(engine, settings, NOW)
    paper = papers(engine)["2602.24001"]
    assert paper.authors == ["Dénes Berta", "Václav Vavryčuk", "Przemysław Olbratowski", "Serdar Kadıoğlu"]
    assert paper.title == "Cramér-Rao Bounds for the Nonlinear Schrödinger Equation on Erdős-Rényi Graphs"
    assert paper.abstract.startswith(
        "We derive Cramér-Rao bounds for estimating the potential of a discrete Schrödinger"
    )
    assert "$p \\in [0,1]$" in paper.abstract and "$\\mathbb{R}^3$" in paper.abstract, "maths stays as written"


def test_affiliations_stay_with_their_author(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/quant-ph+hep-ph", static("arxiv_rss_tex_names.xml"))
    settings, engine = setup(tmp_path, server, mode="rss", categories=["quant-ph", "hep-ph"])
    fetching.fetch(engine, settings, NOW)
    assert papers(engine)["2602.24002"].authors == ["Tianliang Yan", "Yubao Liu", "Ana Souza"]


def test_the_listings_doi_is_kept(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/quant-ph+hep-ph", static("arxiv_rss_tex_names.xml"))
    settings, engine = setup(tmp_path, server, mode="rss", categories=["quant-ph", "hep-ph"])
    fetching.fetch(engine, settings, NOW)
    stored = papers(engine)
    assert stored["2602.24003"].doi == "10.1038/s41586-024-07824-z"
    assert stored["2602.24001"].doi is None


def test_an_api_error_sent_with_http_400_shows_arxivs_message(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    body = fixture_bytes("arxiv_api_error.xml")
    server.route("/api/query", lambda seen: Reply(400, body, {"Content-Type": "application/atom+xml"}))
    settings, engine = setup(tmp_path, server, mode="api")
    [report] = fetching.fetch(engine, settings, NOW)
    assert report.status == "failed" and report.error
    assert "arXiv API error: max_results must be non-negative" in report.error
    assert "<?xml" not in report.error and "<feed" not in report.error
    assert len(server.requests) == 1, "a 400 is not retried"


def test_old_rdf_listing_drops_updated_items_and_et_al(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/hep-ex", static("arxiv_rss_rdf_old.xml", "text/xml"))
    settings, engine = setup(tmp_path, server, mode="rss", categories=["hep-ex"])
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.status, report.counts.new, report.skipped, report.rejected) == ("ok", 2, 1, 0)
    stored = papers(engine)
    assert set(stored) == {"2306.00101", "2306.00102"}, "the UPDATED item is a replacement"
    heavy = stored["2306.00101"]
    assert heavy.title == "Search for Heavy Neutral Leptons in $W$ Boson Decays"
    assert heavy.authors == ["ATLAS Collaboration", "G. Aad", "B. Abbott"]
    assert heavy.abstract.startswith("A search for heavy neutral leptons")


def test_old_rdf_listing_can_include_updated_items(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    server.route("/rss/hep-ex", static("arxiv_rss_rdf_old.xml", "text/xml"))
    settings, engine = setup(tmp_path, server, mode="rss", categories=["hep-ex"], include_replacements=True)
    [report] = fetching.fetch(engine, settings, NOW)
    assert (report.counts.new, report.skipped) == (3, 0)
    assert papers(engine)["2305.17201"].arxiv_version == 2


def test_check_names_an_arxiv_archive_that_does_not_exist(tmp_path: Path, server: LoopbackServer) -> None:  # noqa: F811
    setup(tmp_path, server, mode="rss", categories=["cs.LG", "astroph"])
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "digest.toml"), "check"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "'astroph' is not an arXiv archive" in result.output and "astro-ph" in result.output
    assert server.requests == [], "check stays offline"
