"""Export from every store backend, each on its real server, to the file broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from brokers.file import FileEventBroker
from eventstore.export import export_events
from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore
from eventstore.testing import action, new_id, user

BACKENDS = ["sqlite", "postgresql", "redis", "mongo", "dynamo"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TrackerStore]:
    name = request.param
    if name == "sqlite":
        section: dict[str, Any] = {"type": "sql", "db": str(tmp_path / "s.db")}
    elif name == "postgresql":
        section = {"type": "sql", "url": request.getfixturevalue("postgres_url")}
    elif name == "redis":
        section = {
            "type": "redis",
            "url": request.getfixturevalue("redis_url"),
            "key_prefix": request.getfixturevalue("redis_prefix"),
        }
    elif name == "mongo":
        section = {
            "type": "mongod",
            "url": request.getfixturevalue("mongo_url"),
            "db": "export_test",
            "collection": request.getfixturevalue("mongo_collection"),
        }
    else:
        section = {"type": "dynamo", **request.getfixturevalue("dynamo_server").store_config()}
    with create_tracker_store(section) as created:
        yield created


def test_export_publishes_each_stored_event_once_with_seq_and_position(
    store: TrackerStore, tmp_path: Path
) -> None:
    ids = sorted(new_id("x") for _ in range(4))
    for n, sid in enumerate(ids):
        store.append(sid, [user(f"hello {n}", ts=50.0 + n)])
        store.append(sid, [action(f"act_{k}", ts=60.0 + k) for k in range(n + 2)])
    out = tmp_path / "out.jsonl"
    with FileEventBroker(out) as broker:
        # only this test's conversations: the shared server may hold others
        summary = export_events(store, broker, conversation_ids=ids, minimum_timestamp=55)
    messages = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = [(sid, k + 2) for n, sid in enumerate(ids) for k in range(n + 2)]
    assert [(m["sender_id"], m["seq"]) for m in messages] == expected
    assert summary.events == len(expected)
    for m in messages:
        stored = store.read(m["sender_id"])[m["seq"] - 1]
        body = {k: v for k, v in m.items() if k not in ("sender_id", "seq", "position")}
        assert body == stored
        assert ("position" in m) == store.has_positions
    if store.has_positions:
        positions = [m["position"] for m in messages if m["sender_id"] == ids[0]]
        assert positions == sorted(positions)
