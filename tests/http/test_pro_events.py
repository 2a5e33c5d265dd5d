"""Rasa Pro's event types over HTTP: appended, read back and replayed into the tracker JSON;
an unknown type is refused (400) or kept, as the store's ``unknown_events`` says."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from eventstore.server import ServerSettings
from eventstore.testing.pro import PRO_EVENTS, PRO_STACK
from tests.http.conftest import LiveServer, make_store


def test_every_pro_event_type_round_trips_over_http(client: httpx.Client) -> None:
    cid = f"pro-{uuid.uuid4().hex[:8]}"
    posted = client.put(f"/conversations/{cid}/tracker/events", json=PRO_EVENTS)
    assert posted.status_code == 200, posted.text
    tracker = client.get(f"/conversations/{cid}/tracker", params={"include_events": "ALL"})
    assert tracker.status_code == 200
    body = tracker.json()
    assert body["events"] == PRO_EVENTS
    assert body["stack"] == PRO_STACK  # the dialogue stack, as Rasa Pro's tracker JSON
    listed = client.get("/events", params={"sender_id": cid}).json()
    rows = listed["events"] if isinstance(listed, dict) else listed
    assert [
        {k: v for k, v in r.items() if k not in ("sender_id", "seq", "position")} for r in rows
    ] == PRO_EVENTS


def test_unknown_type_is_a_400_by_default_and_stored_when_kept(
    client: httpx.Client, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cid = f"new-{uuid.uuid4().hex[:8]}"
    newer = {"event": "future_thing", "timestamp": 1.5, "payload": [1]}
    refused = client.put(f"/conversations/{cid}/tracker/events", json=[newer])
    assert refused.status_code == 400 and "future_thing" in refused.text
    store = make_store("sqlite", tmp_path, request)
    store.unknown_events = "keep"
    server = LiveServer(store, ServerSettings())
    try:
        with server.client() as http:
            kept = http.put(f"/conversations/{cid}/tracker/events", json=[newer])
            assert kept.status_code == 200, kept.text
            got = http.get(f"/conversations/{cid}/tracker", params={"include_events": "ALL"})
            assert got.json()["events"] == [newer]
    finally:
        server.stop()
