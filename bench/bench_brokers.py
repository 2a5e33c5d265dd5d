"""Publish throughput (events/s) of each broker beside its raw client doing the same work.

For every broker three numbers are printed:
- ``raw``: the plain client publishing the same bodies the same way (pika basic_publish
  of persistent messages, one AMQP transaction per 500 as the broker does; a publisher
  confirm per message is printed beside it; KafkaProducer.send + flush with
  acks=all; one executemany per batch in one transaction; file write + flush per batch);
- ``broker``: ``EventBroker.publish_many`` + ``flush`` in batches of 500;
- ``store+relay``: appends to an in-memory store (batches of 4 events, a bot turn) until
  the relay has published them all: what a bot sees end to end. The same appends to a
  store without a broker are printed first: the store's own cost, the ceiling there.
Ratios are broker/raw and relay/raw (1.00 = no overhead). Nothing is asserted.

Run: ``.venv/bin/python -m bench.bench_brokers`` (RabbitMQ on 127.0.0.1:5672 and
PostgreSQL on 127.0.0.1:5432 as in tests, in a throwaway database; Tansu, a Kafka-protocol
stand-in, is started here). Exchanges, queues, topics and tables are this run's own.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import best_rates, fresh_postgres, unique
from brokers import create_broker
from brokers.base import EventBroker, encode_message
from brokers.testing import stored_events
from eventstore.relay import relay_of, with_broker
from eventstore.stores.memory import InMemoryTrackerStore

BATCH = 500


def messages(count: int) -> list[dict[str, Any]]:
    """``count`` bodies of 20 conversations, each about 200 bytes."""
    senders = [unique("bench-") for _ in range(20)]
    return [e.as_message() for e in stored_events(senders, count // 20)]


def compare(name: str, runs: dict[str, Callable[[], int]], repeats: int = 3) -> None:
    """Run each function ``repeats`` times, interleaved (so load on the machine hits all
    alike), and report the best events/s of each (functions return how many they sent)."""
    rates = best_rates(runs, rounds=repeats, min_seconds=0)
    report(name, rates["raw"], rates["broker"], rates["relay"])


def via_broker(broker: EventBroker, bodies: list[dict[str, Any]]) -> Callable[[], int]:
    def run() -> int:
        for i in range(0, len(bodies), BATCH):
            broker.publish_many(bodies[i : i + BATCH])
            broker.flush(60)
        return len(bodies)

    return run


def make_broker(section: dict[str, Any]) -> EventBroker:
    """The broker an ``event_broker:`` section describes."""
    broker = create_broker(section)
    assert broker is not None
    return broker


TURN: list[dict[str, Any]] = [
    {"event": "user", "text": "hello there", "parse_data": {"intent": {"name": "greet"}}},
    {"event": "action", "name": "utter_greet"},
    {"event": "bot", "text": "Hi! How can I help?"},
    {"event": "action", "name": "action_listen"},
]


def store_alone(count: int = 50000) -> float:
    """Events/s of the same appends to an in-memory store without a broker (the floor)."""
    best_rate = 0.0
    for _ in range(3):
        store = InMemoryTrackerStore()
        senders = [unique("bench-") for _ in range(20)]
        start = time.perf_counter()
        for i in range(count // 4):
            store.append(senders[i % len(senders)], TURN)
        best_rate = max(best_rate, count // 4 * 4 / (time.perf_counter() - start))
    return best_rate


def via_store(section: dict[str, Any], count: int) -> Callable[[], int]:
    """Appends of 4-event turns to an in-memory store; timed until the relay published all."""
    turn = TURN

    def run() -> int:
        broker = make_broker(section)
        store = with_broker(InMemoryTrackerStore(), broker)
        relay_of(store).configure(poll_interval=0.05)
        senders = [unique("bench-") for _ in range(20)]
        for i in range(count // 4):
            store.append(senders[i % len(senders)], turn)
        relay = relay_of(store)
        assert relay is not None
        while relay.published < count // 4 * 4:
            time.sleep(0.001)
        relay_of(store).stop(10)
        broker.close()
        return count // 4 * 4

    return run


def report(name: str, raw: float, broker: float, relay: float) -> None:
    print(
        f"{name:<12} raw {raw:>9,.0f}/s   broker {broker:>9,.0f}/s (x{broker / raw:4.2f})"
        f"   store+relay {relay:>9,.0f}/s (x{relay / raw:4.2f})"
    )


def bench_rabbitmq(count: int = 5000) -> None:
    import pika

    tag = unique("")
    exchange, queue = f"bench-{tag}", f"bench-q-{tag}"
    section = {"type": "pika", "url": "127.0.0.1", "exchange_name": exchange, "queues": [queue]}
    bodies = messages(count)
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1"))
    channel = connection.channel()
    channel.exchange_declare(exchange, exchange_type="fanout", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="")
    channel.tx_select()
    confirming = connection.channel()
    confirming.confirm_delivery()
    properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")

    def raw() -> int:
        # as the broker does: persistent messages, one AMQP transaction per BATCH
        for i in range(0, len(bodies), BATCH):
            for body in bodies[i : i + BATCH]:
                channel.basic_publish(exchange, "", json.dumps(body).encode(), properties)
            channel.tx_commit()
        return len(bodies)

    def raw_confirms() -> int:
        # the other way to know a message is stored: a publisher confirm per message
        for body in bodies[:1000]:
            confirming.basic_publish(exchange, "", json.dumps(body).encode(), properties)
        return 1000

    broker = None
    try:
        confirms = best_rates({"confirms": raw_confirms}, rounds=3, min_seconds=0)["confirms"]
        print(f"rabbitmq     raw, a publisher confirm per message instead: {confirms:,.0f}/s")
        broker = make_broker(section)
        compare(
            "rabbitmq",
            {
                "raw": raw,
                "broker": via_broker(broker, bodies),
                "relay": via_store(section, count),
            },
            repeats=5,  # latency-bound (one commit round trip per 500), noisy
        )
    finally:
        if broker is not None:
            broker.close()
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)
        connection.close()


def bench_kafka(count: int = 20000) -> None:
    from kafka import KafkaProducer

    from tests.servers.kafka import free_port, start_tansu, stop_tansu

    port = free_port()
    process = start_tansu(port)
    bootstrap = f"127.0.0.1:{port}"
    topic = unique("bench-")
    section = {"type": "kafka", "url": bootstrap, "topic": topic, "partition_by_sender": True}
    bodies = messages(count)
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")

        def raw() -> int:
            for body in bodies:
                producer.send(topic, json.dumps(body).encode(), key=body["sender_id"].encode())
            producer.flush()
            return len(bodies)

        broker = make_broker(section)
        compare(
            "kafka",
            {
                "raw": raw,
                "broker": via_broker(broker, bodies),
                "relay": via_store(section, count),
            },
        )
        broker.close()
        producer.close()
    finally:
        stop_tansu(process)


def bench_file(directory: Path, count: int = 50000) -> None:
    bodies = messages(count)
    raw_path = directory / "raw.log"

    def raw() -> int:
        with raw_path.open("ab") as handle:
            for i in range(0, len(bodies), BATCH):
                handle.write(b"".join(encode_message(m) + b"\n" for m in bodies[i : i + BATCH]))
                handle.flush()
        return len(bodies)

    section = {"type": "file", "path": str(directory / "broker.log")}
    broker = make_broker(section)
    compare(
        "file",
        {
            "raw": raw,
            "broker": via_broker(broker, bodies),
            "relay": via_store(section, count),
        },
    )
    broker.close()


def bench_sql(name: str, url: str, count: int = 20000) -> None:
    bodies = messages(count)
    table = unique("bench_")
    engine = sa.create_engine(url)
    raw_table = sa.Table(
        f"{table}_raw",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_id", sa.String(255), nullable=False, index=True),
        sa.Column("data", sa.Text),
    )
    raw_table.create(engine)

    def raw() -> int:
        for i in range(0, len(bodies), BATCH):
            rows = [
                {"sender_id": m["sender_id"], "data": json.dumps(m)} for m in bodies[i : i + BATCH]
            ]
            with engine.begin() as conn:
                conn.execute(raw_table.insert(), rows)
        return len(bodies)

    section = {"type": "sql", "url": url, "table_name": table}
    broker = make_broker(section)
    try:
        compare(
            name,
            {
                "raw": raw,
                "broker": via_broker(broker, bodies),
                "relay": via_store(section, count),
            },
        )
    finally:
        broker.close()
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}_raw"))
        engine.dispose()


def main() -> None:
    print(f"in-memory store appends alone (no broker): {store_alone():,.0f} events/s")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        bench_file(directory)
        bench_sql("sqlite", f"sqlite:///{directory / 'bench.db'}")
    with fresh_postgres() as url:
        bench_sql("postgresql", url)
    bench_rabbitmq()
    bench_kafka()


if __name__ == "__main__":
    main()
