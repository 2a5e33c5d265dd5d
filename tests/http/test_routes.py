"""Every route over real HTTP, on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from eventstore.testing import action, bot, new_id, session_start, turn, user
from tests.http.conftest import LiveServer

TRACKER_KEYS = {
    "sender_id",
    "slots",
    "latest_message",
    "latest_event_time",
    "followup_action",
    "paused",
    "events",
    "latest_input_channel",
    "active_loop",
    "latest_action",
    "latest_action_name",
}


def names(events: list[dict[str, Any]]) -> list[str]:
    """``type:name`` of each event, for readable comparisons."""
    return [f"{e['event']}:{e.get('name') or e.get('text') or ''}" for e in events]


def post(client: httpx.Client, cid: str, body: Any, **kwargs: Any) -> httpx.Response:
    return client.post(f"/conversations/{cid}/tracker/events", json=body, **kwargs)


def test_unknown_conversation_is_an_empty_tracker_and_is_not_stored(
    server: LiveServer, client: httpx.Client
) -> None:
    cid = new_id("unknown")
    response = client.get(f"/conversations/{cid}/tracker")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TRACKER_KEYS
    assert body["sender_id"] == cid
    # Rasa 3.6's fresh tracker, key for key (slots depend on the domain).
    assert {k: v for k, v in body.items() if k != "slots"} == {
        "sender_id": cid,
        "latest_message": {
            "intent": {},
            "entities": [],
            "text": None,
            "message_id": None,
            "metadata": {},
        },
        "latest_event_time": None,
        "followup_action": "action_listen",
        "paused": False,
        "events": [],
        "latest_input_channel": None,
        "active_loop": {},
        "latest_action": {},
        "latest_action_name": None,
    }
    assert response.headers["etag"] == '"0"'
    assert not server.store.exists(cid)


def test_first_post_starts_a_session_then_appends(server: LiveServer, client: httpx.Client) -> None:
    cid = new_id("post")
    response = post(client, cid, user("hi", intent="greet"))
    assert response.status_code == 200, response.text
    tracker = response.json()
    assert names(tracker["events"])[-1] == "user:hi"
    assert tracker["latest_message"]["intent"]["name"] == "greet"
    assert response.headers["etag"] == '"4"'
    stored = server.store.read_all(cid)
    assert names(stored) == [
        "action:action_session_start",
        "session_started:",
        "action:action_listen",
        "user:hi",
    ]
    # A second POST appends only its own events.
    response = post(client, cid, [action("utter_greet"), bot("hello")])
    assert response.status_code == 200
    assert response.headers["etag"] == '"6"'
    assert names(server.store.read_all(cid))[4:] == ["action:utter_greet", "bot:hello"]
    assert response.json()["latest_action_name"] == "utter_greet"


def test_post_beginning_with_a_session_start_is_stored_as_sent(
    server: LiveServer, client: httpx.Client
) -> None:
    cid = new_id("own-session")
    body = session_start() + turn(1)
    response = post(client, cid, body)
    assert response.status_code == 200, response.text
    assert names(server.store.read_all(cid)) == names(body)


def test_get_tracker_replays_every_session_and_honours_include_events_and_until(
    server: LiveServer, client: httpx.Client
) -> None:
    cid = new_id("sessions")
    first = [
        *session_start(ts=100.0),
        user("first", ts=101.0),
        {"event": "slot", "name": "city", "value": "Berlin", "timestamp": 102.0},
    ]
    second = [*session_start(ts=200.0), user("second", ts=201.0)]
    assert post(client, cid, first + second).status_code == 200

    full = client.get(f"/conversations/{cid}/tracker", params={"include_events": "all"})
    assert full.status_code == 200
    assert len(full.json()["events"]) == len(first) + len(second)
    assert full.json()["latest_message"]["text"] == "second"
    assert full.headers["etag"] == f'"{len(first) + len(second)}"'

    applied = client.get(f"/conversations/{cid}/tracker", params={"include_events": "APPLIED"})
    applied_texts = [e.get("text") for e in applied.json()["events"]]
    assert "second" in applied_texts
    assert "first" not in applied_texts  # session_started empties the applied events

    none = client.get(f"/conversations/{cid}/tracker", params={"include_events": "NONE"})
    assert none.json()["events"] is None

    past = client.get(
        f"/conversations/{cid}/tracker", params={"include_events": "ALL", "until": 102.0}
    )
    assert past.status_code == 200
    assert len(past.json()["events"]) == len(first)
    assert past.json()["latest_message"]["text"] == "first"
    assert past.json()["slots"].get("city") == "Berlin"


def test_if_match_and_expected_version_give_409_on_conflict(
    server: LiveServer, client: httpx.Client
) -> None:
    cid = new_id("conflict")
    created = post(client, cid, session_start())
    version = created.headers["etag"]
    assert version == '"3"'

    ok = post(client, cid, user("one"), headers={"If-Match": version})
    assert ok.status_code == 200
    assert ok.headers["etag"] == '"4"'

    stale = post(client, cid, user("two"), headers={"If-Match": version})
    assert stale.status_code == 409
    body = stale.json()
    assert body["status"] == "failure"
    assert body["code"] == 409
    assert body["reason"] == "Conflict"
    assert body["details"]["expected_version"] == 3
    assert body["details"]["actual_version"] == 4

    stale_query = post(client, cid, user("two"), params={"expected_version": 3})
    assert stale_query.status_code == 409
    assert server.store.version(cid) == 4

    fresh_query = post(client, cid, user("two"), params={"expected_version": 4})
    assert fresh_query.status_code == 200
    assert server.store.version(cid) == 5

    # On a new conversation, version 0 is the right expectation (session start included).
    new = new_id("conflict-new")
    assert post(client, new, user("x"), headers={"If-Match": '"0"'}).status_code == 200
    assert post(client, new, user("y"), headers={"If-Match": '"0"'}).status_code == 409


def test_put_replaces_the_whole_log(server: LiveServer, client: httpx.Client) -> None:
    cid = new_id("put")
    assert post(client, cid, session_start() + turn(1) + turn(2)).status_code == 200
    before = server.store.version(cid)
    replacement = [*session_start(ts=50.0), user("only", ts=51.0)]

    stale = client.put(
        f"/conversations/{cid}/tracker/events", json=replacement, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 409
    assert server.store.version(cid) == before

    response = client.put(
        f"/conversations/{cid}/tracker/events",
        json=replacement,
        params={"include_events": "ALL"},
        headers={"If-Match": f'"{before}"'},
    )
    assert response.status_code == 200, response.text
    assert names(response.json()["events"]) == names(replacement)
    assert response.headers["etag"] == f'"{len(replacement)}"'
    assert names(server.store.read_all(cid)) == names(replacement)
    assert server.store.version(cid) == len(replacement)
    tracker = client.get(f"/conversations/{cid}/tracker", params={"include_events": "ALL"})
    assert names(tracker.json()["events"]) == names(replacement)

    emptied = client.put(f"/conversations/{cid}/tracker/events", json=[])
    assert emptied.status_code == 200
    assert not server.store.exists(cid)


def test_delete_removes_the_conversation(server: LiveServer, client: httpx.Client) -> None:
    cid = new_id("delete")
    assert post(client, cid, session_start() + turn(1)).status_code == 200
    response = client.delete(f"/conversations/{cid}")
    assert response.status_code == 200
    assert response.json() == {"sender_id": cid, "deleted_events": 7}
    assert not server.store.exists(cid)
    assert client.get(f"/conversations/{cid}/tracker").json()["events"] == []
    again = client.delete(f"/conversations/{cid}")
    assert again.json()["deleted_events"] == 0


def test_conversations_are_listed_in_cursor_pages(server: LiveServer, client: httpx.Client) -> None:
    prefix = new_id("list")
    ids = [f"{prefix}-{i}" for i in range(5)]
    for cid in ids:
        assert post(client, cid, session_start()).status_code == 200
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/conversations", params=params)
        assert page.status_code == 200
        body = page.json()
        assert len(body["conversations"]) <= 2
        seen.extend(body["conversations"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    assert [s for s in seen if s.startswith(prefix)] == ids
    bad = client.get("/conversations", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert bad.json()["details"]["field"] == "cursor"


def test_events_query_filters_pages_and_streams(server: LiveServer, client: httpx.Client) -> None:
    cid = new_id("events")
    other = new_id("events-other")
    events = [
        *session_start(ts=1000.0),
        user("hello", intent="greet", ts=1001.0),
        action("utter_greet", ts=1002.0),
        user("bye", intent="goodbye", ts=1003.0),
        action("utter_bye", ts=1004.0),
    ]
    assert post(client, cid, events).status_code == 200
    assert post(client, other, session_start(ts=1000.5)).status_code == 200

    def query(**params: Any) -> list[dict[str, Any]]:
        response = client.get("/events", params={"sender_id": cid, **params})
        assert response.status_code == 200, response.text
        return list(response.json()["events"])

    everything = query()
    assert [e["seq"] for e in everything] == list(range(1, 8))
    assert all(e["sender_id"] == cid for e in everything)
    assert all(isinstance(e["position"], int) for e in everything)
    assert [e["text"] for e in query(type_name="user")] == ["hello", "bye"]
    assert [e["text"] for e in query(intent="goodbye")] == ["bye"]
    assert [e["seq"] for e in query(action="utter_greet")] == [5]
    assert [e["seq"] for e in query(since=1002.0, until=1003.0)] == [5, 6]
    after = everything[3]["position"]
    assert [e["seq"] for e in query(after=after)] == [5, 6, 7]

    # Pages: follow next_cursor until it is null.
    paged: list[int] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/events", params={"sender_id": cid, **params})
        body = response.json()
        paged.extend(e["seq"] for e in body["events"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert paged == list(range(1, 8))

    # JSON lines, streamed; the other conversation is there when not filtered.
    with client.stream("GET", "/events", params={"format": "jsonl", "after": after}) as stream:
        assert stream.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in stream.iter_lines() if line]
    mine = [e["seq"] for e in lines if e["sender_id"] == cid]
    assert mine == [5, 6, 7]
    ndjson = client.get(
        "/events", params={"sender_id": other}, headers={"Accept": "application/x-ndjson"}
    )
    assert [json.loads(x)["sender_id"] for x in ndjson.text.splitlines()] == [other] * 3


def test_health_version_metrics_and_docs(server: LiveServer, client: httpx.Client) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["store"]["ok"] is True
    assert health.headers["x-eventstore-worker"].isdigit()

    version = client.get("/version").json()
    assert version["version"]
    assert version["store"] == type(server.store).__name__

    cid = new_id("metrics")
    assert post(client, cid, user("hi")).status_code == 200
    assert post(client, cid, user("hi"), headers={"If-Match": '"0"'}).status_code == 409
    text = client.get("/metrics").text
    assert 'eventstore_appends_total{operation="append"} 1.0' in text
    assert "eventstore_events_stored_total 4.0" in text
    assert "eventstore_conflicts_total 1.0" in text
    assert 'eventstore_errors_total{code="409",reason="Conflict"} 1.0' in text
    assert (
        'eventstore_http_request_duration_seconds_count{method="POST",'
        'route="/conversations/{conversation_id}/tracker/events"} 2.0'
    ) in text

    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = client.get("/openapi.json").json()
    assert "/conversations/{conversation_id}/tracker/events" in schema["paths"]
    assert {"post", "put"} <= set(
        schema["paths"]["/conversations/{conversation_id}/tracker/events"]
    )


def test_unknown_route_is_a_json_404(server: LiveServer, client: httpx.Client) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["status"] == "failure"
    assert response.json()["code"] == 404


def test_ids_with_slashes_and_unicode_are_addressable(
    server: LiveServer, client: httpx.Client
) -> None:
    cid = f"{new_id('web')}/user+1@example.org/é ü"
    response = post(client, cid, user("hi"))
    assert response.status_code == 200, response.text
    assert response.json()["sender_id"] == cid
    assert server.store.exists(cid)
    tracker = client.get(f"/conversations/{cid}/tracker")
    assert tracker.json()["sender_id"] == cid
    assert len(tracker.json()["events"]) == 4
    assert client.delete(f"/conversations/{cid}").json()["deleted_events"] == 4
    assert not server.store.exists(cid)


def test_ids_with_newlines_are_addressable(server: LiveServer, client: httpx.Client) -> None:
    """An id holding a newline (the store accepts it) reaches every conversation route."""
    cid = f"{new_id('nl')}\nline two/tracker\n"
    path = "/conversations/" + quote(cid, safe="")
    assert client.post(f"{path}/tracker/events", json=user("hi")).json()["sender_id"] == cid
    put = client.put(f"{path}/tracker/events", json=[user("one"), user("two")])
    assert put.status_code == 200, put.text
    tracker = client.get(f"{path}/tracker", params={"include_events": "ALL"})
    assert tracker.json()["sender_id"] == cid
    assert [e["text"] for e in tracker.json()["events"]] == ["one", "two"]
    assert server.store.read(cid) == tracker.json()["events"]
    assert client.delete(path).json() == {"sender_id": cid, "deleted_events": 2}
    assert not server.store.exists(cid)


def test_a_trailing_newline_never_reaches_a_shorter_id(
    server: LiveServer, client: httpx.Client
) -> None:
    """``/conversations/a/tracker%0A`` is the DELETE path of id ``a/tracker\n``, not a
    route of conversation ``a`` (a regex ``$`` matches before a final newline)."""
    cid = new_id("short")
    assert post(client, cid, user("hi")).status_code == 200
    assert client.get(f"/conversations/{cid}/tracker%0A").status_code == 405
    assert client.post(f"/conversations/{cid}/tracker/events%0A", json=user("x")).status_code == 405
    assert client.delete(f"/conversations/{cid}/tracker%0A").json()["deleted_events"] == 0
    assert len(server.store.read(cid)) == 4


def test_put_racing_posts_never_leaves_a_mixed_or_gapped_log(server: LiveServer) -> None:
    """PUTs and POSTs from several clients at once: the log is always one PUT's body
    followed by whole POSTs, with seqs 1..n (the replace is atomic on every backend)."""
    import threading

    cid = new_id("race")
    bodies = {k: [*session_start(), user(f"replaced-{k}")] for k in range(2)}
    failures: list[str] = []

    def putter(k: int) -> None:
        with server.client() as http:
            for _ in range(8):
                response = http.put(f"/conversations/{cid}/tracker/events", json=bodies[k])
                if response.status_code != 200:
                    failures.append(response.text)

    def poster(k: int) -> None:
        with server.client() as http:
            for i in range(8):
                response = post(http, cid, user(f"m-{k}-{i}"))
                if response.status_code != 200:
                    failures.append(response.text)

    threads = [threading.Thread(target=putter, args=(k,)) for k in range(2)]
    threads += [threading.Thread(target=poster, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    with server.client() as http:
        stored = http.get("/events", params={"sender_id": cid, "limit": 1000}).json()["events"]
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    head = [e.get("text") or e.get("name") or e["event"] for e in stored[:4]]
    assert head[:3] == ["action_session_start", "session_started", "action_listen"]
    assert head[3] in ("replaced-0", "replaced-1")
    assert all(e["event"] == "user" and e["text"].startswith("m-") for e in stored[4:])


def test_if_none_match_gives_304_until_the_log_moves(
    server: LiveServer, client: httpx.Client
) -> None:
    cid = new_id("poll")
    tracker = f"/conversations/{cid}/tracker"
    empty = client.get(tracker)
    assert client.get(tracker, headers={"If-None-Match": empty.headers["etag"]}).status_code == 304
    assert post(client, cid, user("hi")).status_code == 200
    moved = client.get(tracker, headers={"If-None-Match": empty.headers["etag"]})
    assert moved.status_code == 200
    assert moved.json()["latest_message"]["text"] == "hi"
    unchanged = client.get(tracker, headers={"If-None-Match": f'W/"1", {moved.headers["etag"]}'})
    assert unchanged.status_code == 304
    assert unchanged.headers["etag"] == moved.headers["etag"]
    assert unchanged.content == b""


def test_events_of_a_store_without_positions_page_by_offset() -> None:
    """A store without global positions (like a custom one) pages by offset and refuses
    ``after``, which needs positions."""
    from eventstore.server import ServerSettings
    from eventstore.stores.memory import InMemoryTrackerStore

    class PositionlessStore(InMemoryTrackerStore):
        has_positions = False

    server = LiveServer(PositionlessStore(), ServerSettings())
    try:
        cid = new_id("nopos")
        server.store.append(cid, session_start() + turn(1))
        with server.client() as client:
            seqs: list[int] = []
            cursor = None
            for _ in range(10):
                params: dict[str, Any] = {"sender_id": cid, "limit": 3}
                if cursor:
                    params["cursor"] = cursor
                body = client.get("/events", params=params).json()
                seqs.extend(e["seq"] for e in body["events"])
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            assert seqs == list(range(1, 8))
            refused = client.get("/events", params={"after": 3})
            assert refused.status_code == 400
            assert refused.json()["details"]["field"] == "after"
    finally:
        server.stop()
