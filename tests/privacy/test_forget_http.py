"""HTTP DELETE erases like ``eventstore forget``: tombstone, audit line naming the caller."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from eventstore.endpoints import load_endpoints
from eventstore.factory import create_from_endpoints
from eventstore.relay import broker_of
from eventstore.server import ServerSettings, routes
from tests.http.conftest import LiveServer
from tests.privacy.conftest import SwitchBroker
from tests.privacy.conversation import personal_events


def test_http_delete_publishes_a_tombstone_and_audits_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints = tmp_path / "endpoints.yml"
    audit = tmp_path / "audit.jsonl"
    endpoints.write_text(
        yaml.safe_dump(
            {
                "tracker_store": {"type": "sql", "url": f"sqlite:///{tmp_path / 'e.db'}"},
                "event_broker": {"type": "tests.privacy.conftest.SwitchBroker"},
                "privacy": {"audit_file": str(audit)},
            }
        )
    )
    store = create_from_endpoints(load_endpoints(endpoints))
    broker = broker_of(store)
    assert isinstance(broker, SwitchBroker)
    store.append("alice", personal_events())
    store.append("bob", personal_events())
    settings = ServerSettings(endpoints=str(endpoints), auth_token="s3cret")
    server = LiveServer(store, settings)
    try:
        with server.client(headers={"Authorization": "Bearer s3cret"}) as client:
            response = client.delete("/conversations/alice")
            assert response.status_code == 200, response.text
            assert response.json() == {"sender_id": "alice", "deleted_events": 8}
            assert broker.messages[-1]["event"] == "conversation_deleted"
            assert broker.messages[-1]["sender_id"] == "alice"

            broker.up = False
            monkeypatch.setattr(routes, "TOMBSTONE_TIMEOUT", 0.2)
            response = client.delete("/conversations/bob")
            assert response.status_code == 503
            assert "deleted" in response.json()["message"]
            assert "repeat the DELETE" in response.json()["message"]
            assert store.version("bob") == 0
    finally:
        broker.up = True
        server.stop()
    assert [m["event"] for m in broker.messages if m["sender_id"] == "bob"][-1] == (
        "conversation_deleted"
    ), "the server kept retrying the tombstone and published it before closing"
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(a["sender_id"], a["requested_by"], a["deleted_events"]) for a in lines] == [
        ("alice", "http:admin", 8),
        ("bob", "http:admin", 8),
    ]
