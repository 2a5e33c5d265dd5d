"""Broker outages mid-stream: the link to RabbitMQ or Kafka is cut by a proxy and restored.

Appends run in their own thread the whole time; none may fail or block. Afterwards a plain
client consumer must see every stored event, first occurrences in order per conversation,
and duplicates only from the at-least-once window (at most one batch per failed attempt).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from brokers import create_broker
from brokers.base import EventBroker
from brokers.kafka import KafkaBrokerConfig, KafkaEventBroker
from brokers.testing import assert_delivered_once_in_order, wait_until
from eventstore.relay import relay_of, with_broker
from eventstore.stores.base import EventQuery, TrackerStore
from eventstore.stores.memory import InMemoryTrackerStore
from eventstore.testing import new_id, turn
from tests.brokers.test_broker_contract import KafkaTopicConsumer, RabbitConsumer
from tests.proxy import TcpProxy
from tests.servers.kafka import free_port, start_tansu, stop_tansu

SENDERS = 4
TURNS = 40  # 4 events each: 640 events in all


def append_while_cutting(store: TrackerStore, proxy: TcpProxy, cuts: int) -> list[str]:
    """Append from a thread while the proxy link is cut ``cuts`` times; return the senders."""
    senders = [new_id() for _ in range(SENDERS)]
    errors: list[BaseException] = []
    appended = threading.Event()

    def talk() -> None:
        try:
            for i in range(TURNS):
                for sender in senders:
                    store.append(sender, turn(i))
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)
        finally:
            appended.set()

    worker = threading.Thread(target=talk)
    worker.start()
    relay = relay_of(store)
    assert relay is not None
    for _ in range(cuts):
        published = relay.published
        wait_until(lambda p=published: relay.published > p)  # mid-stream: publishing is on
        proxy.cut()
        time.sleep(0.3)
        proxy.restore()
    worker.join(60)
    assert appended.is_set(), "appends blocked during the outage"
    assert errors == [], f"an append failed during the outage: {errors[0]!r}"
    return senders


def first_copies(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first copy of each ``(sender_id, seq)``, in arrival order: what a deduplicating
    consumer keeps."""
    first: dict[tuple[str, int], dict[str, Any]] = {}
    for message in received:
        first.setdefault((message["sender_id"], message["seq"]), message)
    return list(first.values())


def check_delivery(
    store: TrackerStore, senders: list[str], received: list[dict[str, Any]], failures: int
) -> None:
    """Every event, first occurrences in order, duplicates only from failed attempts."""
    expected = [e.as_message() for s in senders for e in store.query(EventQuery(sender_id=s))]
    assert len(expected) == SENDERS * TURNS * 4
    first = first_copies(received)
    duplicates = len(received) - len(first)
    assert_delivered_once_in_order(first, expected)
    assert (
        duplicates <= failures * relay_of(store).batch_size if relay_of(store) else duplicates == 0
    )


def consume_all(consume: Callable[[int, float], list[dict[str, Any]]], count: int) -> list[Any]:
    received = consume(count, 30)
    received += consume(10**6, 1.0)  # and any duplicates behind them
    return received


def test_rabbitmq_link_cut_mid_stream_loses_nothing(rabbit_topology: Any) -> None:
    with TcpProxy(rabbit_topology.host, rabbit_topology.port) as proxy:
        broker = create_broker(
            rabbit_topology.section(proxy.port, connection_attempts=2, retry_delay_in_seconds=0.2)
        )
        assert broker is not None and broker.is_ready()  # queues exist before publishing
        store = with_broker(InMemoryTrackerStore(), broker)
        relay_of(store).configure(min_backoff=0.05, max_backoff=0.5, batch_size=50)
        senders = append_while_cutting(store, proxy, cuts=3)
        relay = relay_of(store)
        assert relay is not None
        assert relay_of(store).stop(drain_timeout=30) is True
        assert relay.failures >= 1  # the cuts really interrupted publishing
        assert proxy.connections >= 2  # and the broker reconnected
    consumer = RabbitConsumer(rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[0])
    try:
        received = consume_all(consumer, SENDERS * TURNS * 4)
    finally:
        consumer.close()
    check_delivery(store, senders, received, relay.failures)


@pytest.fixture
def kafka_behind_proxy() -> Iterator[tuple[TcpProxy, str]]:
    """A Tansu broker that tells clients to connect through a proxy (so cuts hit them all)."""
    port = free_port()
    with TcpProxy("127.0.0.1", port) as proxy:
        process = start_tansu(port, advertised_port=proxy.port)
        try:
            yield proxy, f"127.0.0.1:{port}"
        finally:
            stop_tansu(process)


def test_kafka_link_cut_mid_stream_loses_nothing(kafka_behind_proxy: tuple[TcpProxy, str]) -> None:
    proxy, direct = kafka_behind_proxy
    topic = f"es-outage-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=direct, request_timeout_ms=5000)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    broker: EventBroker = KafkaEventBroker(
        KafkaBrokerConfig(
            url=[proxy.address],
            topic=topic,
            partition_by_sender=True,
            max_block_ms=2000,
            delivery_timeout_ms=2000,
        )
    )
    store = with_broker(InMemoryTrackerStore(), broker)
    relay_of(store).configure(min_backoff=0.05, max_backoff=0.5, batch_size=50, flush_timeout=5)
    senders = append_while_cutting(store, proxy, cuts=3)
    relay = relay_of(store)
    assert relay is not None
    assert relay_of(store).stop(drain_timeout=30) is True
    consumer = KafkaTopicConsumer(proxy.address, topic)
    try:
        received = consume_all(consumer, SENDERS * TURNS * 4)
    finally:
        consumer.close()
    check_delivery(store, senders, received, relay.failures)


def test_kafka_hung_mid_stream_never_blocks_appends_and_loses_nothing(
    kafka_behind_proxy: tuple[TcpProxy, str],
) -> None:
    """The broker stops answering (no reset, no data): records time out, and are sent
    again by a new producer once the broker answers."""
    proxy, direct = kafka_behind_proxy
    topic = f"es-hung-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=direct, request_timeout_ms=5000)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    broker = KafkaEventBroker(
        KafkaBrokerConfig(
            url=[proxy.address], topic=topic, max_block_ms=1000, delivery_timeout_ms=1500
        )
    )
    store = with_broker(InMemoryTrackerStore(), broker)
    relay = relay_of(store)
    assert relay is not None
    relay.configure(min_backoff=0.05, max_backoff=0.3, flush_timeout=3)
    assert relay is not None
    senders = [new_id() for _ in range(3)]
    for sender in senders:
        store.append(sender, turn(0))
    wait_until(lambda: relay.published == 12, what="first events published")
    proxy.blackhole()
    for i in range(1, 6):  # appends return while the broker hangs
        for sender in senders:
            store.append(sender, turn(i))
    wait_until(lambda: relay.failures >= 1, what="the hang noticed")
    assert relay.published < 72
    proxy.restore()
    assert relay_of(store).stop(drain_timeout=30) is True
    consumer = KafkaTopicConsumer(proxy.address, topic)
    try:
        received = consume_all(consumer, 3 * 6 * 4)
    finally:
        consumer.close()
    expected = [e.as_message() for s in senders for e in store.query(EventQuery(sender_id=s))]
    assert_delivered_once_in_order(first_copies(received), expected)


def test_the_proxy_forwards_cuts_blackholes_and_restores() -> None:
    """The helper the outage tests rely on, against a tiny echo server."""
    import socket
    import socketserver

    class Echo(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                while data := self.request.recv(1024):
                    self.request.sendall(data)
            except ConnectionError:  # the proxy reset the link: what the test wants
                return

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    def echo(sock: socket.socket) -> bytes:
        """What comes back for b"ping": b"" when the link is closed or reset."""
        try:
            sock.sendall(b"ping")
            return sock.recv(16)
        except (ConnectionError, BrokenPipeError):
            return b""

    with Server(("127.0.0.1", 0), Echo) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with TcpProxy("127.0.0.1", server.server_address[1]) as proxy:

            def connect() -> socket.socket:
                return socket.create_connection(("127.0.0.1", proxy.port), timeout=2)

            with connect() as sock:
                assert echo(sock) == b"ping"
            open_link = connect()
            assert echo(open_link) == b"ping"
            proxy.cut()
            assert echo(open_link) == b""  # the open link is closed ...
            open_link.close()
            try:
                with connect() as sock:
                    reply = echo(sock)
            except ConnectionError:  # reset even before connect() returned
                reply = b""
            assert reply == b""  # ... and new ones are dropped at once
            proxy.blackhole()
            with connect() as sock, pytest.raises(TimeoutError):
                sock.settimeout(0.3)
                echo(sock)  # accepted, but nothing ever comes back
            proxy.restore()
            with connect() as sock:
                assert echo(sock) == b"ping"
            assert proxy.connections == 3
        server.shutdown()
