"""Keeping the heap of a long daily job flat on glibc: freed memory handed back, few malloc arenas.

Digests are megabytes of message bytes that live for one chunk or one send batch. glibc keeps freed heap
(and gives every thread that allocates under contention an arena of its own), so without these the
resident size of a 100,000-subscriber run creeps up batch by batch. Elsewhere both are no-ops.
"""

from __future__ import annotations

import ctypes
import gc
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)
ARENAS = 1
YOUNG_THRESHOLD = 20_000  # allocations between young collections while planning (CPython's default: 700)
OLD_THRESHOLD = 100  # middle-generation collections before a full one may run (default: 10)


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018  (glibc only: musl has neither)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def release_memory() -> None:
    """Hand freed heap back to the OS. Called after each planned chunk and each sent batch, whose
    megabytes of message bytes are freed once stored or sent."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def limit_arenas(arenas: int = ARENAS) -> None:
    """Cap glibc's malloc arenas for this process. The send loop reads message bytes in worker threads
    and frees them on the event loop: with an arena per thread, each arena kept its own freed megabytes
    (100,000 sends peaked at 262 MB uncapped, 248 MB with one arena). Called once at process start
    (`cli.main`), before any thread allocates."""
    if _LIBC is not None:
        _LIBC.mallopt(M_ARENA_MAX, arenas)


def peak_rss_mb() -> float:
    """This process's peak resident size in MB. On Linux the kernel's high-water mark (VmHWM), since
    `ru_maxrss` survives exec: a spawned worker would report its parent's size at the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def quiet_collector() -> None:
    """Keep the cyclic garbage collector out of a planning worker's way for the rest of its life: what it
    holds now (the pool, its index, the templates) is frozen out of every scan, and collections run far less
    often. Planning allocates millions of short-lived, acyclic objects (refcounting frees them), yet with
    CPython's defaults the full collections that scan every cache cost a compose worker ~7 % of its time."""
    gc.collect()
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, OLD_THRESHOLD)


@contextmanager
def collector_quieted() -> Iterator[None]:
    """`quiet_collector` for a block of a longer-lived process (the daemon plans every day): the frozen
    objects and the thresholds are given back at the end, so nothing stays exempt from collection."""
    thresholds = gc.get_threshold()
    quiet_collector()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
