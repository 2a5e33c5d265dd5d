"""Health when the store or broker is down, and a graceful shutdown under load that
loses no stored event and flushes every one of them to the broker."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from brokers.file import FileEventBroker
from eventstore.factory import create_tracker_store
from eventstore.server import ServerSettings
from eventstore.stores.base import EventQuery
from eventstore.testing import new_id, session_start, turn, user
from tests.http.conftest import LiveServer, Running
from tests.http.sse_client import SseStream
from tests.proxy import TcpProxy


def test_store_outage_is_503_json_and_health_says_so(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        url = postgres_url.replace(f"{parts.hostname}:{parts.port}", proxy.address, 1)
        store = create_tracker_store({"type": "sql", "url": url, "pool_timeout": 2})
        server = LiveServer(store, ServerSettings())
        try:
            with server.client() as client:
                cid = new_id("outage")
                assert client.get("/health").status_code == 200
                ok = client.post(f"/conversations/{cid}/tracker/events", json=session_start())
                assert ok.status_code == 200
                proxy.cut()
                health = client.get("/health")
                assert health.status_code == 503
                assert health.json()["store"]["ok"] is False
                down = client.post(f"/conversations/{cid}/tracker/events", json=user("lost?"))
                assert down.status_code == 503
                assert down.json()["reason"] == "ServiceUnavailable"
                assert "Traceback" not in down.text
                # where the database lives is for the server log, not for clients
                database = parts.path.strip("/")
                for body in (down.text, health.text):
                    assert database not in body and proxy.address not in body
                proxy.restore()
                deadline = time.monotonic() + 20
                while client.get("/health").status_code != 200:
                    assert time.monotonic() < deadline, "the store never came back"
                    time.sleep(0.2)
                tracker = client.get(f"/conversations/{cid}/tracker").json()
                assert [e["event"] for e in tracker["events"]][-1] == "action"
        finally:
            server.stop()


def test_broker_not_ready_makes_health_503(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    broker = FileEventBroker(tmp_path / "missing-dir" / "events.log")
    store = create_tracker_store({"type": "in_memory"}, broker)
    server = LiveServer(store, ServerSettings())
    try:
        with server.client() as client:
            health = client.get("/health")
            assert health.status_code == 503
            assert health.json()["broker"] == {"type": "FileEventBroker", "ok": False}
            assert health.json()["store"]["ok"] is True
    finally:
        server.stop()


def test_sigterm_under_load_keeps_every_acknowledged_event(
    tmp_path: Path, running: list[Running]
) -> None:
    db = tmp_path / "events.db"
    log = tmp_path / "broker.jsonl"
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        f"tracker_store:\n  type: sql\n  url: sqlite:///{db}\n"
        f"event_broker:\n  type: file\n  path: {log}\n"
    )
    run = Running("--endpoints", str(endpoints))
    running.append(run)
    acknowledged: dict[str, int] = {}
    #: Events of the one request per writer that got no answer (cut by the shutdown).
    unanswered: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()
    started = threading.Barrier(5)

    def writer(n: int) -> None:
        started.wait()
        cid = f"{new_id('load')}-{n}"
        with httpx.Client(base_url=run.url, timeout=30) as client:
            acknowledged.setdefault(cid, 0)
            for i in range(1000):
                body = session_start() + turn(i) if i == 0 else turn(i)
                try:
                    response = client.post(f"/conversations/{cid}/tracker/events", json=body)
                except httpx.TransportError:
                    # The server stopped accepting, or closed this connection: whether or
                    # not the request was processed, it must be all or nothing.
                    with lock:
                        unanswered[cid] = len(body)
                    return
                if response.status_code != 200:
                    with lock:
                        failures.append(response.text)
                    return
                with lock:
                    acknowledged[cid] = int(response.headers["etag"].strip('"'))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    deadline = time.monotonic() + 60
    while sum(acknowledged.values()) < 100:  # stop while the writers are busy
        assert not failures, failures
        if time.monotonic() > deadline:
            run.stop()
            pytest.fail(f"the writers stored too little in 60 s:\n{run.output}")
        time.sleep(0.01)
    assert run.stop() == 0
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert "store closed" in run.output

    store = create_tracker_store({"type": "sql", "url": f"sqlite:///{db}"})
    try:
        for cid, version in acknowledged.items():
            # Every acknowledged append is stored; an unanswered one wholly or not at all.
            assert store.version(cid) in (version, version + unanswered.get(cid, 0))
        stored = sum(store.version(cid) for cid in acknowledged)
    finally:
        store.close()
    published = [json.loads(line) for line in log.read_text().splitlines()]
    # Every stored event reached the broker before the process exited, each once.
    assert len(published) == stored
    assert len({(m["sender_id"], m["seq"]) for m in published}) == stored


def test_a_stored_append_whose_read_back_fails_says_it_was_stored() -> None:
    """A store that fails right after the append: 503, but the body says the events are
    stored (and at which version), so the client does not send them twice."""
    from eventstore.errors import BackendUnavailable
    from eventstore.stores.memory import InMemoryTrackerStore
    from eventstore.tracker import Tracker

    class ReadsFailStore(InMemoryTrackerStore):
        def retrieve(self, sender_id: str) -> Tracker | None:
            raise BackendUnavailable("the database went away")

    server = LiveServer(ReadsFailStore(), ServerSettings())
    try:
        cid = new_id("unread")
        with server.client() as client:
            response = client.post(f"/conversations/{cid}/tracker/events", json=user("hi"))
        assert response.status_code == 503
        assert response.json()["details"] == {"stored": True, "version": 4}
        assert "do not send them again" in response.json()["message"]
        assert server.store.version(cid) == 4
    finally:
        server.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_ends_open_event_streams_and_long_polls_at_once(
    tmp_path: Path, workers: int
) -> None:
    """An open stream does not hold the shutdown for ``--graceful-timeout`` (here 600 s).

    The stream and the long-poll end cleanly (no cut chunk), the process exits 0, and a
    client resuming with ``Last-Event-ID`` against the restarted service misses nothing.
    """
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: sql\n  url: sqlite:///{tmp_path / 'e.db'}\n")
    args = ("--endpoints", str(endpoints), "--graceful-timeout", "600")
    run = Running(*args, "--workers", str(workers))
    cid = new_id("stop")
    seen: list[dict[str, Any]] = []
    ended: list[str] = []
    polled: list[int] = []
    try:
        with httpx.Client(base_url=run.url, timeout=120) as client:
            first = client.post(f"/conversations/{cid}/tracker/events", json=turn(0))
            stored = int(first.headers["etag"].strip('"'))
            stream = SseStream(client, params={"sender_id": cid})

            def follow() -> None:
                try:
                    while True:
                        seen.append(stream.next())
                except AssertionError as exc:  # the stream ended, with a whole message last
                    ended.append(str(exc))
                except httpx.HTTPError as exc:
                    ended.append(f"cut: {exc!r}")

            def long_poll() -> None:
                with httpx.Client(base_url=run.url, timeout=120) as poller:
                    after = 10**9  # nothing there yet: the request waits
                    params = {"after": after, "wait": 60}
                    polled.append(poller.get("/events", params=params).status_code)

            threads = [threading.Thread(target=follow), threading.Thread(target=long_poll)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while len(seen) < stored and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(seen) == stored, run.output
            time.sleep(0.5)  # the long-poll is waiting by now
            run.proc.send_signal(signal.SIGTERM)
            # with the streams holding it, this would wait the whole graceful timeout
            code = run.proc.wait(60)
            for thread in threads:
                thread.join(30)
            stream.close()
    finally:
        run.stop()
    assert code == 0, run.output
    assert ended == ["the event stream ended"]
    assert polled == [200]

    again = Running(*args)
    try:
        with httpx.Client(base_url=again.url, timeout=30) as client:
            second = client.post(f"/conversations/{cid}/tracker/events", json=turn(1))
            added = int(second.headers["etag"].strip('"')) - stored
            headers = {"Last-Event-ID": str(seen[-1]["id"])}
            with SseStream(client, params={"sender_id": cid}, headers=headers) as resumed:
                rest = resumed.take(added)
    finally:
        again.stop()
    assert [m["data"] for m in seen + rest] == [
        m["data"] for m in _all_messages(tmp_path / "e.db", cid)
    ]


def _all_messages(db: Path, cid: str) -> list[dict[str, Any]]:
    """Every event of ``cid`` as the feed gives it, read with the Python API."""
    store = create_tracker_store({"type": "sql", "url": f"sqlite:///{db}"})
    try:
        return [{"data": e.as_message()} for e in store.query(EventQuery(sender_id=cid))]
    finally:
        store.close()
