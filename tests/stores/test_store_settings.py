"""One constructor shape, ``Store(settings)``: the settings a store is built with are honoured."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore.factory import create_tracker_store
from eventstore.relay import relay_of, with_broker
from eventstore.stores.base import TrackerStore
from eventstore.stores.dynamo.config import DynamoConfig
from eventstore.stores.dynamo.store import DynamoTrackerStore
from eventstore.stores.memory import InMemoryConfig, InMemoryTrackerStore
from eventstore.stores.mongo.config import MongoConfig
from eventstore.stores.mongo.store import MongoTrackerStore
from eventstore.stores.redis.store import RedisConfig, RedisTrackerStore
from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.stores.sql.url import SQLConfig
from eventstore.testing import new_id, turn


def built_directly(kind: str, tmp_path: Path, size: int) -> TrackerStore:
    """A store of ``kind`` built with its constructor (no server is contacted), with
    ``tracker_cache_size=size`` and the other contract settings off their defaults."""
    common = {"tracker_cache_size": size, "snapshot_every": 7, "unknown_events": "keep"}
    if kind == "memory":
        return InMemoryTrackerStore(InMemoryConfig(**common))
    if kind == "sql":
        return SQLTrackerStore(SQLConfig(url=f"sqlite:///{tmp_path}/s.db", **common))
    if kind == "redis":
        return RedisTrackerStore(RedisConfig(**common))
    if kind == "mongo":
        return MongoTrackerStore(MongoConfig(**common))
    return DynamoTrackerStore(
        DynamoConfig.model_validate({"endpoint_url": "http://127.0.0.1:9", **common})
    )


@pytest.mark.parametrize("kind", ["memory", "sql", "redis", "mongo", "dynamo"])
@pytest.mark.parametrize("size", [0, 7])
def test_a_store_built_directly_honours_tracker_cache_size(
    kind: str, size: int, tmp_path: Path
) -> None:
    store = built_directly(kind, tmp_path, size)
    try:
        assert store._trackers.size == size
        # and the other settings the contract uses (memory and SQL ignored unknown_events)
        assert (store.snapshot_every, store.unknown_events) == (7, "keep")
    finally:
        store.close()


def test_only_the_in_memory_store_is_process_local(tmp_path: Path) -> None:
    assert InMemoryTrackerStore.process_local
    for cls in (SQLTrackerStore, RedisTrackerStore, MongoTrackerStore, DynamoTrackerStore):
        assert not cls.process_local


def test_a_store_without_a_publisher_records_no_outbox(tmp_path: Path) -> None:
    store = create_tracker_store({"type": "sql", "url": f"sqlite:///{tmp_path}/o.db"})
    with store:
        store.append(new_id(), turn(1))
        assert not store.uses_outbox and store.outbox_pending() == []
        assert relay_of(store) is None


def test_on_stored_sees_each_durable_write_and_never_fails_it() -> None:
    seen: list[tuple[str, int]] = []
    store = InMemoryTrackerStore()
    store.on_stored = lambda events: seen.extend((e.sender_id, e.seq) for e in events)
    sid = new_id()
    assert store.append(sid, turn(1)) == 4
    assert seen == [(sid, 1), (sid, 2), (sid, 3), (sid, 4)]

    def broken(events: object) -> None:
        raise RuntimeError("listener down")

    store.on_stored = broken
    assert store.append(sid, turn(2)) == 8  # stored all the same


def test_closing_a_wired_store_stops_its_publisher(tmp_path: Path) -> None:
    from brokers.file import FileEventBroker

    store = with_broker(InMemoryTrackerStore(), FileEventBroker(tmp_path / "out.log"))
    relay = relay_of(store)
    assert relay is not None and relay.running
    store.append(new_id(), turn(1))
    store.close()
    assert not relay.running
    assert len((tmp_path / "out.log").read_text().splitlines()) == 4
