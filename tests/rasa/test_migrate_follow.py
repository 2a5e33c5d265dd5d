"""``eventstore migrate --follow``: a cut-over from Rasa's Redis blobs without a write freeze.

Rasa 3.6's own RedisTrackerStore (the Rasa venv, as a subprocess) writes before and while
``eventstore migrate --follow`` runs (as a process of its own); SIGTERM ends it with the
migrate report and exit code 0, and the target then holds every event Rasa wrote.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from eventstore.factory import create_tracker_store
from tests.servers.rasa import rasa_env

WRITER = Path(__file__).parent / "rasa_side" / "redis_writer.py"
EVENTSTORE = [sys.executable, "-c", "from eventstore.cli import entrypoint; entrypoint()"]


def test_follow_copies_what_rasa_appends_until_sigterm(
    tmp_path: Path, redis_url: str, redis_prefix: str, rasa_python: Path
) -> None:
    parts = urlsplit(redis_url)
    senders = ["alice", "bob-ünïcode"]
    config = {
        "host": parts.hostname,
        "port": parts.port or 6379,
        "db": int(parts.path.strip("/") or 0),
        "key_prefix": redis_prefix,
        "senders": senders,
        "before": 3,
        "during": 8,
    }
    rasa = subprocess.Popen(
        [str(rasa_python), str(WRITER), json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=rasa_env(),
    )
    assert rasa.stdout is not None and rasa.stdin is not None
    assert rasa.stdout.readline().strip() == "ready", rasa.stderr and rasa.stderr.read()[-3000:]

    source = {"type": "redis", "layout": "rasa", "url": redis_url, "key_prefix": redis_prefix}
    target = {"type": "sql", "url": f"sqlite:///{tmp_path / 'target.db'}"}
    (tmp_path / "rasa.yml").write_text(yaml.safe_dump({"tracker_store": source}))
    (tmp_path / "es.yml").write_text(yaml.safe_dump({"tracker_store": target}))
    migration = subprocess.Popen(
        [
            *EVENTSTORE,
            "migrate",
            "--from",
            str(tmp_path / "rasa.yml"),
            "--to",
            str(tmp_path / "es.yml"),
            "--follow",
            "--interval",
            "0.1",
            "--verify",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = create_tracker_store(target)
    try:
        deadline = time.monotonic() + 120
        while min(store.version(sender) for sender in senders) < 3:  # first pass done
            assert migration.poll() is None and time.monotonic() < deadline, "no first pass"
            time.sleep(0.05)
        rasa.stdin.write("go\n")  # Rasa writes while the migration follows
        rasa.stdin.flush()
        written = json.loads(rasa.stdout.readline())
        assert rasa.wait(timeout=120) == 0
        migration.send_signal(signal.SIGTERM)
        out, err = migration.communicate(timeout=120)
    finally:
        for proc in (rasa, migration):
            if proc.poll() is None:
                proc.kill()
    assert migration.returncode == 0, err
    assert "2 conversations: 2 copied" in out and "0 mismatches" in out, out
    try:
        for sender in senders:
            events = written[sender]
            assert len(events) == 3 + 8
            assert store.read(sender) == events  # every event Rasa wrote, in Rasa's order
    finally:
        store.close()
