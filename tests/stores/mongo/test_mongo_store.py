"""MongoDB store beyond the contract: layout, large logs, rollback, outbox, outages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest

from brokers.file import FileEventBroker
from eventstore.errors import (
    BackendUnavailable,
    ConcurrencyError,
    ConfigError,
    EventValidationError,
)
from eventstore.factory import create_tracker_store
from eventstore.relay import relay_of, with_broker
from eventstore.stores.base import EventQuery
from eventstore.stores.mongo.config import MongoConfig
from eventstore.stores.mongo.store import MongoTrackerStore
from eventstore.testing import action, new_id, session_start, turn, user
from tests.servers import free_port
from tests.servers.mongo import MONGO_TEST_DB


@pytest.fixture
def store(mongo_url: str, mongo_collection: str) -> Iterator[MongoTrackerStore]:
    store = MongoTrackerStore(
        MongoConfig(url=mongo_url, db=MONGO_TEST_DB, collection=mongo_collection)
    )
    with store:
        yield store


@pytest.fixture
def raw(mongo_url: str) -> Iterator[Any]:
    """The same database through plain pymongo, to look at what the store wrote."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongo_url)
    yield client[MONGO_TEST_DB]
    client.close()


def test_type_mongod_and_alias_build_this_store(mongo_url: str, mongo_collection: str) -> None:
    for name in ("mongod", "mongo", "MongoDB"):
        store = create_tracker_store(
            {"type": name, "url": mongo_url, "db": MONGO_TEST_DB, "collection": mongo_collection}
        )
        assert isinstance(store, MongoTrackerStore)
        store.close()


def test_one_document_per_event_with_indexed_fields(
    store: MongoTrackerStore, raw: Any, mongo_collection: str
) -> None:
    sid = new_id()
    store.append(sid, [user("hi", intent="greet", ts=10.5), action("utter_hi", ts=11.0)])
    store.append(sid, [{"event": "slot", "name": "s", "value": [1, "x"], "timestamp": 12.0}])
    docs = list(raw[mongo_collection].find({"sender_id": sid}, {"_id": 0}).sort("seq", 1))
    assert [d["seq"] for d in docs] == [1, 2, 3]
    assert [d["type_name"] for d in docs] == ["user", "action", "slot"]
    assert [d["timestamp"] for d in docs] == [10.5, 11.0, 12.0]
    assert docs[0]["intent_name"] == "greet" and "action_name" not in docs[0]
    assert docs[1]["action_name"] == "utter_hi" and "intent_name" not in docs[1]
    assert docs[2]["data"] == {"event": "slot", "name": "s", "value": [1, "x"], "timestamp": 12.0}
    positions = [d["position"] for d in docs]
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert raw[f"{mongo_collection}_meta"].find_one({"_id": sid}) == {"_id": sid, "version": 3}
    names = set(raw[mongo_collection].index_information())
    assert {"sender_seq", "position", "type_position", "intent_position", "timestamp"} <= names
    assert raw[mongo_collection].index_information()["sender_seq"]["unique"] is True


def test_keys_that_mongodb_refuses_and_huge_ints_round_trip_as_json(
    store: MongoTrackerStore, raw: Any, mongo_collection: str
) -> None:
    sid = new_id()
    odd = user("x", ts=5.0)
    odd["metadata"] = {"$set": 1, "a.b": {"c": 2}, "big": 2**70, "neg": -(2**64)}
    plain = action("fine", ts=6.0)
    store.append(sid, [odd, plain])
    assert store.read(sid) == [odd, plain]
    docs = list(raw[mongo_collection].find({"sender_id": sid}).sort("seq", 1))
    assert json.loads(docs[0]["data_json"]) == odd and "data" not in docs[0]
    assert docs[0]["intent_name"] == "greet"  # still indexed and queryable
    assert docs[1]["data"] == plain
    found = list(store.query(EventQuery(sender_id=sid, intent="greet")))
    assert [e.data for e in found] == [odd]


def test_lone_surrogates_are_refused_and_cannot_be_queried(store: MongoTrackerStore) -> None:
    sid = new_id()
    store.append(sid, [action("before", ts=1.0)])
    for bad in (
        {"event": "bot", "text": "half \ud800 a pair", "timestamp": 2.0},
        {"event": "slot", "name": "s", "value": {"k\udfff": 1}, "timestamp": 2.0},
    ):
        with pytest.raises(EventValidationError, match="lone surrogate"):
            store.append(sid, [action("ok"), bad])
    assert store.read(sid) == [action("before", ts=1.0)]
    with pytest.raises(EventValidationError):
        list(store.query(EventQuery(action="s\udc80")))


def test_a_duplicate_mid_batch_rolls_back_the_whole_append(
    store: MongoTrackerStore, raw: Any, mongo_collection: str
) -> None:
    sid = new_id()
    store.append(sid, turn(0))
    # a foreign writer put seq 7 in place without going through the store
    raw[mongo_collection].insert_one(
        {"sender_id": sid, "seq": 7, "position": -1, "type_name": "pause", "data": {}}
    )
    with pytest.raises(ConcurrencyError) as info:
        store.append(sid, [action(f"a{i}") for i in range(5)])  # seqs 5..9: 5 and 6 go first
    assert info.value.sender_id == sid
    assert sorted(d["seq"] for d in raw[mongo_collection].find({"sender_id": sid})) == [
        1, 2, 3, 4, 7,
    ]  # fmt: skip
    assert store.version(sid) == 4  # the meta document rolled back with the events


@pytest.fixture
def lean_store(mongo_url: str, mongo_collection: str) -> Iterator[MongoTrackerStore]:
    """The store with only the log's own indexes (the test server maintains each slowly)."""
    store = MongoTrackerStore(
        MongoConfig(
            url=mongo_url, db=MONGO_TEST_DB, collection=mongo_collection, query_indexes=False
        )
    )
    with store:
        yield store


def test_twenty_thousand_events_append_in_batches_and_retrieve(
    lean_store: MongoTrackerStore, raw: Any, mongo_collection: str
) -> None:
    store = lean_store
    assert set(raw[mongo_collection].index_information()) <= {"_id_", "sender_seq", "position"}
    sid = new_id()
    events: list[dict[str, Any]] = session_start(ts=1.0)
    for i in range(5000):
        events.extend(turn(i))
    events = events[:20_000]
    assert store.append(sid, events[:1000]) == 1000
    for start in range(1000, 20_000, 1000):
        store.append(sid, events[start : start + 1000], expected_version=start)
    assert store.version(sid) == 20_000
    full = store.retrieve_full_tracker(sid)
    assert full is not None and full.version == 20_000
    assert [e["event"] for e in full.events] == [e["event"] for e in events]
    current = store.retrieve(sid)
    assert current is not None and len(current.events) == 20_000 - 1  # from session_started
    assert raw[mongo_collection].count_documents({"sender_id": sid}) == 20_000  # one per event
    tail = store.read(sid, after=19_990)
    assert [e.get("text") for e in tail] == [e.get("text") for e in events[19_990:]]


def test_retrieve_reads_only_the_current_session(store: MongoTrackerStore) -> None:
    sid = new_id()
    for s in range(50):
        store.append(sid, session_start(ts=float(s)) + turn(s))
    tracker = store.retrieve(sid)
    assert tracker is not None
    assert len(tracker.events) == 6 and tracker.version == 350
    assert tracker.events[2]["text"] == "message 49"


def test_query_streams_by_position_across_conversations(store: MongoTrackerStore) -> None:
    a, b = new_id(), new_id()
    for i in range(30):
        store.append(a if i % 2 else b, [action(f"x{i}")])
    events = list(store.query(EventQuery(type_name="action")))
    assert [e.data["name"] for e in events] == [f"x{i}" for i in range(30)]
    positions = [e.position or 0 for e in events]
    assert positions == sorted(positions)
    assert list(store.query(EventQuery(limit=0))) == []
    later = list(store.query(EventQuery(after_position=positions[19])))
    assert [e.data["name"] for e in later] == [f"x{i}" for i in range(20, 30)]


def test_replace_swaps_the_log_atomically(store: MongoTrackerStore) -> None:
    sid = new_id()
    store.append(sid, turn(0) + turn(1))
    with pytest.raises(ConcurrencyError):
        store.replace(sid, turn(5), expected_version=3)
    assert store.version(sid) == 8
    assert store.replace(sid, turn(5), expected_version=8) == 4
    assert store.read(sid)[0]["text"] == "message 5"
    assert [e.seq for e in store.query(EventQuery(sender_id=sid))] == [1, 2, 3, 4]
    assert store.replace(sid, []) == 0
    assert not store.exists(sid) and sid not in set(store.keys())


def test_outbox_keeps_events_through_a_broker_outage_and_a_restart(
    mongo_url: str, mongo_collection: str, raw: Any, tmp_path: Path
) -> None:
    log = tmp_path / "missing-dir" / "events.log"  # the broker cannot write until it exists
    settings = {"url": mongo_url, "db": MONGO_TEST_DB, "collection": mongo_collection}
    first = with_broker(MongoTrackerStore.from_config(settings), FileEventBroker(log))
    assert first.uses_outbox
    a, b = new_id(), new_id()
    first.append(a, turn(0))
    first.append(b, turn(0))
    first.append(a, [action("later")])
    pending = first.outbox_pending()
    assert [(e.sender_id, e.seq) for e in pending] == [(a, i) for i in range(1, 5)] + [
        (b, i) for i in range(1, 5)
    ] + [(a, 5)]  # fmt: skip
    assert [e.position or 0 for e in pending] == sorted(e.position or 0 for e in pending)
    assert relay_of(first).stop(drain_timeout=0.2) is False  # still down: nothing acknowledged
    first.close()
    assert raw[f"{mongo_collection}_outbox"].count_documents({}) == 9

    log.parent.mkdir()
    second = with_broker(MongoTrackerStore.from_config(settings), FileEventBroker(log))
    deadline = time.monotonic() + 10
    while second.outbox_pending(1) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert second.outbox_pending() == []
    second.close()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(m["sender_id"], m["seq"]) for m in lines if m["sender_id"] == a] == [
        (a, i) for i in range(1, 6)
    ]
    assert len(lines) == 9 and all("position" in m for m in lines)


def test_outbox_is_written_only_with_the_events(
    mongo_url: str, mongo_collection: str, raw: Any, tmp_path: Path
) -> None:
    broker = FileEventBroker(tmp_path / "no" / "events.log")
    settings = {"url": mongo_url, "db": MONGO_TEST_DB, "collection": mongo_collection}
    with with_broker(MongoTrackerStore.from_config(settings), broker) as store:
        sid = new_id()
        store.append(sid, [action("one")])
        with pytest.raises(ConcurrencyError):
            store.append(sid, [action("two"), action("three")], expected_version=0)
        assert [e.data["name"] for e in store.outbox_pending()] == ["one"]
        store.outbox_ack(store.outbox_pending())
        assert store.outbox_pending() == []
        relay_of(store).stop(drain_timeout=0)


def test_unreachable_server_is_backend_unavailable_with_the_password_masked(
    mongo_collection: str,
) -> None:
    port = free_port()  # a port nobody listens on
    store = MongoTrackerStore(
        MongoConfig(
            url=f"mongodb://alice:s3cret-pw@127.0.0.1:{port}/",
            collection=mongo_collection,
            server_selection_timeout_ms=200,
            connect_timeout_ms=200,
        )
    )
    try:
        for call in (lambda: store.append(new_id(), [action("a")]), lambda: list(store.keys())):
            with pytest.raises(BackendUnavailable) as info:
                call()
            assert "s3cret-pw" not in str(info.value)
            assert isinstance(info.value.__cause__, pymongo.errors.PyMongoError)
        assert "s3cret-pw" not in repr(store) and "alice" in repr(store)
    finally:
        store.close()


def test_a_rasa_conversations_collection_is_refused(
    mongo_url: str, mongo_collection: str, raw: Any
) -> None:
    raw[mongo_collection].insert_one({"sender_id": "u1", "events": [{"event": "pause"}]})
    store = MongoTrackerStore(
        MongoConfig(url=mongo_url, db=MONGO_TEST_DB, collection=mongo_collection)
    )
    with store, pytest.raises(ConfigError, match="one-document-per-conversation"):
        store.read("u1")


def test_keys_stream_past_the_first_cursor_batch(store: MongoTrackerStore) -> None:
    ids = {new_id() for _ in range(130)}  # the first batch of a cursor holds 101 documents
    for sid in ids:
        store.append(sid, [action("a")], expected_version=0)
    keys = list(store.keys())
    assert set(keys) == ids and len(keys) == len(ids)


def test_delete_removes_events_meta_and_pending_outbox_entries(
    mongo_url: str, mongo_collection: str, raw: Any, tmp_path: Path
) -> None:
    broker = FileEventBroker(tmp_path / "no" / "events.log")  # down: entries stay pending
    settings = {"url": mongo_url, "db": MONGO_TEST_DB, "collection": mongo_collection}
    with with_broker(MongoTrackerStore.from_config(settings), broker) as store:
        gone, kept = new_id(), new_id()
        store.append(gone, turn(0))
        store.append(kept, [action("stay")])
        assert store.delete(gone) == 4
        for suffix in ("", "_meta", "_outbox"):
            field = "_id" if suffix == "_meta" else "sender_id"
            assert raw[mongo_collection + suffix].count_documents({field: gone}) == 0
            assert raw[mongo_collection + suffix].count_documents({field: kept}) == 1
        relay_of(store).stop(drain_timeout=0)


def test_bounds_past_64_bits_mean_the_same_as_at_the_limit(store: MongoTrackerStore) -> None:
    sid = new_id()
    store.append(sid, turn(0))
    assert store.read(sid, after=2**64) == []
    assert len(store.read(sid, after=-(2**70))) == 4
    assert list(store.query(EventQuery(sender_id=sid, after_position=2**64))) == []
    assert len(list(store.query(EventQuery(sender_id=sid, limit=2**64)))) == 4
    assert len(store.outbox_pending(2**64)) == 0  # no broker: nothing recorded
