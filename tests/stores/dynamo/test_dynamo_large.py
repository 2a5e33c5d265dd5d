"""DynamoDB: appends past one transaction (100 items), 20,000-event conversations, races."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from eventstore.errors import ConcurrencyError
from eventstore.stores.base import EventQuery
from eventstore.stores.dynamo.store import DynamoTrackerStore
from eventstore.testing import action, new_id, seqs, session_start, turn, user
from tests.servers.dynamo import DynamoServer


class HookedStore(DynamoTrackerStore):
    """The real store, with a hook run after each transaction of a large append."""

    after_chunk: Callable[[int], None] | None = None

    def _transact(self, *args: Any, **kwargs: Any) -> None:
        super()._transact(*args, **kwargs)
        if self.after_chunk is not None:  # counts from when a hook is set
            self.chunks_done = getattr(self, "chunks_done", 0) + 1
            self.after_chunk(self.chunks_done)


@pytest.fixture
def table_config(dynamo_server: DynamoServer) -> dict[str, Any]:
    return dynamo_server.store_config()


@pytest.fixture
def store(table_config: dict[str, Any]) -> Iterator[DynamoTrackerStore]:
    with DynamoTrackerStore.from_config(table_config) as store:
        assert isinstance(store, DynamoTrackerStore)
        yield store


def raw_items(server: DynamoServer, table: str, sender_id: str) -> list[int]:
    """Every seq stored under the conversation's partition, visible or not."""
    found: list[int] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "sender_id = :s",
        "ExpressionAttributeValues": {":s": {"S": sender_id}},
    }
    while True:
        page = server.client().query(**kwargs)
        found += [int(i["seq"]["N"]) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_an_append_of_150_events_is_one_checked_append(store: DynamoTrackerStore) -> None:
    sid = new_id()
    events = [action(f"a{i}") for i in range(150)]
    assert store.append(sid, events, expected_version=0) == 150
    assert [e["name"] for e in store.read(sid)] == [f"a{i}" for i in range(150)]
    assert seqs(store, sid) == list(range(1, 151))
    with pytest.raises(ConcurrencyError) as info:
        store.append(sid, [action("b")] * 150, expected_version=100)
    assert (info.value.expected, info.value.actual) == (100, 150)
    assert store.version(sid) == 150
    assert store.append(sid, [action("c")] * 120) == 270  # unversioned, after the log
    assert [e["name"] for e in store.read(sid, after=268)] == ["c", "c"]


def test_a_large_append_is_invisible_until_committed(
    table_config: dict[str, Any], dynamo_server: DynamoServer
) -> None:
    sid = new_id()
    tag = new_id("t")
    seen: list[tuple[int, list[Any], int, list[Any]]] = []
    with (
        HookedStore.from_config(table_config) as writer,
        DynamoTrackerStore.from_config(table_config) as reader,
    ):
        assert isinstance(writer, HookedStore)
        writer.append(sid, session_start(ts=1.0))

        def look(done: int) -> None:
            if done == 1:  # first chunk written, not committed
                outside = list(reader.query(EventQuery(intent=tag)))
                seen.append(
                    (
                        reader.version(sid),
                        reader.read(sid, after=3),
                        len(raw_items(dynamo_server, reader.table, sid)),
                        outside,
                    )
                )
                with pytest.raises(ConcurrencyError):  # the conversation is leased
                    reader.append(sid, [action("x")], expected_version=3)

        writer.after_chunk = look
        writer.append(sid, [user(f"m{i}", intent=tag, ts=2.0) for i in range(250)])
        version, tail, stored_items, outside = seen[0]
        assert (version, tail, outside) == (3, [], [])
        assert stored_items == 1 + 3 + 99  # meta, 3 committed, the first (hidden) chunk
        assert reader.version(sid) == 253
        assert len(list(reader.query(EventQuery(intent=tag)))) == 250
        retrieved = reader.retrieve(sid)
        assert retrieved is not None and len(retrieved.events) == 252


def test_a_large_append_that_loses_its_lease_stores_nothing(
    dynamo_server: DynamoServer,
) -> None:
    config = dynamo_server.store_config(lease_seconds=0.05)
    sid = new_id()
    with HookedStore.from_config(config) as writer, DynamoTrackerStore.from_config(config) as other:
        assert isinstance(writer, HookedStore)

        def steal(done: int) -> None:
            if done == 1:
                time.sleep(0.1)  # the writer's lease has run out: another writer takes over
                assert other.append(sid, [action("other")], expected_version=0) == 1

        writer.after_chunk = steal
        with pytest.raises(ConcurrencyError):
            writer.append(sid, [action(f"a{i}") for i in range(200)], expected_version=0)
        assert [e["name"] for e in other.read(sid)] == ["other"]
        assert seqs(other, sid) == [1]
        assert [e.seq for e in other.query(EventQuery(action="a150"))] == []
        assert other.append(sid, [action("next")], expected_version=1) == 2


def test_a_crashed_large_append_stays_hidden_and_its_lease_expires(
    dynamo_server: DynamoServer,
) -> None:
    config = dynamo_server.store_config(lease_seconds=10)  # moto may take seconds per call
    sid = new_id()
    with HookedStore.from_config(config) as writer, DynamoTrackerStore.from_config(config) as other:
        assert isinstance(writer, HookedStore)

        def crash(done: int) -> None:
            raise KeyboardInterrupt  # the process dies between two chunks

        writer.after_chunk = crash
        with pytest.raises(KeyboardInterrupt):
            writer.append(sid, [action(f"lost{i}") for i in range(150)])
        crashed_at = time.monotonic()
        with pytest.raises(ConcurrencyError):  # still leased
            other.append(sid, [action("x")], expected_version=0)
        assert len(raw_items(dynamo_server, other.table, sid)) == 1 + 99
        assert other.read(sid) == [] and other.version(sid) == 0
        assert list(other.query(EventQuery(action="lost5"))) == []
        assert sid not in set(other.keys())
        time.sleep(max(0.0, 10.2 - (time.monotonic() - crashed_at)))  # the lease runs out
        assert other.append(sid, [action("after")], expected_version=0) == 1
        assert [e["name"] for e in other.read(sid)] == ["after"]
        assert list(other.query(EventQuery(action="lost5"))) == []
        assert other.delete(sid) == 1
        assert raw_items(dynamo_server, other.table, sid) == []  # the dead append's too


def test_replace_moves_the_log_above_the_old_one_and_collects_it(
    table_config: dict[str, Any], dynamo_server: DynamoServer
) -> None:
    sid = new_id()
    with (
        DynamoTrackerStore.from_config(table_config) as first,
        DynamoTrackerStore.from_config(table_config) as second,
    ):
        first.append(sid, [action(f"old{i}") for i in range(10)])
        fresh = [*session_start(), *(action(f"new{i}") for i in range(147))]
        assert second.replace(sid, fresh, expected_version=10) == 150
        # the new log sits above the old one, which is gone
        assert raw_items(dynamo_server, first.table, sid) == [0, *range(11, 161)]
        # ``first`` has not seen the replace: its append still lands right after it
        assert first.append(sid, [action("next")], expected_version=150) == 151
        assert [e.get("name") for e in first.read(sid)][-2:] == ["new146", "next"]
        assert seqs(first, sid) == list(range(1, 152))
        assert list(first.query(EventQuery(action="old3"))) == []
        assert [e.seq for e in first.query(EventQuery(action="new0"))] == [4]
        current = first.retrieve(sid)
        assert current is not None and current.version == 151 and len(current.events) == 150
        with pytest.raises(ConcurrencyError):
            first.replace(sid, [action("stale")], expected_version=150)
        assert first.delete(sid) == 151
        assert raw_items(dynamo_server, first.table, sid) == []
        assert first.append(sid, [action("again")], expected_version=0) == 1


def test_a_large_replace_is_atomic_for_readers(table_config: dict[str, Any]) -> None:
    sid = new_id()
    old = [action(f"old{i}") for i in range(120)]
    new = [action(f"new{i}") for i in range(250)]
    with DynamoTrackerStore.from_config(table_config) as store:
        store.append(sid, old)
        seen: list[list[str]] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                seen.append([e["name"] for e in store.read(sid)])

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            version = store.replace(sid, new, expected_version=120)
            version = store.replace(sid, old, expected_version=version)
        finally:
            stop.set()
            thread.join()
        assert version == 120
        wholes = ([e["name"] for e in old], [e["name"] for e in new])
        assert seen and all(names in wholes for names in seen)


def test_eight_writers_expecting_the_same_version_one_wins(
    table_config: dict[str, Any],
) -> None:
    sid = new_id()
    stores = [DynamoTrackerStore.from_config(table_config) for _ in range(8)]
    stores[0].append(sid, turn(0))
    barrier = threading.Barrier(8)
    results: list[str] = []

    def writer(n: int) -> None:
        store = stores[n]
        version = store.version(sid)
        barrier.wait()
        try:
            store.append(sid, [action(f"w{n}")], expected_version=version)
            results.append("won")
        except ConcurrencyError:
            results.append("conflict")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["won"]
    assert seqs(stores[0], sid) == [1, 2, 3, 4, 5]
    for store in stores:
        store.close()


def test_eight_writers_with_retries_and_large_appends(table_config: dict[str, Any]) -> None:
    sid = new_id()
    errors: list[BaseException] = []
    conflicts: list[int] = []

    def writer(n: int) -> None:
        with DynamoTrackerStore.from_config(table_config) as store:
            try:
                for i in range(3):
                    size = 120 if i == 1 else 3  # every writer makes one leased append
                    while True:
                        version = store.version(sid)
                        batch = [action(f"w{n}-{i}-{k}") for k in range(size)]
                        try:
                            store.append(sid, batch, expected_version=version)
                            break
                        except ConcurrencyError:
                            conflicts.append(n)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with DynamoTrackerStore.from_config(table_config) as store:
        total = 8 * (3 + 120 + 3)
        assert seqs(store, sid) == list(range(1, total + 1))
        names = [e["name"] for e in store.read(sid)]
        assert len(set(names)) == total
        # every append's events are contiguous and in order
        for start in range(len(names)):
            n, i, k = names[start].split("-")
            if k == "0":
                size = 120 if i == "1" else 3
                assert names[start : start + size] == [f"{n}-{i}-{j}" for j in range(size)]


@pytest.mark.slow
def test_a_conversation_of_20000_events(dynamo_server: DynamoServer) -> None:
    # its own table (moto's per-request cost grows with the table), a generous read timeout
    # (moto walks the whole partition for every 1 MB page)
    config = dynamo_server.store_config(read_timeout=120)
    sid = new_id()
    with DynamoTrackerStore.from_config(config) as store:
        first = [user(f"message {i}", ts=1_700_000_000.0 + i / 7) for i in range(10_000)]
        assert store.append(sid, first, expected_version=0) == 10_000
        later: list[dict[str, Any]] = []
        for n in range(100):  # then ordinary appends, 100 events at a time
            batch = [action(f"t{n}-{i}", ts=1_800_000_000.0 + n + i / 1000) for i in range(100)]
            if n == 90:  # a new session: retrieve reads from here
                batch[:3] = session_start(ts=1_800_000_090.0)
            assert store.append(sid, batch, expected_version=10_000 + 100 * n) == 10_100 + 100 * n
            later += batch
        assert store.version(sid) == 20_000
        events = store.read(sid)  # about 7 MB: several 1 MB pages
        assert len(events) == 20_000
        assert events[:10_000] == first
        assert events[10_000:] == later
        assert [e["name"] for e in store.read(sid, after=19_998)] == ["t99-98", "t99-99"]
        tracker = store.retrieve(sid)  # the current session: from seq 19,002 on
        assert tracker is not None and tracker.version == 20_000
        assert tracker.events == later[9_001:]  # from the session_started event on
