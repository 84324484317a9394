"""Load on `digest serve` over loopback while `digest send` sends on the same SQLite file.

Builds a world (real corpus papers, N subscribers, `[web] base_url` pointing at a local `digest serve`),
sends day 1 so every reader has links, plans day 2 into the outbox, then starts `digest send` (SMTP to a
local sink) and, at the same time, an open-loop load of mixed requests through real HTTP: pages
(preferences, feedback, unsubscribe, the digest online) and feedback POSTs (record / undo) arriving at
`--rate` per second (Poisson). Latency is measured from each request's scheduled start, so a slow server
cannot hide queueing. Prints one JSON line: offered and served requests/s, p50/p90/p99/max, errors, and
whether the send ran during the whole load.

    .venv/bin/python benchmarks/web.py [--subscribers 20000] [--rate 300] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sink import free_port, sink  # noqa: E402
from benchmarks.world import build_world, later_papers, write_papers, write_world  # noqa: E402
from digest import fetching, planner, store  # noqa: E402
from digest.compose import Composer  # noqa: E402
from digest.config import load_config  # noqa: E402
from digest.links import Action, signer_of  # noqa: E402

Request = tuple[str, str, dict[str, str] | None]
WRK = shutil.which("wrk")  # Debian's wrk; else the Python client below


def _digest(config: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DIGEST_CONFIG": str(config)}
    log = (config.parent / f"{args[0]}.log").open("ab")  # a pipe nobody reads would fill and stall the process
    nice = ["nice", "-n", os.environ["NICE"]] if args[0] == "send" and os.environ.get("NICE") else []
    return subprocess.Popen(
        [*nice, sys.executable, "-m", "digest", *args], env=env, stdout=subprocess.DEVNULL, stderr=log
    )


def _requests(config: Path, sample: int) -> list[Request]:
    """A mix of what readers do, made from day 1's real deliveries: mostly pages, some feedback posts."""
    settings = load_config(config)
    engine = store.open_engine(settings.database_url)
    signer = signer_of(settings, engine)
    assert signer is not None
    d, i = store.delivery_t, store.item_t
    with engine.connect() as conn:
        rows = conn.execute(
            select(d.c.subscriber, d.c.digest_date, i.c.paper_id).join(i, i.c.delivery_id == d.c.id).limit(sample)
        ).all()
    cut = len(signer.base_url)
    out: list[Request] = []
    for who, day, paper in rows:
        more = signer.url(Action.more, who, paper_id=paper, digest_date=day)[cut:]
        less = signer.url(Action.less, who, paper_id=paper, digest_date=day)[cut:]
        out += [
            ("GET", signer.url(Action.prefs, who)[cut:], None),
            ("GET", more, None),
            ("GET", signer.url(Action.unsubscribe, who, digest_date=day)[cut:], None),
            ("GET", signer.url(Action.view, who, digest_date=day)[cut:], None),
            ("POST", more, {"do": "record"}),
            ("POST", less, {"do": "record"}),
            ("POST", more, {"do": "undo"}),
        ]
    return out


async def _load(base: str, requests: list[Request], seconds: float, rate: float) -> dict[str, float]:
    rng = random.Random(7)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def one(at: float, method: str, path: str, form: dict[str, str] | None) -> None:
            nonlocal errors
            try:
                reply = await client.request(method, path, data=form)
                if reply.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - at)

        start = time.perf_counter()
        tasks = []
        at = start
        while at < start + seconds:
            at += rng.expovariate(rate)
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(at, *rng.choice(requests))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "offered_per_s": rate,
        "served_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 1),
        "errors": errors,
    }


def _wrk(base: str, requests: list[Request], seconds: float, connections: int, folder: Path) -> dict[str, object]:
    """Closed-loop load from `wrk` (C, so the load costs the machine little): `connections` keep-alive
    connections, each sending the next random request as soon as the last answered."""
    rows = ",\n".join(
        f"{{{json.dumps(m)}, {json.dumps(p)}, {json.dumps(urlencode(f)) if f else 'nil'}}}" for m, p, f in requests
    )
    script = folder / "mix.lua"
    script.write_text(
        "local reqs = {\n" + rows + "\n}\n"
        'local form = {["Content-Type"] = "application/x-www-form-urlencoded"}\n'
        "request = function()\n"
        "  local r = reqs[math.random(#reqs)]\n"
        "  if r[3] then return wrk.format(r[1], r[2], form, r[3]) end\n"
        "  return wrk.format(r[1], r[2])\n"
        "end\n"
    )
    argv = [WRK or "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), base]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 1)

    served = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {
        "client": "wrk",
        "connections": connections,
        "requests": int(total.group(1)) if total else 0,
        "served_per_s": float(served.group(1)) if served else 0.0,
        "p50_ms": ms("50"),
        "p90_ms": ms("90"),
        "p99_ms": ms("99"),
        "errors": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=20000)
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=300.0, help="python client: requests a second (Poisson)")
    parser.add_argument(
        "--client", choices=("wrk", "python"), default="wrk" if WRK else "python", help="wrk (closed loop) or python"
    )
    parser.add_argument("--connections", type=int, default=8, help="wrk: keep-alive connections")
    parser.add_argument("--no-send", action="store_true", help="load the server alone")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="digest-web-") as tmp, sink() as (smtp_port, sink_name):
        folder = Path(tmp)
        today = dt.datetime.now(dt.UTC).date()
        tables: dict[str, dict[str, object]] = {
            "": {"database_url": "sqlite:///digest.db"},
            "schedule": {"send_at": "00:00"},
            "delivery": {"transport": "smtp"},
            "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
            "web": {"base_url": base},
        }
        config = write_world(build_world(args.papers, args.subscribers, day=today), folder, tables)
        first = _digest(config, "send")
        if first.wait() != 0:
            raise SystemExit(f"day 1 send failed: {(folder / 'send.log').read_text()}")
        requests = _requests(config, 3000)
        # day 2 planned into the outbox here, so the load meets `digest send` sending, not composing
        tomorrow = today + dt.timedelta(days=1)
        write_papers(later_papers(args.papers, 1, tomorrow), folder / "papers.jsonl")
        settings = load_config(config)
        engine = store.open_engine(settings.database_url)
        now = dt.datetime.now(dt.UTC)  # due at once: `digest send` sends what is due by its own clock
        fetching.fetch(engine, settings, now)
        planned = planner.plan_and_record(engine, settings, Composer(), now, digest_date=tomorrow)
        engine.dispose()
        server = _digest(config, "serve", "--port", str(port))
        try:
            for _ in range(400):
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            sender = None if args.no_send else _digest(config, "send", "--no-fetch")
            began = time.perf_counter()
            finished: list[float] = []
            if sender is not None:

                def wait_for_send(proc: subprocess.Popen[bytes]) -> None:
                    proc.wait()
                    finished.append(time.perf_counter())

                watcher = threading.Thread(target=wait_for_send, args=(sender,))
                watcher.start()
            if args.client == "wrk":
                result = _wrk(base, requests, args.seconds, args.connections, folder)
            else:
                result = dict(asyncio.run(_load(base, requests, args.seconds, args.rate)))
            load_seconds = time.perf_counter() - began
            if sender is not None:
                result["send_exit"] = sender.wait()
                watcher.join()
                result["send_seconds"] = round(finished[0] - began, 1)
                result["load_seconds"] = round(load_seconds, 1)
                result["send_ran_throughout"] = finished[0] - began >= load_seconds
                result["sent"] = planned.built
            print(json.dumps({"phase": "web_load", "subscribers": args.subscribers, "sink": sink_name, **result}))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
