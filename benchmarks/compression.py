"""Stored message bytes: size and CPU per digest for zlib level 1 (before), zstd, and zstd against a dictionary
trained on the run's first digests (what `store.message_packer` does).

Run: `.venv/bin/python -m benchmarks.compression [--subscribers 2000] [--train 125]`. Composes a day of the
benchmark world's digests through the real planner (with signed web links, as deployed with `digest serve`),
trains on the first `--train` (a compose worker's batch), and packs the rest. Prints one JSON line per method.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import zstandard

from benchmarks.daily_run import SECRET
from benchmarks.world import build_world, write_world
from digest import fetching, pipeline, planner, store
from digest.compose import Composer
from digest.config import load_config
from digest.links import signer_of
from digest.store import _messages


def digests(subscribers: int, folder: Path) -> list[bytes]:
    tables: dict[str, dict[str, object]] = {
        "": {"database_url": f"sqlite:///{folder / 'digest.db'}", "lookback_days": 7},
        "schedule": {"send_at": "00:00", "timezone": "UTC"},
        "delivery": {"transport": "maildir", "from": "Daily Papers <papers@example.org>"},
        "web": {"base_url": "https://papers.example.org", "secret": SECRET},
    }
    write_world(build_world(2000, subscribers, follow_share=0.1), folder, tables)
    settings = load_config(folder / "digest.toml")
    engine = store.open_engine(settings.database_url)
    now = pipeline.utcnow()
    fetching.fetch(engine, settings, now)
    with engine.connect() as conn:
        planned = planner.plan(conn, settings, Composer(), now, signer=signer_of(settings, engine))
    return [p.data for p in planned if p.data]


def measure(name: str, pack: Callable[[bytes], bytes], messages: list[bytes], **extra: object) -> None:
    started = time.perf_counter()
    packed = [pack(m) for m in messages]
    seconds = time.perf_counter() - started
    line = {
        "method": name,
        "messages": len(messages),
        "raw_kb": round(sum(map(len, messages)) / len(messages) / 1000, 2),
        "stored_kb": round(sum(map(len, packed)) / len(packed) / 1000, 2),
        "us_per_message": round(1e6 * seconds / len(messages), 1),
        **extra,
    }
    print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--train", type=int, default=125, help="digests the dictionary is trained on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        messages = digests(args.subscribers, Path(tmp))
    train, rest = messages[: args.train], messages[args.train :]
    measure("zlib-1", lambda m: zlib.compress(m, 1), rest)
    measure(f"zstd-{_messages.LEVEL}", _messages.Packer(None).pack, rest)
    started = time.perf_counter()
    trained = zstandard.train_dictionary(_messages.DICTIONARY_BYTES, train[: _messages.TRAIN_MAX])
    seconds = round(time.perf_counter() - started, 3)
    measure(f"zstd-{_messages.LEVEL}+dictionary", _messages.Packer(trained).pack, rest, train_seconds=seconds)
    reader = zstandard.ZstdDecompressor(dict_data=trained)
    stored = [_messages.Packer(trained).pack(m) for m in rest]
    started = time.perf_counter()
    assert [reader.decompress(s) for s in stored] == rest
    per_message = round(1e6 * (time.perf_counter() - started) / len(rest), 1)
    print(json.dumps({"method": "read back", "us_per_message": per_message}))


if __name__ == "__main__":
    main()
