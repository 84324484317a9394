"""`digest serve` as a real process beside a real `digest run` on one SQLite file: it takes no sender lock,
answers while digests are planned and sent, and what readers do lands in the same database."""

from __future__ import annotations

import email
import json
import os
import re
import signal
import socket
from pathlib import Path

import httpx
from sqlalchemy import func, select

from digest import store
from tests.helpers import papers_json
from tests.test_scheduler_process import digest, wait_for

READERS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(tmp_path: Path, port: int) -> Path:
    papers = [{"title": f"Mamba variant {i}", "summary": f"A state space model, number {i}."} for i in range(30)]
    (tmp_path / "today.json").write_text(json.dumps(papers_json(papers)))
    subs = "".join(f'[[subscribers]]\nemail = "r{i}@example.org"\nkeywords = ["mamba"]\n' for i in range(READERS))
    config = tmp_path / "digest.toml"
    config.write_text(
        f"""
database_url = "sqlite:///digest.db"
[schedule]
send_at = "00:00"
[delivery]
maildir = "mail"
[web]
base_url = "http://127.0.0.1:{port}"
[[sources]]
name = "today"
type = "file"
path = "today.json"
{subs}"""
    )
    return config


def _text_part(data: bytes) -> bytes:
    for part in email.message_from_bytes(data).walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("no text part")


def _sent(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "mail" / "new"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_serve_answers_beside_a_running_scheduler_on_one_sqlite_file(tmp_path: Path) -> None:
    port = _free_port()
    config = _write(tmp_path, port)
    env = {**os.environ, "DIGEST_WORKERS": "0"}
    server = digest(config, "serve", "--port", str(port), env=env)
    runner = None
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:

            def up() -> bool:
                assert server.poll() is None, server.communicate()
                try:
                    return client.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up)
            runner = digest(config, "run", "--tick", "1", env=env)  # the sender lock is free: serve holds none
            wait_for(lambda: len(_sent(tmp_path)) >= 5 or runner.poll() is not None)
            assert runner.poll() is None, runner.communicate()
            recorded = pages = 0
            done: set[str] = set()
            while len(_sent(tmp_path)) < READERS or recorded < 20:
                for path in _sent(tmp_path)[:60]:
                    if path.name in done:
                        continue
                    done.add(path.name)
                    text = _text_part(path.read_bytes())
                    more = re.search(rb"^More like this: " + re.escape(base.encode()) + rb"(\S+)", text, re.M)
                    prefs = re.search(re.escape(base.encode()) + rb"(/p/\S+)", text)
                    assert more and prefs
                    assert client.get(prefs.group(1).decode()).status_code == 200
                    reply = client.post(more.group(1).decode(), data={"do": "record"})
                    assert reply.status_code == 200, reply.text
                    recorded += 1
                    pages += 1
                assert runner.poll() is None and server.poll() is None
                if len(done) >= 60 and len(_sent(tmp_path)) < READERS:
                    wait_for(lambda: len(_sent(tmp_path)) >= READERS, timeout=120)
            assert pages >= 20
            runner.send_signal(signal.SIGTERM)
            _, err = runner.communicate(timeout=60)
            assert runner.returncode == 0, err
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=60)
        engine = store.open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
        with engine.connect() as conn:
            feedback = conn.execute(select(func.count()).select_from(store.feedback_t)).scalar_one()
            sent = conn.execute(
                select(func.count()).select_from(store.delivery_t).where(store.delivery_t.c.status == "sent")
            ).scalar_one()
        assert feedback == recorded and sent == READERS
    finally:
        for proc in (runner, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
