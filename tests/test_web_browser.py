"""A real browser (Playwright driving Debian's Chromium) on a real sent digest and a real `digest serve`.

It opens a digest's HTML from the Maildir, clicks "Less like this" and the unsubscribe link, completes each
with one click on the page, and checks the database; a browser with scripts off that opens every link changes
nothing. `DIGEST_SCREENSHOTS=DIR` also saves every page at 375 and 1024 px, light and dark.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest import store
from digest.models import SubscriberStatus
from tests.helpers import papers_json, unavailable
from tests.test_scheduler_process import digest, wait_for
from tests.test_web_process import _free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAPERS: list[dict[str, object]] = [
    {"id": "2611.00001", "title": "Mamba Meets Vision", "summary": "We apply mamba state space models.", "upvotes": 30},
    {"id": "2611.00002", "title": "Selective State Space Models", "summary": "A state space model study."},
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        unavailable("Chromium is not installed (make system-deps installs Debian's chromium)")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    (tmp_path / "today.json").write_text(json.dumps(papers_json(PAPERS)))
    config = tmp_path / "digest.toml"
    config.write_text(
        f"""
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
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
email = "grace@example.org"
keywords = ["state space model"]
"""
    )
    sent = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "send"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr
    server = digest(config, "serve", "--port", str(port))
    try:
        wait_for(lambda: _up(base, server))
        yield tmp_path, base
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def _up(base: str, server: subprocess.Popen[str]) -> bool:
    assert server.poll() is None, server.communicate()
    try:
        return httpx.get(base + "/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _html_of(tmp_path: Path, who: str) -> Path:
    for path in sorted((tmp_path / "mail" / "new").iterdir()):
        msg = email.message_from_bytes(path.read_bytes())
        if who in msg["To"]:
            html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
            assert isinstance(html, bytes)
            out = tmp_path / f"{who}.html"
            out.write_bytes(html)
            return out
    raise AssertionError(f"no digest for {who}")


def _db(tmp_path: Path) -> Any:
    return store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")


def _shoot(page: Any, name: str) -> None:
    folder = os.environ.get("DIGEST_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for width in (375, 1024):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(Path(folder) / f"{name}-{width}-{scheme}.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 1024, "height": 900})


def test_a_reader_clicks_less_like_this_and_unsubscribe_in_a_real_browser(
    browser: Any, served: tuple[Path, str]
) -> None:
    tmp_path, base = served
    page = browser.new_page()
    page.goto(_html_of(tmp_path, "ada@example.org").as_uri())
    _shoot(page, "email")
    page.get_by_role("link", name="Less like this").first.click()
    page.wait_for_url(base + "/f/**")
    assert page.get_by_role("heading").inner_text() == "Less like this?"
    _shoot(page, "feedback-ask")
    with _db(tmp_path).connect() as conn:
        assert store.feedback_of(conn, "ada@example.org") == []  # opening the link recorded nothing
    page.get_by_role("button", name="Less like this").click()
    page.get_by_text("Recorded: less like this").wait_for()
    _shoot(page, "feedback-done")
    with _db(tmp_path).connect() as conn:
        assert [(f.title, f.value) for f in store.feedback_of(conn, "ada@example.org")] == [("Mamba Meets Vision", -1)]

    page.get_by_role("link", name="Your preferences").click()
    page.get_by_role("heading", name="Your preferences").wait_for()
    _shoot(page, "preferences")

    page.goto(_html_of(tmp_path, "ada@example.org").as_uri())
    page.get_by_role("link", name="Unsubscribe").click()
    page.wait_for_url(base + "/u/**")
    _shoot(page, "unsubscribe-ask")
    with _db(tmp_path).connect() as conn:
        assert store.subscriber_statuses(conn) == {}
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_text("You are unsubscribed").wait_for()
    _shoot(page, "unsubscribe-done")
    with _db(tmp_path).connect() as conn:
        assert store.subscriber_statuses(conn) == {"ada@example.org": SubscriberStatus.unsubscribed}
    page.get_by_role("button", name="Resubscribe").click()
    page.get_by_text("Welcome back").wait_for()
    with _db(tmp_path).connect() as conn:
        assert store.subscriber_statuses(conn) == {"ada@example.org": SubscriberStatus.active}
    page.goto(base + "/f/m.not-a-token")
    _shoot(page, "not-found")
    page.close()


def test_a_browser_without_scripts_that_opens_every_link_changes_nothing(
    browser: Any, served: tuple[Path, str]
) -> None:
    tmp_path, base = served
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(_html_of(tmp_path, "grace@example.org").as_uri())
    hrefs = [h for h in page.eval_on_selector_all("a", "els => els.map(e => e.href)") if h.startswith(base)]
    assert len(hrefs) >= 6  # view online, preferences, more/less per paper, unsubscribe
    for href in hrefs:
        reply = page.goto(href)
        assert reply is not None and reply.status == 200, href
    context.close()
    with _db(tmp_path).connect() as conn:
        assert store.feedback_of(conn, "grace@example.org") == []
        assert store.subscriber_statuses(conn) == {}
