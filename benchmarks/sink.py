"""A local SMTP sink for the benchmarks, in its own process so it never shares a GIL with the senders.

Debian's `smtp-sink` (postfix) when installed, else aiosmtpd's Sink handler.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SMTP_SINK = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"SMTP sink exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise SystemExit(f"SMTP sink did not listen on port {port}")


@contextlib.contextmanager
def sink(kind: str = "auto") -> Iterator[tuple[int, str]]:
    """(port, which sink) of a running sink; `kind` is auto, smtp-sink or aiosmtpd."""
    port = free_port()
    if kind == "smtp-sink" or (kind == "auto" and SMTP_SINK):
        if not SMTP_SINK:
            raise SystemExit("smtp-sink not found (apt-get install postfix)")
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        argv, name = [SMTP_SINK, *user, f"127.0.0.1:{port}", "256"], "smtp-sink"
    else:
        argv = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
        name = "aiosmtpd"
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        yield port, name
    finally:
        proc.terminate()
        proc.wait(10)
