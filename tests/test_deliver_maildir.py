"""The Maildir transport: the folder appears whole, and concurrent first deliveries share it."""

from __future__ import annotations

import asyncio
import mailbox
import threading
from pathlib import Path

from digest.deliver import Envelope, MaildirTransport


def _envelope(n: int) -> Envelope:
    data = f"From: a@example.org\r\nTo: b{n}@example.org\r\nSubject: s{n}\r\n\r\nbody\r\n".encode()
    return Envelope(delivery_id=n, sender="a@example.org", recipient=f"b{n}@example.org", data=data)


def test_first_delivery_creates_a_complete_maildir_and_leaves_no_staging(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "mail"
    results = asyncio.run(MaildirTransport(target).send([_envelope(1)]))
    assert [r.ok for r in results] == [True]
    assert sorted(p.name for p in target.iterdir()) == ["cur", "new", "tmp"]
    assert [p.name for p in target.parent.iterdir()] == ["mail"]
    assert len(mailbox.Maildir(target, create=False)) == 1


def test_a_reader_polling_the_folder_never_sees_it_half_made(tmp_path: Path) -> None:
    """A mail reader (or a test) that lists the folder as soon as it exists must find `cur/` too."""
    target = tmp_path / "mail"
    done = threading.Event()
    seen_half: list[bool] = []

    def poll() -> None:
        while not done.is_set():
            if target.exists():
                seen_half.append(not (target / "cur").is_dir())
                return

    reader = threading.Thread(target=poll)
    reader.start()
    asyncio.run(MaildirTransport(target).send([_envelope(1)]))
    done.set()
    reader.join()
    # on a loaded machine the reader may first look after the send: it must still never have seen it half made
    assert True not in seen_half and (target / "cur").is_dir()


def test_concurrent_first_deliveries_both_land(tmp_path: Path) -> None:
    target = tmp_path / "mail"
    barrier = threading.Barrier(4)
    outcomes: list[bool] = []

    def deliver(n: int) -> None:
        barrier.wait()
        outcomes.extend(r.ok for r in asyncio.run(MaildirTransport(target).send([_envelope(n)])))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [True] * 4
    assert len(mailbox.Maildir(target, create=False)) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["mail"]


def test_a_file_in_the_way_is_reported_per_message(tmp_path: Path) -> None:
    target = tmp_path / "mail"
    target.write_text("not a folder")
    results = asyncio.run(MaildirTransport(target).send([_envelope(1)]))
    assert not results[0].ok
    assert str(target) in (results[0].error or "")
