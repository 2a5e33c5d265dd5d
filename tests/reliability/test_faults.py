"""Faults: connections cut mid-append by a loopback proxy, and writers killed with SIGKILL.

An append must either complete or raise ``BackendUnavailable``, never leave part of its
events behind, and the same store object must work again once the link is back.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from eventstore import BackendUnavailable, EventQuery, create_tracker_store
from tests.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
BATCH = 3


def _through(url: str, proxy_port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy_port}"
    new = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    return urlunsplit(parts._replace(netloc=new))


def _target(config: dict[str, Any]) -> tuple[str, int] | None:
    """Host and port of the server a config talks to (None for SQLite)."""
    url = config.get("url") or config.get("endpoint_url")
    if config.get("dialect") == "sqlite" or not url:
        return None
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", int(parts.port or 0)


def _proxied(config: dict[str, Any], port: int) -> dict[str, Any]:
    """The same config, talking to the server through the proxy on ``port``."""
    out = dict(config)
    if out["type"] == "dynamo":
        out["endpoint_url"] = _through(out["endpoint_url"], port)
        out["max_attempts"] = 1
        out["read_timeout"] = 5
        return out
    out["url"] = _through(out["url"], port)
    if out["type"] == "mongod":  # talk to this address only, not the advertised member
        out["url"] += ("&" if "?" in out["url"] else "?") + "directConnection=true"
        out["server_selection_timeout_ms"] = 2000
    return out


def batch(tag: str, n: int) -> list[dict[str, Any]]:
    return [{"event": "action", "name": f"{tag}-{n}-{i}"} for i in range(BATCH)]


def assert_whole_batches(store: Any, sid: str, succeeded: set[int], tag: str) -> set[int]:
    """Every batch is stored whole or not at all; every successful one is there."""
    seqs = [e.seq for e in store.query(EventQuery(sender_id=sid))]
    assert seqs == list(range(1, len(seqs) + 1)), "gap or duplicate"
    groups: dict[int, list[int]] = defaultdict(list)
    for event in store.read(sid):
        _, n, i = event["name"].rsplit("-", 2)
        assert event["name"].startswith(tag)
        groups[int(n)].append(int(i))
    for n, parts in groups.items():
        assert parts == list(range(BATCH)), f"batch {n} is half-written: {parts}"
    assert succeeded <= set(groups), f"acknowledged batches missing: {succeeded - set(groups)}"
    return set(groups)


NETWORKED = ["postgresql", "mariadb", "redis", "mongo", "dynamo"]


@pytest.mark.parametrize("backend", NETWORKED, indirect=True)
def test_cut_connections_leave_whole_appends_and_the_store_recovers(
    backend: dict[str, Any],
) -> None:
    target = _target(backend)
    assert target is not None
    direct = create_tracker_store(backend)  # schema/table/indexes exist before the faults
    sid = f"fault-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:6]
    with TcpProxy(*target) as proxy:
        store = create_tracker_store(_proxied(backend, proxy.port))
        succeeded: set[int] = set()
        failures: list[BaseException] = []
        stop = threading.Event()

        def writer() -> None:
            n = 0
            while not stop.is_set():
                try:
                    store.append(sid, batch(tag, n))
                    succeeded.add(n)
                except BackendUnavailable:
                    time.sleep(0.01)
                except BaseException as exc:  # anything else is a bug
                    failures.append(exc)
                    return
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        for _ in range(4):  # cut mid-stream a few times, then restore
            deadline = time.monotonic() + 10
            before = len(succeeded)
            while len(succeeded) < before + 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            proxy.cut()
            time.sleep(0.2)
            proxy.restore()
        deadline = time.monotonic() + 30
        recovered_from = len(succeeded)
        while len(succeeded) < recovered_from + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(60)
        assert not failures, failures
        assert len(succeeded) >= recovered_from + 5, "the store did not recover after restore"
        # the proxied store itself works again, without a restart
        version = store.append(sid, batch(tag, 10_000))
        succeeded.add(10_000)
        assert version == direct.version(sid)
        store.close()
    assert_whole_batches(direct, sid, succeeded, tag)
    direct.close()


def test_sigkill_mid_append_leaves_whole_appends(backend: dict[str, Any]) -> None:
    store = create_tracker_store(backend)
    sid = f"kill-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:6]
    code = (
        "import json, sys\n"
        "from eventstore import create_tracker_store\n"
        "from tests.reliability.test_faults import batch\n"
        "store = create_tracker_store(json.loads(sys.argv[1]))\n"
        "n = 0\n"
        "while True:\n"
        "    store.append(sys.argv[2], batch(sys.argv[3], n))\n"
        "    print(n, flush=True)\n"
        "    n += 1\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(backend), sid, tag],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged: set[int] = set()
    for line in proc.stdout:
        acknowledged.add(int(line))
        if len(acknowledged) >= 15:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    stored = assert_whole_batches(store, sid, acknowledged, tag)
    assert len(stored) >= 15
    # the conversation takes appends again after the crash
    assert store.append(sid, batch(tag, 99_999)) == store.version(sid)
    store.close()
