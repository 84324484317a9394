"""Send-phase throughput: N pending ~30 KB deliveries to a local sink, ours (claims + pooled SMTP + group
commits of the status rows) beside a raw aiosmtplib loop over the same bytes and connection count.

    .venv/bin/python benchmarks/send.py [--n 500] [--size-kb 30] [--connections 4] [--repeat 3]
        [--sink auto|smtp-sink|aiosmtpd]

The sink is postfix's `smtp-sink` when installed (`apt-get install postfix`), else aiosmtpd in-process
(which is itself slower, so both figures drop). Goal: ours >= 70 % of raw.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sink import sink
from digest import sending, store
from digest.config import parse_config
from digest.deliver import SmtpTransport
from digest.memory import limit_arenas
from digest.models import DeliveryStatus


def make_message(i: int, size: int) -> bytes:
    line = f"Paper {i}: a line of digest text, about state space models and linear attention.  "
    body = "\r\n".join(line[: 76 - (k % 7)] for k in range(size // 76))
    head = (
        f"From: Papers <papers@example.org>\r\nTo: r{i}@example.org\r\nSubject: Daily papers {i}\r\n"
        f"Message-ID: <bench.{i}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    return (head + body + "\r\n").encode()


async def raw_loop(port: int, messages: list[tuple[str, bytes]], connections: int) -> float:
    """The floor: `connections` aiosmtplib sessions sending their share back to back, no database."""
    queue = list(reversed(messages))

    async def one() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await client.connect()
        while queue:
            rcpt, data = queue.pop()
            await client.sendmail("papers@example.org", [rcpt], data)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return time.perf_counter() - started


def main() -> None:
    limit_arenas()  # as `digest` does at process start
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--size-kb", type=int, default=30)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "aiosmtpd"], default="auto")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, sink(args.sink) as (port, sink_name):
        path = Path(tmp) / "digest.toml"
        text = f"""
database_url = "sqlite:///digest.db"
[delivery]
transport = "smtp"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
max_connections = {args.connections}
[[subscribers]]
email = "nobody@example.org"
"""
        settings = parse_config(text, path)
        engine = store.open_engine(settings.database_url)
        now = dt.datetime.now(dt.UTC)
        messages = [(f"r{i}@example.org", make_message(i, args.size_kb * 1024)) for i in range(args.n)]
        with engine.begin() as conn:
            store.insert_deliveries(
                conn,
                [
                    store.NewDelivery(r, now.date(), DeliveryStatus.pending, f"<bench.{i}@example.org>", data, [])
                    for i, (r, data) in enumerate(messages)
                ],
                now,
            )
        avg_kb = sum(len(d) for _, d in messages) / len(messages) / 1024

        async def ours() -> float:
            transport = SmtpTransport(settings.smtp)
            started = time.perf_counter()
            report = await sending.send_pending(engine, settings, transport, now)
            elapsed = time.perf_counter() - started
            await transport.close()
            assert report.sent == args.n, report
            return elapsed

        raw_times, our_times = [], []
        for _ in range(args.repeat):  # interleaved, so a busy machine slows both alike
            raw_times.append(asyncio.run(raw_loop(port, messages, args.connections)))
            our_times.append(asyncio.run(ours()))
            with engine.begin() as conn:
                sent = conn.execute(
                    select(func.count()).where(store.delivery_t.c.status == DeliveryStatus.sent.value)
                ).scalar_one()
                assert sent == args.n
                conn.execute(
                    update(store.delivery_t).values(status="pending", attempts=0, sent_at=None, next_attempt_at=now)
                )

    print(
        f"sink: {sink_name}; {args.n} messages of {avg_kb:.1f} KB; {args.connections} connections; "
        f"{args.repeat} interleaved rounds"
    )
    for label, times in (("raw aiosmtplib loop", raw_times), ("digest send phase (+commits)", our_times)):
        rates = sorted(args.n / t for t in times)
        print(f"{label:30} best {rates[-1]:7.1f} msgs/s   median {statistics.median(rates):7.1f} msgs/s")
    best = (args.n / min(our_times)) / (args.n / min(raw_times))
    median = statistics.median(r / o for r, o in zip(raw_times, our_times, strict=True))
    print(f"ours / raw: best {best:.0%}, median of rounds {median:.0%} (goal >= 70%)")


if __name__ == "__main__":
    main()
