"""The reader-facing app: one-click unsubscribe (RFC 8058), feedback, the digest online, preferences, health.

Every page is reached through a signed link (`digest.links`) and acts only for the reader and paper its
token names. A GET never changes anything, so a mail scanner or link preview that fetches every link does
no harm; the one change a click leads to is a button on the page (a POST), or a mail provider's one-click
POST of `List-Unsubscribe=One-Click`, answered 200 at once with no redirect. A bad, forged or unknown token
gets the same plain 404 whoever it names. Database work runs in threads, in short transactions, so the app
serves beside `digest run` or `digest send` on one SQLite file, or as several processes on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any, TypeVar

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest import mime, store
from digest.clock import utcnow
from digest.compose import paper_url, templates_dir
from digest.config import Settings, SubscriberConfig
from digest.library import LibraryError, read_library
from digest.links import Action, Claim, Signer
from digest.logs import event
from digest.models import SubscriberStatus
from digest.web._feed import atom_feed
from digest.web._guard import Guard
from digest.web._readers import Readers

log = logging.getLogger("digest.web")

LINK_DAYS = 365  # feedback and view-online links stop working this long after their digest
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    """What every page template gets besides its own values."""

    title: str
    brand: str = "Daily papers"


class Web:
    """The app's state: where readers and papers live, who they are, how links are checked, what time it is."""

    def __init__(self, engine: Engine, readers: Readers, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self.readers = readers
        self.signer: Signer = readers.signer
        self.clock = clock
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir() / "web")),
            autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.css = (templates_dir() / "web" / "web.css").read_bytes()
        self._writes: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    # ------------------------------------------------------------ helpers

    def claim(self, request: Request, *actions: Action) -> Claim | None:
        """The verified claim of the request's token, if it is one of `actions` and still valid."""
        token = str(request.path_params.get("token", ""))
        claim = self.signer.verify(token, self.readers.lookup)
        if claim is None or claim.action not in actions:
            return None
        return claim

    def reader(self, request: Request, *actions: Action) -> tuple[Claim, SubscriberConfig] | None:
        """The verified claim and the configured subscriber it names (links name readers in lower case)."""
        claim = self.claim(request, *actions)
        sub = self.readers.subscriber(claim.subscriber) if claim is not None else None
        return (claim, sub) if claim is not None and sub is not None else None

    def expired(self, claim: Claim) -> bool:
        if claim.action is Action.unsubscribe or claim.digest_date is None:
            return False  # an unsubscribe link works for as long as the reader may receive mail
        return claim.digest_date < self.clock().date() - dt.timedelta(days=LINK_DAYS)

    def render(self, name: str, code: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(css_url="/static/web.css", **values)
        return HTMLResponse(html, status_code=code)

    def not_found(self) -> HTMLResponse:
        return self.render(
            "notice.html.j2",
            404,
            page=Page("Link not found"),
            heading="This link does not work",
            message="It may have been mistyped or cut short. Use the links in your latest digest.",
        )

    def gone(self, claim: Claim) -> HTMLResponse:
        return self.render(
            "notice.html.j2",
            410,
            page=Page("Link expired"),
            heading="This link has expired",
            message="Links in old digests stop working after a while. Your preferences are still here:",
            link=self.signer.url(Action.prefs, claim.subscriber),
            link_label="Your preferences",
        )

    async def db(self, work: Callable[..., T], *args: Any, write: bool = False) -> T:
        """Run `work(conn, *args)` in a thread, in one short transaction: one hop and one transaction per
        request. On SQLite this process's writers queue on a lock rather than in SQLite's busy handler,
        whose back-off sleeps (up to 100 ms a try) would make their latency."""

        def run() -> T:
            with self._writes if write else contextlib.nullcontext(), self.engine.begin() as conn:
                return work(conn, *args)

        return await run_in_threadpool(run)

    async def form(self, request: Request) -> FormData:
        try:
            return await request.form(max_files=0, max_fields=20, max_part_size=4096)
        except Exception:  # malformed multipart or urlencoded bodies
            raise HTTPException(400, "Bad request") from None

    def settings(self) -> Settings:
        return self.readers.settings()


# ---------------------------------------------------------------- pages


async def healthz(request: Request) -> Response:
    web: Web = request.app.state.web

    def ping() -> None:
        with web.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except SQLAlchemyError:
        return PlainTextResponse("database unavailable\n", status_code=503)
    return PlainTextResponse("ok\n")


async def robots(_request: Request) -> Response:
    return PlainTextResponse("User-agent: *\nDisallow: /\n")


async def stylesheet(request: Request) -> Response:
    web: Web = request.app.state.web
    return Response(web.css, media_type="text/css", headers={"Cache-Control": "public, max-age=86400"})


async def unsubscribe(request: Request) -> Response:
    """GET: a page with one "Unsubscribe" button. POST: RFC 8058 one-click, or that button (and its undo)."""
    web: Web = request.app.state.web
    found = web.reader(request, Action.unsubscribe)
    if found is None:
        return web.not_found()
    who = found[1].email
    choice: SubscriberStatus | None = None
    if request.method == "POST":
        form = await web.form(request)
        if form.get("List-Unsubscribe") == "One-Click":
            await web.db(store.set_status, who, SubscriberStatus.unsubscribed, web.clock(), "one-click", write=True)
            event(log, "unsubscribed", via="one-click")
            return PlainTextResponse("Unsubscribed.\n")
        wanted = {"unsubscribe": SubscriberStatus.unsubscribed, "resubscribe": SubscriberStatus.active}
        choice = wanted.get(str(form.get("do", "")))
        if choice is None:
            raise HTTPException(400, "Bad request")
        event(log, "unsubscribed" if choice is SubscriberStatus.unsubscribed else "resubscribed", via="web")

    def act(conn: Any) -> SubscriberStatus:
        if choice is not None:
            store.set_status(conn, who, choice, web.clock(), "web")
        return store.subscriber_statuses(conn, [who]).get(who.lower(), SubscriberStatus.active)

    status = await web.db(act, write=choice is not None)
    return web.render(
        "unsubscribe.html.j2",
        page=Page("Unsubscribe"),
        email=who,
        status=status.value,
        done=request.method == "POST",
        prefs_url=web.signer.url(Action.prefs, who),
    )


async def feedback(request: Request) -> Response:
    """GET: the paper and one button to record "more/less like this". POST: record it, or undo."""
    web: Web = request.app.state.web
    claim = web.claim(request, Action.more, Action.less)
    if claim is None or claim.paper_id is None:
        return web.not_found()
    if web.expired(claim):
        return web.gone(claim)
    who, paper_id = claim.subscriber, claim.paper_id
    value = 1 if claim.action is Action.more else -1
    done = ""
    if request.method == "POST":
        form = await web.form(request)
        done = str(form.get("do", ""))
        if done not in {"record", "undo"}:
            raise HTTPException(400, "Bad request")
        event(log, "feedback", logging.DEBUG, action=done, value=value)

    def act(conn: Any) -> tuple[store.PaperCard | None, int | None]:
        card = store.paper_card(conn, paper_id)
        if card is not None and done == "record":
            store.record_feedback(conn, who, paper_id, value, web.clock(), "web")
        elif card is not None and done == "undo":
            store.delete_feedback(conn, who, paper_id)
        return card, store.feedback_value(conn, who, paper_id)

    paper, current = await web.db(act, write=bool(done))
    if paper is None:
        return web.not_found()
    return web.render(
        "feedback.html.j2",
        page=Page("More like this" if value > 0 else "Less like this"),
        paper=paper,
        paper_url=paper_url(paper),
        value=value,
        current=current,
        done=done,
        prefs_url=web.signer.url(Action.prefs, who),
    )


async def view(request: Request) -> Response:
    """The digest as it was sent: the HTML part of the stored message."""
    web: Web = request.app.state.web
    found = web.reader(request, Action.view)
    if found is None or found[0].digest_date is None:
        return web.not_found()
    claim, sub = found
    if web.expired(claim):
        return web.gone(claim)
    data = await web.db(store.stored_message, sub.email, claim.digest_date)
    html = (mime.html_part(data) or _html_part(data)) if data is not None else None
    if html is None:
        return web.render(
            "notice.html.j2",
            404,
            page=Page("Digest not kept"),
            heading="This digest is not kept any more",
            message="Old digests are cleared after a while, and days with nothing new have none.",
            link=web.signer.url(Action.prefs, claim.subscriber),
            link_label="Your preferences",
        )
    return HTMLResponse(html)


async def preferences(request: Request) -> Response:
    """The reader's interests as configured (read-only), their feedback with undo, pause/resume, unsubscribe."""
    web: Web = request.app.state.web
    found = web.reader(request, Action.prefs)
    if found is None:
        return web.not_found()
    sub = found[1]
    who = sub.email
    notice = ""
    status_change: SubscriberStatus | None = None
    forget: int | None = None
    if request.method == "POST":
        form = await web.form(request)
        do = str(form.get("do", ""))
        statuses = {
            "pause": SubscriberStatus.paused,
            "resume": SubscriberStatus.active,
            "unsubscribe": SubscriberStatus.unsubscribed,
            "resubscribe": SubscriberStatus.active,
        }
        if do in statuses:
            status_change = statuses[do]
            notice = {
                "pause": "Paused: no digests until you resume.",
                "resume": "Resumed: your next digest comes at the usual time.",
                "unsubscribe": "Unsubscribed: you will get no more digests.",
                "resubscribe": "Welcome back: your next digest comes at the usual time.",
            }[do]
        elif do == "undo" and str(form.get("paper", "")).isdigit():
            forget = int(str(form["paper"]))
            notice = "Forgotten."
        else:
            raise HTTPException(400, "Bad request")
        event(log, "preferences", logging.DEBUG, action=do)

    def act(conn: Any) -> tuple[SubscriberStatus, list[store.FeedbackRow]]:
        if status_change is not None:
            store.set_status(conn, who, status_change, web.clock(), "web")
        if forget is not None:
            store.delete_feedback(conn, who, forget)
        status = store.subscriber_statuses(conn, [who]).get(who.lower(), SubscriberStatus.active)
        return status, store.feedback_of(conn, who)

    status, given = await web.db(act, write=status_change is not None or forget is not None)
    settings = web.settings()
    return web.render(
        "preferences.html.j2",
        page=Page("Your preferences"),
        feed_url=web.signer.url(Action.feed, who),
        email=who,
        sub=sub,
        send_at=settings.send_time(sub).strftime("%H:%M"),
        timezone=str(settings.timezone(sub)),
        status=status.value,
        feedback=given,
        learns=settings.learns(sub),
        library=_library_size(sub),
        notice=notice,
    )


def _library_size(sub: SubscriberConfig) -> int:
    """How many papers the reader's seed library holds (0 without one, or when it cannot be read now)."""
    if sub.library is None:
        return 0
    try:
        return len(read_library(sub.library))
    except LibraryError:
        return 0


async def feed(request: Request) -> Response:
    """The reader's digests as an Atom feed, for a feed reader (the link is as secret as the others)."""
    web: Web = request.app.state.web
    found = web.reader(request, Action.feed)
    if found is None:
        return web.not_found()
    claim, sub = found
    sent = await web.db(store.sent_papers, sub.email)
    token = str(request.path_params["token"])
    body = atom_feed(
        f"Daily papers for {sub.name or sub.email}",
        f"{web.signer.base_url or str(request.base_url).rstrip('/')}/a/{token}",
        web.signer.base_url or str(request.base_url),
        web.signer.sid(claim.subscriber),
        sent,
        web.clock(),
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


def _html_part(data: bytes) -> str | None:
    message = message_from_bytes(data, policy=SMTP)
    if not isinstance(message, EmailMessage):
        return None
    part = message.get_body(("html",))
    return str(part.get_content()) if part is not None else None


async def _not_found(request: Request, _exc: Exception) -> Response:
    web: Web = request.app.state.web
    return web.not_found()


async def _bad_request(request: Request, exc: Exception) -> Response:
    web: Web = request.app.state.web
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    if status == 404:
        return web.not_found()
    if status == 405:
        return PlainTextResponse("Method not allowed\n", status_code=405)
    return web.render(
        "notice.html.j2",
        status,
        page=Page("Bad request"),
        heading="That did not work",
        message="The form was not understood. Go back and try again.",
    )


def create_app(
    settings: Settings,
    engine: Engine,
    signer: Signer,
    *,
    watch: bool = True,
    clock: Callable[[], dt.datetime] = utcnow,
    threads: int | None = None,
) -> Starlette:
    """The ASGI app over this database, signing and checking links with `signer`; `watch` re-reads the
    config file when it changes; database work runs in at most `threads` threads (the engine's pool should
    hold as many connections). A value: tests drive it through httpx without a server."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if threads is not None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/robots.txt", robots, methods=["GET", "HEAD"]),
        Route("/static/web.css", stylesheet, methods=["GET", "HEAD"]),
        Route("/u/{token}", unsubscribe, methods=["GET", "HEAD", "POST"]),
        Route("/f/{token}", feedback, methods=["GET", "HEAD", "POST"]),
        Route("/v/{token}", view, methods=["GET", "HEAD"]),
        Route("/p/{token}", preferences, methods=["GET", "HEAD", "POST"]),
        Route("/a/{token}", feed, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard)],
        exception_handlers={404: _not_found, HTTPException: _bad_request},
        lifespan=lifespan,
    )
    app.state.web = Web(engine, Readers(settings, signer, watch=watch), clock)
    return app
