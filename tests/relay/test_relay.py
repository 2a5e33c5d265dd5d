"""The outbox relay: publish after storing, confirm before acknowledging, retry, drain, stop."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from brokers import create_broker
from brokers.file import FileEventBroker
from brokers.testing import assert_delivered_once_in_order, wait_until
from eventstore.errors import BrokerError, BrokerUnavailable, PublishError
from eventstore.factory import create_tracker_store
from eventstore.relay import BufferOutbox, OutboxRelay, attach, relay_of, with_broker
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.stores.memory import InMemoryTrackerStore
from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.testing import new_id, turn
from tests.proxy import TcpProxy


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The bodies a plain file consumer reads."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stored_messages(store: TrackerStore, senders: list[str]) -> list[dict[str, Any]]:
    """What the store holds, as broker bodies."""
    return [e.as_message() for s in senders for e in store.query(EventQuery(sender_id=s))]


class FailingAfter(FileEventBroker):
    """A file broker that accepts ``accept`` messages and then fails, for a few calls."""

    def __init__(self, path: Path, accept: int, failures: int) -> None:
        super().__init__(path)
        self.accept = accept
        self.failures_left = failures

    def publish_many(self, messages: Any) -> None:
        batch = list(messages)
        if self.failures_left > 0 and len(batch) > self.accept:
            self.failures_left -= 1
            super().publish_many(batch[: self.accept])
            raise PublishError("broker went away", confirmed=self.accept)
        super().publish_many(batch)


class NoOutboxStore(InMemoryTrackerStore):
    """The in-memory store without its outbox: the relay buffers in process memory."""

    supports_outbox: ClassVar[bool] = False


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def test_in_memory_store_publishes_every_event_in_seq_order(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    store = with_broker(InMemoryTrackerStore(), FileEventBroker(path))
    senders = [new_id() for _ in range(3)]
    for i in range(5):
        for sender in senders:
            store.append(sender, turn(i))
    assert relay_of(store) is not None and relay_of(store).running
    assert relay_of(store).stop(drain_timeout=10) is True
    assert_delivered_once_in_order(read_lines(path), stored_messages(store, senders))
    assert store.outbox_pending() == []


def test_sql_store_outbox_is_emptied_once_published(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "events.log"
    store = with_broker(SQLTrackerStore.from_url(sqlite_url), FileEventBroker(path))
    senders = [new_id() for _ in range(3)]
    for sender in senders:
        store.append(sender, turn(1) + turn(2))
    assert relay_of(store).stop(drain_timeout=10) is True
    assert store.outbox_pending() == []
    assert_delivered_once_in_order(read_lines(path), stored_messages(store, senders))
    store.close()


def test_store_from_config_publishes_what_an_earlier_run_left(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Events stored while the broker failed go out when the store is opened again."""
    path = tmp_path / "events.log"
    sender = new_id()
    earlier = with_broker(
        SQLTrackerStore.from_url(sqlite_url), FailingAfter(path, accept=0, failures=10**6)
    )
    earlier.append(sender, turn(1) + turn(2))
    assert relay_of(earlier).stop(drain_timeout=0.2) is False
    earlier.close()
    assert read_lines(path) == []
    later = create_tracker_store({"type": "sql", "url": sqlite_url}, FileEventBroker(path))
    assert relay_of(later) is not None and relay_of(later).running  # started with no append
    assert relay_of(later).stop(drain_timeout=10) is True
    assert_delivered_once_in_order(read_lines(path), stored_messages(later, [sender]))
    later.close()


def test_partial_failure_acks_only_what_the_broker_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    store = with_broker(InMemoryTrackerStore(), FailingAfter(path, accept=3, failures=2))
    sender = new_id()
    store.append(sender, turn(1) + turn(2) + turn(3))
    relay = relay_of(store)
    assert relay is not None
    assert relay_of(store).stop(drain_timeout=10) is True
    assert relay.failures == 2
    assert relay.published == 12
    assert_delivered_once_in_order(read_lines(path), stored_messages(store, [sender]))


def test_drain_counts_events_of_partly_confirmed_batches(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "events.log"
    writer = with_broker(
        SQLTrackerStore.from_url(sqlite_url), FailingAfter(path, accept=0, failures=10**6)
    )
    sender = new_id()
    writer.append(sender, turn(1) + turn(2) + turn(3))
    relay_of(writer).stop(drain_timeout=0)
    relay = OutboxRelay(writer, FailingAfter(path, accept=5, failures=2), min_backoff=0.01)
    assert relay.drain(timeout=10) == 12
    assert relay.failures == 2
    assert_delivered_once_in_order(read_lines(path), stored_messages(writer, [sender]))
    writer.close()


def test_drain_publishes_another_process_outbox_once(tmp_path: Path, sqlite_url: str) -> None:
    """What ``eventstore relay --once`` does: a store opened without a broker, drained."""
    path = tmp_path / "events.log"
    writer = with_broker(
        SQLTrackerStore.from_url(sqlite_url), FailingAfter(path, accept=0, failures=10**6)
    )
    senders = [new_id() for _ in range(3)]
    for sender in senders:
        writer.append(sender, turn(1) + turn(2))
    relay_of(writer).stop(drain_timeout=0)
    reader = SQLTrackerStore.from_url(sqlite_url)
    relay = OutboxRelay(reader, FileEventBroker(path), batch_size=5)
    assert relay.drain(timeout=10) == 24
    assert relay.drain(timeout=10) == 0
    assert reader.outbox_pending() == []
    assert_delivered_once_in_order(read_lines(path), stored_messages(reader, senders))
    reader.close()
    writer.close()


def test_store_without_outbox_publishes_through_the_process_buffer(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    store = with_broker(NoOutboxStore(), FileEventBroker(path))
    senders = [new_id() for _ in range(4)]
    for sender in senders:
        store.append(sender, turn(1))
    relay = relay_of(store)
    assert relay is not None and isinstance(relay.outbox, BufferOutbox)
    assert relay_of(store).stop(drain_timeout=10) is True
    assert len(relay.outbox) == 0
    assert_delivered_once_in_order(read_lines(path), stored_messages(store, senders))


def test_buffer_outbox_refuses_events_beyond_its_bound() -> None:
    buffer = BufferOutbox(max_events=3)
    events = [StoredEvent("a", i, {"event": "restart"}) for i in range(1, 5)]
    buffer.add(events[:2])
    buffer.add(events[2:])  # 2 more would exceed 3: dropped, counted
    assert [e.seq for e in buffer.outbox_pending()] == [1, 2]
    assert buffer.dropped == 2
    buffer.outbox_ack(events[:1])
    assert [e.seq for e in buffer.outbox_pending()] == [2]


def test_appends_succeed_while_the_broker_is_unreachable_and_publish_once_it_is_back(
    rabbit_topology: Any,
) -> None:
    from tests.brokers.test_broker_contract import RabbitConsumer

    with TcpProxy(rabbit_topology.host, rabbit_topology.port) as proxy:
        proxy.cut()
        broker = create_broker(
            rabbit_topology.section(proxy.port, connection_attempts=1, retry_delay_in_seconds=0)
        )
        store = with_broker(InMemoryTrackerStore(), broker)
        relay_of(store).configure(min_backoff=0.05, max_backoff=0.2)
        senders = [new_id() for _ in range(3)]
        for sender in senders:
            store.append(sender, turn(1) + turn(2))  # never raises: the broker is not involved
        relay = relay_of(store)
        assert relay is not None
        wait_until(lambda: relay.failures >= 2)
        assert relay.published == 0
        assert len(store.outbox_pending()) == 24
        assert isinstance(relay.last_error, BrokerError)
        assert isinstance(relay.last_error.__cause__, BrokerUnavailable)
        proxy.restore()
        assert relay_of(store).stop(drain_timeout=20) is True
    consumer = RabbitConsumer(rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[0])
    try:
        assert_delivered_once_in_order(consumer(24), stored_messages(store, senders))
    finally:
        consumer.close()


def test_a_hung_broker_never_blocks_appends(rabbit_topology: Any) -> None:
    """The broker accepts connections and never answers: appends still return."""
    with TcpProxy(rabbit_topology.host, rabbit_topology.port) as proxy:
        proxy.blackhole()
        broker = create_broker(rabbit_topology.section(proxy.port, connection_attempts=1))
        store = with_broker(InMemoryTrackerStore(), broker)
        sender = new_id()
        done = threading.Event()

        def talk() -> None:
            for i in range(20):
                store.append(sender, turn(i))
            done.set()

        worker = threading.Thread(target=talk)
        worker.start()
        worker.join(30)  # generous: a blocked append would never finish
        assert done.is_set(), "appends blocked behind a hung broker"
        assert store.version(sender) == 80
        proxy.restore()
        assert relay_of(store).stop(drain_timeout=30) is True
        assert store.outbox_pending() == []


def test_stop_reports_events_a_failing_broker_left(tmp_path: Path) -> None:
    store = InMemoryTrackerStore()
    attach(store, FailingAfter(tmp_path / "x.log", accept=0, failures=10**6))
    store.append(new_id(), turn(1))
    assert relay_of(store).stop(drain_timeout=0.3) is False
    assert len(store.outbox_pending()) == 4


def test_sqlite_store_to_rabbitmq_end_to_end(sqlite_url: str, rabbit_topology: Any) -> None:
    from tests.brokers.test_broker_contract import RabbitConsumer

    broker = create_broker(rabbit_topology.section())
    assert broker is not None and broker.is_ready()
    store = create_tracker_store({"type": "sql", "url": sqlite_url}, broker)
    senders = [new_id() for _ in range(3)]
    for i in range(5):
        for sender in senders:
            store.append(sender, turn(i))
    assert relay_of(store).stop(drain_timeout=30) is True
    consumer = RabbitConsumer(rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[1])
    try:
        assert_delivered_once_in_order(consumer(60), stored_messages(store, senders))
        assert consumer(1, 0.3) == []
    finally:
        consumer.close()
        store.close()


def test_sqlite_store_to_kafka_end_to_end(
    sqlite_url: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    from tests.brokers.test_broker_contract import KafkaTopicConsumer

    section = {"url": kafka_bootstrap, "topic": kafka_topic, "partition_by_sender": True}
    store = create_tracker_store(
        {"type": "sql", "url": sqlite_url}, create_broker({"type": "kafka", **section})
    )
    senders = [new_id() for _ in range(3)]
    for i in range(5):
        for sender in senders:
            store.append(sender, turn(i))
    assert relay_of(store).stop(drain_timeout=30) is True
    consumer = KafkaTopicConsumer(kafka_bootstrap, kafka_topic)
    try:
        assert_delivered_once_in_order(consumer(60), stored_messages(store, senders))
        assert consumer(1, 0.3) == []
    finally:
        consumer.close()
        store.close()


def test_postgresql_store_and_sql_broker_share_one_database(postgres_url: str) -> None:
    """Rasa's broker table would collide with the store's ``events``; ours does not."""
    import sqlalchemy as sa

    table = f"broker_{new_id('t').replace('-', '_')}"
    broker = create_broker({"type": "sql", "url": postgres_url, "table_name": table})
    store = create_tracker_store({"type": "sql", "url": postgres_url}, broker)
    senders = [new_id() for _ in range(2)]
    for sender in senders:
        store.append(sender, turn(1) + turn(2))
    assert relay_of(store).stop(drain_timeout=30) is True
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT sender_id, data FROM {table} ORDER BY id")).all()
        received = [json.loads(row.data) for row in rows]
        assert_delivered_once_in_order(received, stored_messages(store, senders))
        assert all(
            row.sender_id == body["sender_id"] for row, body in zip(rows, received, strict=True)
        )
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
        store.close()


def test_processes_sharing_an_outbox_each_publish_their_own_events(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Two stores on one database (two runtimes): no event is published twice."""
    logs = {"a": tmp_path / "a.log", "b": tmp_path / "b.log"}
    stores = {
        name: with_broker(SQLTrackerStore.from_url(sqlite_url), FileEventBroker(log))
        for name, log in logs.items()
    }
    senders = {name: [new_id(name) for _ in range(3)] for name in stores}
    for store in stores.values():
        relay_of(store).configure(poll_interval=0.02, orphan_after=3600)

    def talk(name: str) -> None:
        for i in range(10):
            for sender in senders[name]:
                stores[name].append(sender, turn(i))

    threads = [threading.Thread(target=talk, args=(name,)) for name in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, store in stores.items():
        relay = relay_of(store)
        assert relay is not None
        wait_until(lambda relay=relay: relay.published == 3 * 10 * 4, what=f"relay {name}")
    for name, store in stores.items():
        assert relay_of(store).stop(drain_timeout=10) is True
        expected = stored_messages(store, senders[name])
        assert_delivered_once_in_order(read_lines(logs[name]), expected)
        store.close()


def test_events_another_process_left_are_published_once_they_waited(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A runtime died with events in the outbox: a live one picks them up after a while."""
    path = tmp_path / "events.log"
    dead = with_broker(
        SQLTrackerStore.from_url(sqlite_url), FailingAfter(path, accept=0, failures=10**6)
    )
    sender = new_id()
    dead.append(sender, turn(1) + turn(2))
    relay_of(dead).stop(drain_timeout=0)
    live = with_broker(SQLTrackerStore.from_url(sqlite_url), FileEventBroker(path))
    relay = relay_of(live)
    assert relay is not None
    relay.configure(poll_interval=0.02, orphan_after=0.1)
    assert relay is not None
    wait_until(lambda: relay.published == 8, what="orphaned events published")
    assert relay_of(live).stop(drain_timeout=10) is True
    assert_delivered_once_in_order(read_lines(path), stored_messages(live, [sender]))
    live.close()
    dead.close()
