"""Erasure: after forget nothing of the conversation remains, consumers get a tombstone."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventstore.cli import main
from eventstore.errors import EventValidationError, TombstoneError
from eventstore.factory import create_tracker_store
from eventstore.privacy.erasure import AuditTrail, forget
from eventstore.relay import relay_of
from eventstore.stores.base import EventQuery
from tests.privacy.conftest import SwitchBroker
from tests.privacy.consumers import kafka_messages, rabbit_messages
from tests.privacy.conversation import holds_secret, personal_events
from tests.servers.rabbitmq import RabbitTopology


def test_forget_leaves_nothing_on_every_backend_and_the_tombstone_follows_the_outage(
    store_section: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = SwitchBroker()
    broker.up = False  # everything stays in the outbox until the broker is back
    store = create_tracker_store(store_section, broker)
    relay_of(store).configure(min_backoff=0.01, max_backoff=0.05, poll_interval=0.05)
    try:
        store.snapshot_every = 2
        store.append("alice", personal_events())
        store.append("bob", personal_events())
        if store.supports_snapshots:  # a snapshot of alice's tracker is stored too
            assert store.retrieve("alice") is not None
            assert store.flush_snapshots()
            assert store._read_snapshot("alice") is not None
        audit = AuditTrail(tmp_path / "audit.jsonl")
        with (
            caplog.at_level(logging.INFO, logger="eventstore.audit"),
            pytest.raises(TombstoneError, match="not confirmed") as info,
        ):
            forget(store, ["alice"], requested_by="dpo@example", audit=audit, confirm_timeout=0.2)
        assert info.value.erased == ["alice"]
        assert store.read_all("alice") == [] and store.version("alice") == 0
        if store.supports_snapshots:
            assert store._read_snapshot("alice") is None
        assert "alice" not in set(store.keys())
        assert list(store.query(EventQuery(sender_id="alice"))) == []
        assert not any(e.sender_id == "alice" for e in store.query(EventQuery()))
        if store.supports_outbox:
            assert {e.sender_id for e in store.outbox_pending(1000)} == {"bob"}
        assert store.read_all("bob") == personal_events()

        broker.up = True  # the relay publishes bob's events and alice's tombstone, no more
        assert relay_of(store).stop(20.0)
    finally:
        store.close()
    assert [m["sender_id"] for m in broker.messages].count("bob") == len(personal_events())
    alice = [m for m in broker.messages if m["sender_id"] == "alice"]
    assert len(alice) == 1
    assert alice[0]["event"] == "conversation_deleted"
    assert alice[0]["deleted_events"] == len(personal_events())
    line = json.loads((tmp_path / "audit.jsonl").read_text())
    assert line["sender_id"] == "alice" and line["requested_by"] == "dpo@example"
    assert line["deleted_events"] == len(personal_events()) and line["reason"] == "erasure"
    assert "dpo@example" in caplog.text
    assert not holds_secret(line) and not holds_secret(caplog.text)


def test_forget_checks_every_id_before_deleting_anything() -> None:
    store = create_tracker_store(None)
    store.append("alice", personal_events())
    with pytest.raises(EventValidationError):
        forget(store, ["alice", ""], requested_by="x")
    assert store.version("alice") == len(personal_events())


def endpoints_file(tmp_path: Path, broker: dict[str, Any]) -> Path:
    path = tmp_path / "endpoints.yml"
    db = tmp_path / "events.db"
    audit = tmp_path / "audit.jsonl"
    path.write_text(
        yaml.safe_dump(
            {
                "tracker_store": {"type": "sql", "url": f"sqlite:///{db}"},
                "event_broker": broker,
                "privacy": {"audit_file": str(audit)},
            }
        )
    )
    return path


def fill_and_forget(endpoints: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Store three conversations, publish them, then forget two (one from a file) by CLI."""
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import create_from_endpoints

    store = create_from_endpoints(load_endpoints(endpoints))
    for sender in ("alice", "bob", "carol"):
        store.append(sender, personal_events()[:2])
    assert relay_of(store).stop(20.0)
    store.close()
    ids = tmp_path / "ids.txt"
    ids.write_text("# erasure requests of this week\nbob\n\n")
    code = main(
        [
            "forget",
            "alice",
            "--from-file",
            str(ids),
            "--endpoints",
            str(endpoints),
            "--requested-by",
            "ticket-17",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "alice: 2 events deleted" in out and "bob: 2 events deleted" in out
    store = create_tracker_store(load_endpoints(endpoints).tracker_store)
    try:
        assert sorted(store.keys()) == ["carol"]
        assert store.outbox_pending() == []
    finally:
        store.close()
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(a["sender_id"], a["requested_by"]) for a in audit] == [
        ("alice", "ticket-17"),
        ("bob", "ticket-17"),
    ]


def check_consumed(messages: list[dict[str, Any]]) -> None:
    tombstones = [m for m in messages if m["event"] == "conversation_deleted"]
    assert sorted(m["sender_id"] for m in tombstones) == ["alice", "bob"]
    assert all(m["deleted_events"] == 2 and m["reason"] == "erasure" for m in tombstones)
    assert all(isinstance(m["timestamp"], float) for m in tombstones)
    for sender in ("alice", "bob"):  # the tombstone comes after the conversation's events
        mine = [m["event"] for m in messages if m["sender_id"] == sender]
        assert mine == ["action", "user", "conversation_deleted"]


def test_forget_cli_tombstones_reach_a_rabbitmq_consumer(
    tmp_path: Path, rabbit_topology: RabbitTopology, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = endpoints_file(tmp_path, rabbit_topology.section())
    fill_and_forget(endpoints, tmp_path, capsys)
    host, port, queue = rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[0]
    check_consumed(rabbit_messages(host, port, queue, 8))


def test_forget_cli_tombstones_reach_a_kafka_consumer(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    section = {
        "type": "kafka",
        "url": [kafka_bootstrap],
        "topic": kafka_topic,
        "partition_by_sender": True,
    }
    endpoints = endpoints_file(tmp_path, section)
    fill_and_forget(endpoints, tmp_path, capsys)
    check_consumed(kafka_messages(kafka_bootstrap, kafka_topic, 8))


def test_forget_cli_needs_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: in_memory\n")
    assert main(["forget", "--endpoints", str(endpoints)]) == 1
    assert "at least one conversation id" in capsys.readouterr().err
    missing = ["forget", "--from-file", str(tmp_path / "nope.txt"), "--endpoints", str(endpoints)]
    assert main(missing) == 1
    assert "cannot read" in capsys.readouterr().err
