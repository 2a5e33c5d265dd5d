"""Bad requests are refused with a JSON error naming the field, and store nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from eventstore.server import ServerSettings
from eventstore.testing import new_id, session_start, user
from tests.http.conftest import LiveServer, make_store

LIMIT = 4096


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgresql"])
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per backend for the whole module (every test uses fresh ids)."""
    store = make_store(str(request.param), tmp_path_factory.mktemp("bad-input"), request)
    server = LiveServer(store, ServerSettings(max_body_bytes=LIMIT))
    yield server
    server.stop()


@pytest.fixture
def http(limited: LiveServer) -> Iterator[httpx.Client]:
    with limited.client() as client:
        yield client


def assert_failure(response: httpx.Response, status: int, field: str | None, text: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "failure"
    assert body["code"] == status
    assert set(body) == {"version", "status", "message", "reason", "details", "help", "code"}
    assert body["details"].get("field") == field, body
    assert text in body["message"], body["message"]
    assert "Traceback" not in response.text


def events_path(cid: str) -> str:
    return f"/conversations/{cid}/tracker/events"


CASES: list[tuple[str, dict[str, Any], int, str | None, str]] = [
    (
        "unknown-event-type",
        {"json": [user("fine"), {"event": "telepathy"}]},
        400,
        "event",
        "unknown event type 'telepathy'",
    ),
    (
        "wrong-field-type",
        {"json": [user("fine"), {"event": "slot", "name": 5, "value": 1}]},
        400,
        "name",
        "event 1",
    ),
    ("missing-event-key", {"json": {"text": "hi"}}, 400, "event", "'event' key is missing"),
    ("not-an-object", {"json": [user("fine"), 42]}, 400, None, "must be a JSON object"),
    ("body-is-a-number", {"json": 7}, 400, "body", "event object or a list"),
    (
        "malformed-json",
        {"content": b'[{"event": "user", ', "headers": {"Content-Type": "application/json"}},
        400,
        "body",
        "not valid JSON",
    ),
    (
        "malformed-json-untyped",
        {"content": b"{nope", "headers": {"Content-Type": "text/plain"}},
        400,
        "body",
        "not valid JSON",
    ),
    (
        "empty-body",
        {"content": b"", "headers": {"Content-Type": "application/json"}},
        400,
        "body",
        "body",
    ),
    (
        "over-the-limit",
        {"json": [user("x" * LIMIT)]},
        413,
        "body",
        f"limit of {LIMIT} bytes",
    ),
    (
        "over-the-limit-chunked",
        {"chunks": [b"[", b" " * LIMIT, b"]"]},
        413,
        "body",
        f"limit of {LIMIT} bytes",
    ),
    (
        "bad-include-events",
        {"json": user("hi"), "params": {"include_events": "SOME"}},
        400,
        "include_events",
        "include_events must be one of",
    ),
    (
        "negative-expected-version",
        {"json": user("hi"), "params": {"expected_version": -1}},
        400,
        "expected_version",
        "expected_version",
    ),
    (
        "text-expected-version",
        {"json": user("hi"), "params": {"expected_version": "three"}},
        400,
        "expected_version",
        "expected_version",
    ),
    (
        "bad-if-match",
        {"json": user("hi"), "headers": {"If-Match": '"three"'}},
        400,
        "If-Match",
        "If-Match",
    ),
    (
        "if-match-superscript-digit",
        {"json": user("hi"), "headers": {"If-Match": '"\u00b2"'.encode("latin-1")}},
        400,
        "If-Match",
        "If-Match",
    ),
    (
        "if-match-disagrees",
        {"json": user("hi"), "headers": {"If-Match": '"3"'}, "params": {"expected_version": 4}},
        400,
        "expected_version",
        "disagree",
    ),
]


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize(
    ("request_kwargs", "status", "field", "text"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_write_is_refused_and_stores_nothing(
    limited: LiveServer,
    http: httpx.Client,
    method: str,
    request_kwargs: dict[str, Any],
    status: int,
    field: str | None,
    text: str,
) -> None:
    existing, fresh = new_id("bad"), new_id("bad-new")
    limited.store.append(existing, session_start())
    for cid in (existing, fresh):
        kwargs = dict(request_kwargs)
        if "chunks" in kwargs:  # a generator body: sent chunked, without Content-Length
            kwargs["content"] = iter(kwargs.pop("chunks"))
        response = http.request(method, events_path(cid), **kwargs)
        assert_failure(response, status, field, text)
    assert limited.store.version(existing) == 3
    assert not limited.store.exists(fresh)
    # The server still works after refusing.
    assert http.post(events_path(existing), json=user("ok")).status_code == 200


def test_bad_reads_name_the_parameter(limited: LiveServer, http: httpx.Client) -> None:
    cid = new_id("read")
    tracker = f"/conversations/{cid}/tracker"
    assert_failure(
        http.get(tracker, params={"include_events": "x"}), 400, "include_events", "include_events"
    )
    assert_failure(http.get(tracker, params={"until": "yesterday"}), 400, "until", "until")
    assert_failure(http.get("/events", params={"limit": 0}), 400, "limit", "limit")
    assert_failure(http.get("/events", params={"after": "x"}), 400, "after", "after")
    assert_failure(http.get("/events", params={"cursor": "@@"}), 400, "cursor", "cursor")
    assert_failure(http.get("/events", params={"format": "xml"}), 400, "format", "format")
    assert_failure(http.get("/conversations", params={"limit": 5000}), 400, "limit", "limit")
    long_id = "x" * 256
    assert_failure(http.post(events_path(long_id), json=user("hi")), 400, "sender_id", "255")
    assert not limited.store.exists(long_id)


def test_integers_past_64_bits_are_refused_naming_the_parameter(
    limited: LiveServer, http: httpx.Client
) -> None:
    """``after``, ``limit`` and cursor values past 2^63-1 are 400 on every store: no store
    column or Redis counter holds them, so the answer does not depend on the backend."""
    from eventstore.server.cursors import encode_cursor

    for value in (2**63, 2**64, 2**70):
        for name in ("after", "limit"):
            for extra in ({}, {"format": "jsonl"}):
                response = http.get("/events", params={name: str(value), **extra})
                assert_failure(response, 400, name, name)
        for kind in ("p", "o"):
            cursor = encode_cursor(kind, value)
            assert_failure(http.get("/events", params={"cursor": cursor}), 400, "cursor", "cursor")
    for forged in (True, -1, 1.5, "7", None):
        cursor = encode_cursor("p", forged)
        assert_failure(http.get("/events", params={"cursor": cursor}), 400, "cursor", "cursor")
    # the largest accepted values are answered (nothing lies past the last position)
    cid = new_id("bounds")
    limited.store.append(cid, session_start())
    top = str(2**63 - 1)
    assert http.get("/events", params={"after": top}).json() == {"events": [], "next_cursor": None}
    streamed = http.get("/events", params={"sender_id": cid, "limit": top, "format": "jsonl"})
    assert streamed.status_code == 200 and len(streamed.text.splitlines()) == 3
    last = http.get("/events", params={"cursor": encode_cursor("p", 2**63 - 1)})
    assert last.json() == {"events": [], "next_cursor": None}
