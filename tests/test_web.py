"""`digest serve` through the real ASGI app (httpx, no server): every endpoint, on links taken from real sent digests.

The digests are built and sent by the real `digest send` into a Maildir; the links the tests follow are the
ones in those messages. SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from digest import store
from digest.cli import app as cli
from digest.config import Settings, load_config
from digest.links import Action, Signer, signer_of
from digest.models import SubscriberStatus
from digest.web import LINK_DAYS, create_app
from tests.helpers import papers_json
from tests.web_client import AppClient

BASE = "http://127.0.0.1:8080"
CONFIG = """
database_url = "{db_url}"
[schedule]
send_at = "00:00"
[delivery]
trending = 0
maildir = "mail"
from = "Daily Papers <papers@example.org>"
[web]
base_url = "{base}"
[[sources]]
name = "today"
type = "file"
path = "today.json"
[[subscribers]]
email = "ada@example.org"
name = "Ada"
keywords = ["state space model", "mamba"]
[[subscribers]]
email = "Grace@Example.org"
keywords = ["quantization"]
"""
PAPERS: list[dict[str, object]] = [
    {"id": "2611.00001", "title": "Mamba Meets Vision", "summary": "We apply mamba state space models.", "upvotes": 30},
    {"id": "2611.00002", "title": "Selective State Space Models", "summary": "A state space model study."},
    {"id": "2611.00003", "title": "Low-bit Quantization of LLMs", "summary": "Quantization to 2 bits.", "upvotes": 9},
]


@dataclass
class World:
    path: Path
    settings: Settings
    engine: Engine
    client: AppClient

    def send(self, *args: str) -> str:
        result = CliRunner().invoke(cli, ["--config", str(self.path / "digest.toml"), "send", *args])
        assert result.exit_code == 0, result.output
        return result.output

    def messages(self) -> dict[str, list[Message]]:
        by: dict[str, list[Message]] = {}
        for f in sorted((self.path / "mail" / "new").iterdir()):
            msg = email.message_from_bytes(f.read_bytes())
            by.setdefault(email.utils.parseaddr(msg["To"])[1].lower(), []).append(msg)
        return by

    def status(self, who: str) -> str:
        with self.engine.connect() as conn:
            return store.subscriber_statuses(conn, [who]).get(who.lower(), SubscriberStatus.active).value

    def feedback(self, who: str) -> list[tuple[str, int]]:
        with self.engine.connect() as conn:
            return [(f.title, f.value) for f in store.feedback_of(conn, who)]


def _text(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode().replace("\r\n", "\n")
    raise AssertionError("no text part")


def links(msg: Message) -> dict[str, list[str]]:
    """The paths of every link to the server in a message's text part and headers, by kind."""
    text = _text(msg) + " " + str(msg["List-Unsubscribe"])
    found: dict[str, list[str]] = {}
    for path in re.findall(re.escape(BASE) + r"(/[a-z]/[^\s>]+)", text):
        found.setdefault(path.split("/")[1], [])
        if path not in found[path.split("/")[1]]:
            found[path.split("/")[1]].append(path)
    return found


def world_at(tmp_path: Path, db_url: str) -> World:
    (tmp_path / "today.json").write_text(json.dumps(papers_json(PAPERS)))
    (tmp_path / "digest.toml").write_text(CONFIG.format(db_url=db_url, base=BASE))
    settings = load_config(tmp_path / "digest.toml")
    engine = store.open_engine(settings.database_url)
    signer = signer_of(settings, engine, always=True)
    assert signer is not None
    return World(tmp_path, settings, engine, AppClient(create_app(settings, engine, signer), BASE))


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = world_at(tmp_path, db_url)
    w.send()
    yield w
    w.client.close()


def test_a_digest_carries_signed_links_in_both_parts(world: World) -> None:
    msg = world.messages()["ada@example.org"][0]
    text = _text(msg)
    found = links(msg)
    assert len(found["u"]) == 1 and len(found["v"]) == 1 and len(found["p"]) == 1
    assert len(found["f"]) == 4  # more and less for each of two papers
    assert re.search(r"^More like this: " + re.escape(BASE) + r"/f/m\.\S+$", text, re.M)
    assert re.search(r"^Less like this: " + re.escape(BASE) + r"/f/l\.\S+$", text, re.M)
    assert text.startswith("View online: " + BASE + "/v/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"<{BASE}/u/" in msg["List-Unsubscribe"] and "<mailto:" in msg["List-Unsubscribe"]
    assert "digest.toml" not in text and "ada@example.org" not in "".join(found["f"])
    html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert isinstance(html, bytes)
    assert html.count(b"/f/m.") == 2 and b"More like this" in html and b"View online" in html


def test_one_click_post_unsubscribes_at_once_with_200_and_no_redirect(world: World) -> None:
    url = links(world.messages()["ada@example.org"][0])["u"][0]
    reply = world.client.post(url, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
    assert reply.status_code == 200 and "location" not in reply.headers
    assert world.status("ada@example.org") == "unsubscribed"
    # multipart/form-data, as RFC 8058 prefers, works the same
    world.client.post(url, data={"do": "resubscribe"})
    assert world.status("ada@example.org") == "active"
    reply = world.client.post(url, files={"List-Unsubscribe": (None, "One-Click")}, follow_redirects=False)
    assert reply.status_code == 200 and world.status("ada@example.org") == "unsubscribed"


def test_get_of_every_link_changes_nothing(world: World) -> None:
    """What a mail scanner or link preview does: fetch every link without running scripts."""
    for who, msgs in world.messages().items():
        for paths in links(msgs[0]).values():
            for path in paths:
                for method in ("GET", "HEAD"):
                    reply = world.client.request(method, path)
                    assert reply.status_code == 200, (path, reply.text)
                    assert reply.headers["cache-control"] == "no-store"
                    assert reply.headers["referrer-policy"] == "no-referrer"
        assert world.status(who) == "active" and world.feedback(who) == []


def test_unsubscribe_page_has_one_button_then_a_resubscribe_undo(world: World) -> None:
    url = links(world.messages()["ada@example.org"][0])["u"][0]
    page = world.client.get(url).text
    assert page.count("<button") == 1 and 'value="unsubscribe"' in page
    done = world.client.post(url, data={"do": "unsubscribe"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text and 'value="resubscribe"' in done.text
    assert world.status("ada@example.org") == "unsubscribed"
    back = world.client.post(url, data={"do": "resubscribe"})
    assert "Welcome back" in back.text and world.status("ada@example.org") == "active"


def test_feedback_is_recorded_with_one_click_and_can_be_undone(world: World) -> None:
    found = links(world.messages()["ada@example.org"][0])["f"]
    more = next(p for p in found if p.startswith("/f/m."))
    less_same = "/f/l." + more.split(".", 1)[1].split(".", 3)[-1]  # not a real token: forged from another
    page = world.client.get(more)
    assert "More like this?" in page.text and 'value="record"' in page.text
    recorded = world.client.post(more, data={"do": "record"})
    assert "Recorded: more like this" in recorded.text and 'value="undo"' in recorded.text
    assert world.feedback("ada@example.org") == [("Mamba Meets Vision", 1)]
    again = world.client.get(more)
    assert "Recorded: more like this" in again.text  # a reload shows the choice, changes nothing
    undone = world.client.post(more, data={"do": "undo"})
    assert undone.status_code == 200 and "Undone" in undone.text
    assert world.feedback("ada@example.org") == []
    assert world.client.get(less_same).status_code == 404
    less = next(p for p in found if p.startswith("/f/l.") and p.split(".")[3] == more.split(".")[3])
    world.client.post(more, data={"do": "record"})
    world.client.post(less, data={"do": "record"})
    assert world.feedback("ada@example.org") == [("Mamba Meets Vision", -1)]  # the last choice wins


def _mangle(path: str, part: int, value: str) -> str:
    route, token = path.rsplit("/", 1)
    pieces = token.split(".")
    pieces[part] = value
    return f"{route}/{'.'.join(pieces)}"


def test_forged_other_subscriber_wrong_kind_and_unknown_tokens_get_the_same_plain_404(world: World) -> None:
    by = world.messages()
    ada, grace = links(by["ada@example.org"][0]), links(by["grace@example.org"][0])
    more = next(p for p in ada["f"] if p.startswith("/f/m."))
    grace_sid = grace["p"][0].split("/")[2].split(".")[1]
    other_paper = _mangle(more, 3, "3")
    bad = [
        _mangle(more, 4, "A" * 22),  # forged MAC
        _mangle(more, 1, grace_sid),  # Ada's token, Grace's pseudonym
        other_paper,  # another paper with Ada's MAC
        _mangle(more, 2, "20261231"),  # another digest date
        ada["u"][0].replace("/u/", "/f/"),  # a valid token on the wrong route
        ada["p"][0].replace("/p/", "/u/"),
        "/f/m.aaaaaaaaaaaaaaaa.20261123.1.xxxxxxxxxxxxxxxxxxxxxx",  # nobody
        "/p/..%2F..%2Fetc%2Fpasswd",
        "/nothing/here",
    ]
    bodies = set()
    for path in bad:
        for method in ("GET", "POST"):
            reply = world.client.request(method, path, data={"do": "record"})
            assert reply.status_code in (404, 405), (path, method, reply.status_code)
            if reply.status_code == 404:
                bodies.add(reply.text)
                assert "ada" not in reply.text.lower() and "grace" not in reply.text.lower()
    assert len(bodies) == 1, "every bad link gets the same page"
    assert world.feedback("ada@example.org") == [] and world.status("grace@example.org") == "active"


def test_old_feedback_and_view_links_expire_but_unsubscribe_never_does(world: World) -> None:
    found = links(world.messages()["ada@example.org"][0])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=LINK_DAYS + 2)
    signer = signer_of(world.settings, world.engine, always=True)
    assert signer is not None
    old = AppClient(create_app(world.settings, world.engine, signer, clock=lambda: later), BASE)
    try:
        more = next(p for p in found["f"] if p.startswith("/f/m."))
        assert old.get(more).status_code == 410
        assert old.post(more, data={"do": "record"}).status_code == 410
        assert old.get(found["v"][0]).status_code == 410
        assert old.post(found["u"][0], data={"List-Unsubscribe": "One-Click"}).status_code == 200
    finally:
        old.close()
    assert world.feedback("ada@example.org") == [] and world.status("ada@example.org") == "unsubscribed"


def test_view_online_shows_the_digest_as_sent(world: World) -> None:
    msg = world.messages()["ada@example.org"][0]
    reply = world.client.get(links(msg)["v"][0])
    sent = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert isinstance(sent, bytes)
    assert reply.status_code == 200 and reply.text == sent.decode()
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]


def test_preferences_show_interests_feedback_with_undo_pause_and_resume(world: World) -> None:
    found = links(world.messages()["ada@example.org"][0])
    prefs = found["p"][0]
    world.client.post(next(p for p in found["f"] if p.startswith("/f/l.")), data={"do": "record"})
    page = world.client.get(prefs).text
    assert "state space model" in page and "mamba" in page and "00:00 (UTC)" in page
    assert "Mamba Meets Vision" in page or "Selective State Space Models" in page
    paper_id = re.search(r'name="paper" value="(\d+)"', page)
    assert paper_id is not None
    assert "Forgotten" in world.client.post(prefs, data={"do": "undo", "paper": paper_id.group(1)}).text
    assert world.feedback("ada@example.org") == []
    assert "Paused" in world.client.post(prefs, data={"do": "pause"}).text
    assert world.status("ada@example.org") == "paused"
    world.client.post(prefs, data={"do": "resume"})
    assert world.status("ada@example.org") == "active"
    assert world.client.post(prefs, data={"do": "explode"}).status_code == 400


def test_planning_skips_paused_and_unsubscribed_readers_until_they_come_back(world: World) -> None:
    by = world.messages()
    world.client.post(links(by["ada@example.org"][0])["p"][0], data={"do": "pause"})
    world.client.post(links(by["grace@example.org"][0])["u"][0], data={"List-Unsubscribe": "One-Click"})
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date()
    world.send("--date", tomorrow.isoformat(), "--no-fetch")
    with world.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(store.delivery_t)).scalar_one()
    assert count == 2, "nothing was planned for them"
    assert sum(len(v) for v in world.messages().values()) == 2
    world.client.post(links(by["ada@example.org"][0])["p"][0], data={"do": "resume"})
    world.send("--date", tomorrow.isoformat(), "--no-fetch")
    with world.engine.connect() as conn:
        who = conn.execute(select(store.delivery_t.c.subscriber).where(store.delivery_t.c.digest_date == tomorrow))
        assert [r[0] for r in who] == ["ada@example.org"]


def test_pausing_holds_back_a_digest_still_waiting_in_the_outbox(tmp_path: Path) -> None:
    w = world_at(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}")
    try:
        result = CliRunner().invoke(cli, ["--config", str(tmp_path / "digest.toml"), "fetch"])
        assert result.exit_code == 0
        from digest import planner
        from digest.compose import Composer

        planner.plan_and_record(w.engine, w.settings, Composer(), dt.datetime.now(dt.UTC))
        signer = signer_of(w.settings, w.engine)
        assert signer is not None
        w.client.post(signer.url(Action.prefs, "ada@example.org").removeprefix(BASE), data={"do": "pause"})
        w.send("--no-fetch")
        assert list(w.messages()) == ["grace@example.org"]
        with w.engine.connect() as conn:
            rows = {r.subscriber: (r.status, r.last_error) for r in conn.execute(select(store.delivery_t))}
        assert rows["ada@example.org"][0] == "skipped" and "paused" in (rows["ada@example.org"][1] or "")
    finally:
        w.client.close()


def test_web_hygiene_headers_limits_and_no_cross_site_posts(world: World) -> None:
    found = links(world.messages()["ada@example.org"][0])
    page = world.client.get(found["p"][0])
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp and "default-src 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text
    big = world.client.post(found["u"][0], content=b"x" * 20_000, headers={"content-type": "text/plain"})
    assert big.status_code == 413
    cross = world.client.post(found["u"][0], data={"do": "unsubscribe"}, headers={"sec-fetch-site": "cross-site"})
    assert cross.status_code == 403 and world.status("ada@example.org") == "active"
    same = world.client.post(found["u"][0], data={"do": "unsubscribe"}, headers={"sec-fetch-site": "same-origin"})
    assert same.status_code == 200 and world.status("ada@example.org") == "unsubscribed"
    assert world.client.get("/healthz").text == "ok\n"
    assert world.client.get("/robots.txt").text.endswith("Disallow: /\n")
    css = world.client.get("/static/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for reply in (page, big, cross, same, css):
        assert reply.status_code < 300 or reply.status_code >= 400  # never a redirect
    escaped = world.client.get(found["p"][0]).text
    assert "<b>state space model</b>" not in escaped  # autoescaped template


def test_the_link_secret_is_made_once_shared_by_every_process_and_rotating_it_breaks_old_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world_at(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}")
    try:
        w.send()
        prefs = links(w.messages()["ada@example.org"][0])["p"][0]
        other = store.open_engine(w.settings.database_url)  # another process's engine on the same file
        a, b = signer_of(w.settings, w.engine), signer_of(w.settings, other)
        assert a is not None and b is not None and a.secret == b.secret
        with other.connect() as conn:
            assert store.web_secret(conn).encode() == a.secret
        assert w.client.get(prefs).status_code == 200
        monkeypatch.setenv("DIGEST_WEB__SECRET", "a-new-secret-from-the-environment")
        rotated = load_config(tmp_path / "digest.toml")
        signer = signer_of(rotated, w.engine, always=True)
        assert signer is not None and signer.secret == b"a-new-secret-from-the-environment"
        fresh = AppClient(create_app(rotated, w.engine, signer), BASE)
        try:
            assert fresh.get(prefs).status_code == 404
            assert fresh.get(signer.url(Action.prefs, "ada@example.org").removeprefix(BASE)).status_code == 200
        finally:
            fresh.close()
    finally:
        w.client.close()


def test_tokens_name_no_address_and_bind_every_field() -> None:
    signer = Signer(BASE, b"k")
    token = signer.token(Action.more, "Ada@Example.org", paper_id=7, digest_date=dt.date(2026, 11, 23))
    assert "ada" not in token.lower() and "example" not in token.lower()
    look = {signer.sid("ada@example.org"): "ada@example.org"}.get
    claim = signer.verify(token, look)
    assert claim is not None and (claim.action, claim.subscriber, claim.paper_id) == (Action.more, "ada@example.org", 7)
    assert claim.digest_date == dt.date(2026, 11, 23)
    for i, piece in enumerate(token.split(".")):
        for other in ("l", "1", "8", "20261124", piece[:-1] + ("A" if piece[-1] != "A" else "B")):
            changed = token.split(".")
            changed[i] = other
            if changed != token.split("."):
                assert signer.verify(".".join(changed), look) is None
    assert Signer(BASE, b"other").verify(token, look) is None


def test_feedback_links_pair_their_macs_and_links_sent_before_the_pairing_still_work() -> None:
    """A digest's "more" and "less" links share one HMAC (its two halves); links already sent, made with one
    HMAC per action, keep working."""
    import base64
    import hmac

    signer = Signer(BASE, b"k")
    look = {signer.sid("ada@example.org"): "ada@example.org"}.get
    day = dt.date(2026, 11, 23)
    more, less = signer.feedback_links("ada@example.org", day)(7)
    assert more == signer.url(Action.more, "ada@example.org", paper_id=7, digest_date=day)
    assert less == signer.url(Action.less, "ada@example.org", paper_id=7, digest_date=day)
    claims = [signer.verify(u.rsplit("/", 1)[1], look) for u in (more, less)]
    assert [(c.action, c.paper_id) for c in claims if c] == [(Action.more, 7), (Action.less, 7)]
    assert more.rsplit(".", 1)[1] != less.rsplit(".", 1)[1]
    sid = signer.sid("ada@example.org")
    for code in ("m", "l"):
        old = hmac.digest(b"k", "\x00".join((code, "ada@example.org", "20261123", "7")).encode(), "sha256")[:16]
        token = f"{code}.{sid}.20261123.7.{base64.urlsafe_b64encode(old).decode()[:22]}"
        claim = signer.verify(token, look)
        assert claim is not None and claim.action.value == code and claim.paper_id == 7
        assert signer.verify(token.replace(".7.", ".8."), look) is None
