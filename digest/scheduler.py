"""`digest run`: an APScheduler tick that re-reads the config, fetches when due, and runs the daily job.

The tick itself decides nothing about calendars: `planner.plan` picks subscribers whose local send time
has passed today (zoneinfo, so DST days of 23 or 25 hours just work) and who have no delivery for their
local date. So the first tick at start-up is the catch-up, and a restart right after a send is a no-op.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from digest import pipeline, store
from digest.config import Settings
from digest.deliver import Transport, build_transport
from digest.logs import event
from digest.reload import ConfigWatcher

log = logging.getLogger("digest.scheduler")

TICK_JOB_ID = "digest-daily-tick"
DEFAULT_TICK_SECONDS = 60.0
MISFIRE_GRACE_SECONDS = 6 * 3600


class DailyJob:
    """What one tick does: reload config, fetch if the last fetch is older than `fetch_every_minutes`,
    then plan, record and send (`pipeline.run_once`), and once a day apply retention (`pipeline.prune`).
    Errors are logged; the next tick tries again."""

    def __init__(
        self,
        engine: Engine,
        watcher: ConfigWatcher,
        stop: threading.Event,
        *,
        clock: Callable[[], dt.datetime] = pipeline.utcnow,
        transport_factory: Callable[[Settings], Transport] = build_transport,
        on_tick: Callable[[pipeline.RunReport | None], None] | None = None,
    ) -> None:
        self.engine = engine
        self.watcher = watcher
        self.stop = stop
        self.clock = clock
        self.transport_factory = transport_factory
        self.on_tick = on_tick
        self.ticks = 0
        with engine.connect() as conn:
            runs = store.fetch_runs(conn, limit=1)
        self.last_fetch: dt.datetime | None = runs[0].started_at if runs else None
        self.pruned_on: dt.date | None = None

    def fetch_due(self, settings: Settings, now: dt.datetime) -> bool:
        if not settings.sources:
            return False
        every = dt.timedelta(minutes=settings.schedule.fetch_every_minutes)
        return self.last_fetch is None or now - self.last_fetch >= every

    def tick(self) -> pipeline.RunReport | None:
        report: pipeline.RunReport | None = None
        try:
            if self.stop.is_set():
                return None
            settings = self.watcher.current()
            now = self.clock()
            do_fetch = self.fetch_due(settings, now)
            if do_fetch:
                self.last_fetch = now
            report = pipeline.run_once(
                self.engine,
                settings,
                now,
                do_fetch=do_fetch,
                transport=self.transport_factory(settings),
                stop=self.stop,
                plan_wait=False,
            )
            if self.pruned_on != now.date() and not self.stop.is_set():
                self.pruned_on = now.date()  # once a day, after the day's sending
                pipeline.prune(self.engine, settings, now)
            return report
        except Exception as exc:
            event(log, "tick_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            log.debug("tick failed", exc_info=True)
            return None
        finally:
            self.ticks += 1
            if self.on_tick:
                self.on_tick(report)


def build_scheduler(job: DailyJob, tick_seconds: float = DEFAULT_TICK_SECONDS) -> BackgroundScheduler:
    """One interval job, run at once on start (the catch-up), never overlapping, misfires coalesced."""
    scheduler = BackgroundScheduler(timezone=dt.UTC, executors={"default": ThreadPoolExecutor(max_workers=1)})
    scheduler.add_job(
        job.tick,
        IntervalTrigger(seconds=tick_seconds, timezone=dt.UTC),
        id=TICK_JOB_ID,
        name="digest daily job",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    return scheduler


def serve(job: DailyJob, stop: threading.Event, tick_seconds: float = DEFAULT_TICK_SECONDS) -> None:
    """Run the scheduler until `stop` is set, then wait for the tick in progress to finish."""
    scheduler = build_scheduler(job, tick_seconds)
    scheduler.start()
    event(log, "scheduler_started", logging.INFO, tick_seconds=tick_seconds, job=TICK_JOB_ID)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        stop.set()
        scheduler.shutdown(wait=True)
        event(log, "scheduler_stopped", logging.INFO)


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set `stop` (the message in flight finishes); a second signal kills at once."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        event(log, "stopping", logging.INFO, signal=name, detail="finishing the message in flight")
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
