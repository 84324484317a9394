"""Scale-out throughput: N pending deliveries in one PostgreSQL database drained by 1, 2, 3 … processes of
`digest send --worker --until-empty` into a local sink.

    .venv/bin/python benchmarks/scale_out.py [--n 3000] [--size-kb 5] [--workers 1,2,3] [--connections 4]
        [--repeat 2] [--sink auto|smtp-sink|aiosmtpd] [--database-url postgresql+psycopg://…]

Without --database-url a throwaway cluster is started (tests/postgres.py: Debian's postgresql, loopback,
fsync off). The sink is postfix's `smtp-sink` when installed, else aiosmtpd in a child process. Each figure
is the rate between 10 % and 90 % of the outbox sent (rows turned `sent`, polled every 20 ms), so
interpreter start-up and the drain tail are not billed to sending.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import delete, func, select

from digest import store
from digest.models import DeliveryStatus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sink import sink  # noqa: E402


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.postgres import postgres_server

    with postgres_server() as server:
        yield server.database()


def make_message(i: int, size: int) -> bytes:
    line = f"Paper {i}: a line of digest text, about state space models and linear attention.  "
    body = "\r\n".join(line[: 76 - (k % 7)] for k in range(size // 76))
    head = (
        f"From: Papers <papers@example.org>\r\nTo: r{i}@example.org\r\nSubject: Daily papers {i}\r\n"
        f"Message-ID: <bench.{i}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    return (head + body + "\r\n").encode()


def fill(engine: object, n: int, size: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(delete(store.item_t))
        conn.execute(delete(store.delivery_t))
        for start in range(0, n, 1000):
            rows = [
                store.NewDelivery(
                    f"r{i}@example.org",
                    now.date(),
                    DeliveryStatus.pending,
                    f"<bench.{i}@example.org>",
                    make_message(i, size),
                    [],
                )
                for i in range(start, min(n, start + 1000))
            ]
            store.insert_deliveries(conn, rows, now)


def run_workers(config: Path, k: int, engine: object, n: int) -> float:
    """Start `k` workers, wait for them all; the send rate between 10 % and 90 % of the outbox sent."""
    argv = [sys.executable, "-m", "digest", "--config", str(config), "send", "--worker", "--until-empty"]
    procs = [
        subprocess.Popen([*argv, "--poll", "0.2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(k)
    ]
    t = store.delivery_t
    marks: dict[float, float] = {}
    while any(p.poll() is None for p in procs):
        with engine.connect() as conn:  # type: ignore[attr-defined]
            sent = conn.execute(select(func.count()).select_from(t).where(t.c.status == "sent")).scalar_one()
        now = time.perf_counter()
        for frac in (0.1, 0.9):
            if frac not in marks and sent >= frac * n:
                marks[frac] = now
        time.sleep(0.02)
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"worker failed ({p.returncode}): {err[-1000:]}")
    if len(marks) < 2 or marks[0.9] <= marks[0.1]:
        raise SystemExit("too few messages to time: raise --n")
    return 0.8 * n / (marks[0.9] - marks[0.1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--size-kb", type=float, default=5)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections per worker")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "aiosmtpd"], default="auto")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    counts = [int(k) for k in args.workers.split(",")]

    with tempfile.TemporaryDirectory() as tmp, sink(args.sink) as (port, sink_name), database(args.database_url) as url:
        config = Path(tmp) / "digest.toml"
        config.write_text(
            f'database_url = "{url}"\n[delivery]\ntransport = "smtp"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nmax_connections = {args.connections}\n'
            '[[subscribers]]\nemail = "nobody@example.org"\n'
        )
        engine = store.open_engine(url)
        size = int(args.size_kb * 1024)
        print(
            f"sink: {sink_name}; {args.n} messages of ~{args.size_kb:g} KB; {args.connections} SMTP connections "
            f"per worker; best and median of {args.repeat}; {os.cpu_count()} CPUs"
        )
        for k in counts:
            rates = []
            for _ in range(args.repeat):
                fill(engine, args.n, size)
                rates.append(run_workers(config, k, engine, args.n))
                with engine.connect() as conn:
                    t = store.delivery_t
                    sent = conn.execute(select(func.count()).select_from(t).where(t.c.status == "sent")).scalar_one()
                if sent != args.n:
                    raise SystemExit(f"only {sent} of {args.n} sent")
            print(f"{k} worker(s): best {max(rates):7.0f} msgs/s   median {statistics.median(rates):7.0f} msgs/s")
        engine.dispose()


if __name__ == "__main__":
    main()
