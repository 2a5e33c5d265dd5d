"""``eventstore export`` from a SQLite store through real brokers, read by plain consumers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventstore.cli import main
from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore
from eventstore.testing import action, user
from tests.brokers.test_broker_contract import RabbitConsumer
from tests.relay.test_relay_outage import first_copies
from tests.servers.rabbitmq import RabbitTopology


def sqlite_section(path: Path) -> dict[str, Any]:
    return {"type": "sql", "dialect": "sqlite", "db": str(path)}


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[TrackerStore, dict[str, Any]]]:
    section = sqlite_section(tmp_path / "store.db")
    store = create_tracker_store(section)
    for i in range(20):
        events = [user(f"hi {i}", ts=1000.0 + i)]
        events += [action(f"act_{k}", ts=1000.0 + i + k / 100) for k in range(1, 10)]
        store.append(f"conv-{i:02d}", events)
    yield store, section
    store.close()


def expected(store: TrackerStore) -> dict[str, list[dict[str, Any]]]:
    ids = store.keys()
    return {sid: store.read(sid) for sid in ids}


def check(messages: list[dict[str, Any]], store: TrackerStore) -> None:
    """Every event exactly once, in seq order per conversation, with the documented body."""
    got: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, int]] = set()
    for message in messages:
        body = dict(message)
        sid, seq = body.pop("sender_id"), body.pop("seq")
        assert isinstance(body.pop("position"), int)
        assert (sid, seq) not in seen
        seen.add((sid, seq))
        assert seq == len(got.get(sid, [])) + 1
        got.setdefault(sid, []).append(body)
    assert got == expected(store)


def export(tmp_path: Path, store_section: dict[str, Any], broker: dict[str, Any]) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        yaml.safe_dump({"tracker_store": store_section, "event_broker": broker}), encoding="utf-8"
    )
    assert main(["export", "--endpoints", str(endpoints)]) == 0


def test_sqlite_to_file_broker(tmp_path: Path, sqlite_store: Any) -> None:
    store, section = sqlite_store
    out = tmp_path / "events.jsonl"
    export(tmp_path, section, {"type": "file", "path": str(out)})
    check([json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()], store)


def read_queue(topology: RabbitTopology, queue: str) -> list[dict[str, Any]]:
    """Every message waiting in ``queue``, read with plain pika (the export has returned,
    so all it published is there)."""
    consumer = RabbitConsumer(topology.host, topology.port, queue)
    try:
        return consumer(10**6, 0.3)
    finally:
        consumer.close()


def test_sqlite_to_rabbitmq(
    tmp_path: Path, sqlite_store: Any, rabbit_topology: RabbitTopology
) -> None:
    store, section = sqlite_store
    export(tmp_path, section, rabbit_topology.section())
    for queue in rabbit_topology.queues:  # the fanout exchange fed both queues
        check(read_queue(rabbit_topology, queue), store)


def test_sqlite_to_sql_broker(tmp_path: Path, sqlite_store: Any) -> None:
    import sqlite3

    store, section = sqlite_store
    broker_db = tmp_path / "broker.db"
    broker = {"type": "sql", "dialect": "sqlite", "db": str(broker_db), "table_name": "exported"}
    export(tmp_path, section, broker)
    with sqlite3.connect(broker_db) as conn:
        rows = conn.execute("SELECT data FROM exported ORDER BY id").fetchall()
    check([json.loads(r[0]) for r in rows], store)


def test_sqlite_to_kafka(
    tmp_path: Path, sqlite_store: Any, kafka_bootstrap: str, kafka_topic: str
) -> None:
    from kafka import KafkaConsumer, TopicPartition

    store, section = sqlite_store
    broker = {
        "type": "kafka",
        "url": kafka_bootstrap,
        "topic": kafka_topic,
        "partition_by_sender": True,  # one conversation stays in one partition, in order
    }
    export(tmp_path, section, broker)
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    partitions = [TopicPartition(kafka_topic, p) for p in range(3)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    total = sum(store.version(sid) for sid in expected(store))
    messages: list[dict[str, Any]] = []
    for _ in range(100):  # the export flushed (acks=all): everything is there already
        for records in consumer.poll(timeout_ms=200).values():
            messages += [json.loads(r.value) for r in records]
        if len(messages) >= total:
            break
    consumer.close()
    check(messages, store)


def test_rabbitmq_connection_cut_mid_export_then_resume_delivers_everything(
    sqlite_store: Any, rabbit_topology: RabbitTopology
) -> None:
    from brokers import create_broker
    from eventstore.export import ExportFailed, export_events
    from tests.proxy import TcpProxy

    store, _ = sqlite_store
    with TcpProxy(rabbit_topology.host, rabbit_topology.port) as proxy:
        section = rabbit_topology.section(
            port=proxy.port, connection_attempts=1, retry_delay_in_seconds=0
        )
        broker = create_broker(section)
        assert broker is not None

        def cut_after_eight(sender_id: str, count: int) -> None:
            if sender_id == "conv-07":
                proxy.cut()

        with pytest.raises(ExportFailed) as info:
            export_events(store, broker, publish_batch=15, on_conversation=cut_after_eight)
        point = info.value.resume
        assert point is not None and point.sender_id <= "conv-07"
        proxy.restore()
        summary = export_events(store, broker, resume=point, publish_batch=15)
        broker.close()
    assert summary.events > 0
    messages = read_queue(rabbit_topology, rabbit_topology.queues[0])
    # at least once; a consumer that drops repeated (sender_id, seq) sees each event once,
    # in order, and the repeats are at most the one unconfirmed batch
    first_seen = first_copies(messages)
    assert len(messages) - len(first_seen) <= 15
    check(first_seen, store)
