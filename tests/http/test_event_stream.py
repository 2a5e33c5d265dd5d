"""``GET /events/stream`` (Server-Sent Events) and the long-poll of ``GET /events``.

Real uvicorn servers, real HTTP (httpx streaming). The stream must deliver every event in
position order while others write, resume after ``Last-Event-ID`` with no gap and no
duplicate, keep idle connections alive, respect auth, refuse what it cannot serve with a
clear 4xx, and end (no stream left open on the server) when the client hangs up.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge

from eventstore.server import ServerSettings
from eventstore.server.sse import event_stream
from eventstore.stores.base import EventQuery
from eventstore.stores.memory import InMemoryTrackerStore
from eventstore.testing import new_id, user
from tests.http.conftest import LiveServer
from tests.http.sse_client import SseStream
from tests.http.test_auth import SECRET, bearer, jwt_for

FAST = {"feed_poll_interval": 0.05}
WRITERS = 4
PER_WRITER = 10


def feed(server: LiveServer, after: int, sender_id: str | None = None) -> list[dict[str, Any]]:
    """What the Python API says the feed after ``after`` is (messages as the API sends)."""
    if sender_id is not None:
        query = EventQuery(sender_id=sender_id, after_position=after)
        return [e.as_message() for e in server.store.query(query)]
    batches = server.store.subscribe(after=after, follow=False)
    return [e.as_message() for b in batches for e in b.events]


def head(server: LiveServer, sender_id: str) -> int:
    """Store one event for ``sender_id``; its position (the feed from here is the test's)."""
    server.store.append(sender_id, [user("marker")])
    (event,) = server.store.query(EventQuery(sender_id=sender_id))
    assert event.position is not None
    return event.position


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def test_stream_delivers_every_event_in_position_order_under_concurrent_writers(
    backend: str, start_server: Callable[..., LiveServer]
) -> None:
    server = start_server(backend, **FAST)
    start = head(server, new_id("start"))
    ids = [new_id(f"w{n}") for n in range(WRITERS)]

    def write(n: int) -> None:
        for i in range(PER_WRITER):
            server.store.append(ids[(n + i) % WRITERS], [user(f"{n}-{i}")])

    with server.client() as client, SseStream(client, params={"after": start}) as stream:
        writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
        for thread in writers:
            thread.start()
        received = stream.take(WRITERS * PER_WRITER)
        for thread in writers:
            thread.join()
    assert [m["data"] for m in received] == feed(server, start)
    positions = [m["data"]["position"] for m in received]
    assert positions == sorted(set(positions))  # position order, no duplicate
    assert [m["id"] for m in received] == [str(p) for p in positions]
    assert {m["event"] for m in received} == {"message"}
    assert stream.retry is not None and stream.retry > 0


def test_reconnect_with_last_event_id_resumes_without_gap_or_duplicate(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server("sqlite", **FAST)
    cid = new_id("resume")
    server.store.append(cid, [user(f"first {i}") for i in range(6)])
    params = {"sender_id": cid, "after": 0}
    with server.client() as client:
        with SseStream(client, params=params) as stream:
            before = stream.take(4)
        server.store.append(cid, [user(f"later {i}") for i in range(3)])
        # EventSource reconnects to the same URL (after=0) with the last id in the header:
        # the header wins, so nothing is delivered twice
        headers = {"Last-Event-ID": before[-1]["id"]}
        with SseStream(client, params=params, headers=headers) as stream:
            after = stream.take(5)
    assert [m["data"] for m in before + after] == feed(server, 0, cid)
    assert [m["data"]["text"] for m in after] == ["first 4", "first 5"] + [
        f"later {i}" for i in range(3)
    ]


def test_filters_apply_and_idle_streams_get_keep_alive_comments(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server("memory", **FAST)
    cid = new_id("filters")
    with server.client() as client:
        params = {"sender_id": cid, "type_name": "user", "intent": "buy", "heartbeat": 1}
        with SseStream(client, params=params) as stream:
            assert stream.next_comment() == "keep-alive"  # nothing matches yet
            server.store.append(new_id("other"), [user("elsewhere", intent="buy")])
            hi = {"event": "action", "name": "utter_hi"}
            server.store.append(cid, [user("hello"), hi, user("1 pizza", "buy")])
            message = stream.next()
    assert (message["data"]["sender_id"], message["data"]["text"]) == (cid, "1 pizza")
    assert message["data"] == feed(server, 0, cid)[2]


def test_bad_parameters_and_headers_are_a_clear_400(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server("memory")
    with server.client() as client:
        cases = [
            ({"type": "user"}, {}, "type", "did you mean 'type_name'?"),
            ({"after": -1}, {}, "after", "after"),
            ({"heartbeat": 0}, {}, "heartbeat", "heartbeat"),
            ({}, {"Last-Event-ID": "12abc"}, "Last-Event-ID", "must be a position"),
            ({}, {"Last-Event-ID": str(2**63)}, "Last-Event-ID", "must be a position"),
        ]
        for params, headers, field, words in cases:
            response = client.get("/events/stream", params=params, headers=headers)
            assert response.status_code == 400, (params, headers)
            assert response.json()["details"]["field"] == field
            assert words in response.json()["message"]
        refused = client.get("/events", params={"wait": 61})
        assert refused.status_code == 400
        assert refused.json()["details"]["field"] == "wait"


def test_a_store_without_positions_is_refused_with_400() -> None:
    class PositionlessStore(InMemoryTrackerStore):
        has_positions = False

    server = LiveServer(PositionlessStore(), ServerSettings())
    try:
        with server.client() as client:
            stream = client.get("/events/stream")
            polled = client.get("/events", params={"wait": 5})
    finally:
        server.stop()
    assert stream.status_code == polled.status_code == 400
    assert stream.json()["details"]["field"] == "positions"
    assert polled.json()["details"]["field"] == "wait"
    for response in (stream, polled):
        assert "PositionlessStore has no global positions" in response.json()["message"]


def test_a_jwt_user_streams_only_their_own_conversation(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server("memory", jwt_secret=SECRET, **FAST)
    alice, bob = new_id("alice"), new_id("bob")
    server.store.append(bob, [user("bob's")])
    server.store.append(alice, [user("alice's")])
    token = bearer(jwt_for("user", alice))
    with server.client() as client:
        assert client.get("/events/stream").status_code == 401
        for params in ({}, {"sender_id": bob}):
            refused = client.get("/events/stream", params=params, headers=token)
            assert refused.status_code == 403
        with SseStream(client, params={"sender_id": alice}, headers=token) as stream:
            (message,) = stream.take(1)
            server.store.append(bob, [user("bob again")])
            server.store.append(alice, [user("alice again")])
            assert stream.next()["data"]["text"] == "alice again"
    assert message["data"]["text"] == "alice's"


def test_hanging_up_ends_the_stream_on_the_server(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server("memory", **FAST)
    server.store.append(new_id("hangup"), [user("hi")])
    with server.client() as client:
        streams = [SseStream(client, params={"heartbeat": 1}) for _ in range(3)]
        for stream in streams:
            stream.next()
        assert metric(client, "eventstore_event_streams_open") == 3
        for stream in streams:
            stream.close()
        deadline = time.monotonic() + 10
        while metric(client, "eventstore_event_streams_open") > 0:
            if time.monotonic() > deadline:
                pytest.fail("streams still open on the server 10 s after the clients left")
            time.sleep(0.05)
        # the server still answers: no thread or connection is stuck
        assert client.get("/events", params={"limit": 1}).status_code == 200


def test_long_poll_answers_with_the_first_event_stored_while_it_waits(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server("sqlite", **FAST)
    cid = new_id("longpoll")
    start = head(server, cid)
    params: dict[str, Any] = {"sender_id": cid, "after": start}
    with server.client() as client:
        empty = client.get("/events", params={**params, "wait": 0.2})
        assert empty.json() == {"events": [], "next_cursor": None}
        answers: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: answers.append(client.get("/events", params={**params, "wait": 30}))
        )
        waiting.start()
        time.sleep(0.3)  # let the request start waiting (the result holds either way)
        server.store.append(cid, [user("news")])
        waiting.join()
        lines = client.get("/events", params={**params, "wait": 5, "format": "jsonl"})
    (event,) = answers[0].json()["events"]
    assert event == feed(server, start, cid)[0]
    assert event["text"] == "news"
    assert [json.loads(line) for line in lines.text.splitlines()] == [event]


def test_catch_up_reads_batch_after_batch_and_loses_nothing() -> None:
    """A log longer than a batch comes out whole: the stream reads batches back to back."""
    store = InMemoryTrackerStore()
    for n in range(7):
        store.append(new_id("batch"), [user(f"{n}-{i}") for i in range(3)])
    expected = [e.as_message() for b in store.subscribe(follow=False) for e in b.events]
    registry = CollectorRegistry()
    gauge = Gauge("streams", "open streams", registry=registry)

    async def read() -> list[dict[str, Any]]:
        body = event_stream(
            store,
            EventQuery(),
            2,
            heartbeat=1,
            poll_interval=0.01,
            open_streams=gauge,
            batch_size=4,
        )
        messages: list[dict[str, Any]] = []
        async for chunk in body:
            for block in chunk.decode().split("\n\n"):
                if block.startswith("id: "):
                    messages.append(json.loads(block.split("\ndata: ", 1)[1]))
            if len(messages) >= len(expected) - 2:
                break
        await body.aclose()
        return messages

    # in a thread of its own: an earlier test may leave this thread marked as inside a loop
    result: list[list[dict[str, Any]]] = []
    runner = threading.Thread(target=lambda: result.append(anyio.run(read)))
    runner.start()
    runner.join(30)
    assert result == [expected[2:]]
    assert registry.get_sample_value("streams") == 0
