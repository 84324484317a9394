"""Any RSS 2.0 / Atom feed against a loopback server, with conditional GET, into SQLite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from digest import fetching, store
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
