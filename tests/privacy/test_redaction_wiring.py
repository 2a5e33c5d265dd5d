"""Redaction wired from endpoints.yml: publish-only keeps the store whole, store keeps nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eventstore.endpoints import parse_endpoints
from eventstore.factory import create_from_endpoints
from eventstore.privacy import keyed_hash
from eventstore.relay import relay_of
from tests.privacy.consumers import rabbit_messages
from tests.privacy.conversation import HASH_KEY, PHONE, holds_secret, personal_events
from tests.servers.rabbitmq import RabbitTopology

RULES = [
    {"detectors": ["email", "phone", "credit_card", "iban"], "action": "hash"},
    {"entities": ["email", "phone", "card"], "slots": ["email", "phone", "card"], "action": "hash"},
]


def endpoints_text(db: Path, topology: RabbitTopology, apply: str) -> str:
    return yaml.safe_dump(
        {
            "tracker_store": {"type": "sql", "url": f"sqlite:///{db}"},
            "event_broker": topology.section(),
            "privacy": {
                "redaction": {"apply": apply, "hash_key_env": "ES_PRIVACY_KEY", "rules": RULES}
            },
        }
    )


def run_conversation(text: str) -> list[dict[str, Any]]:
    """Store the personal conversation, publish it all; return what the store holds."""
    store = create_from_endpoints(parse_endpoints(text))
    try:
        store.append("alice", personal_events())
        assert relay_of(store).stop(20.0), "the relay did not publish everything"
        stored = store.read_all("alice")
    finally:
        store.close()
    return stored


@pytest.fixture(autouse=True)
def hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_PRIVACY_KEY", HASH_KEY)


@pytest.mark.parametrize("apply", ["publish", "store"])
def test_broker_messages_never_hold_personal_data(
    tmp_path: Path, rabbit_topology: RabbitTopology, apply: str
) -> None:
    db = tmp_path / "events.db"
    stored = run_conversation(endpoints_text(db, rabbit_topology, apply))
    host, port, queue = rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[0]
    published = rabbit_messages(host, port, queue, len(personal_events()))
    assert len(published) == len(personal_events())
    assert not holds_secret(published)
    assert [m["seq"] for m in published] == list(range(1, 9))
    original = personal_events()
    for message, event in zip(published, original, strict=True):
        assert message["sender_id"] == "alice"
        assert message["timestamp"] == event["timestamp"]
        assert message["event"] == event["event"]
    assert published[1]["parse_data"]["intent"]["name"] == "inform"
    assert published[3]["value"] == keyed_hash(PHONE, HASH_KEY.encode())
    if apply == "publish":
        assert stored == original, "publish-only redaction keeps the store's events whole"
    else:
        assert not holds_secret(stored)
        assert [m["sender_id"] for m in published] == ["alice"] * 8
        assert stored == [
            {k: v for k, v in m.items() if k not in ("sender_id", "seq", "position")}
            for m in published
        ]
        for secret in ("jane.doe", "4111", "1234567"):
            assert secret.encode() not in db.read_bytes(), "nothing personal in the file"


def test_eventstore_run_says_what_privacy_does(
    tmp_path: Path, rabbit_topology: RabbitTopology
) -> None:
    from eventstore.server import ServerSettings
    from eventstore.server.serve import startup_lines

    sections = yaml.safe_load(endpoints_text(tmp_path / "e.db", rabbit_topology, "publish"))
    sections["retention"] = {"days": 30, "interval_minutes": 15}
    path = tmp_path / "endpoints.yml"
    path.write_text(yaml.safe_dump(sections))
    store = create_from_endpoints(parse_endpoints(path.read_text()))
    try:
        lines = startup_lines(ServerSettings(endpoints=str(path)), store, 5005)
    finally:
        store.close()
    assert "event broker: PikaEventBroker" in "\n".join(lines)
    assert "privacy: 2 redaction rule(s) on broker messages" in lines
    assert "retention: delete after 30 days, every 15 min" in lines
