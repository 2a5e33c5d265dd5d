"""The broker contract suite against every built-in broker, each read by its plain client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from brokers import create_broker
from brokers.base import EventBroker
from brokers.file import FileEventBroker
from brokers.kafka import KafkaEventBroker
from brokers.rabbitmq import PikaEventBroker
from brokers.sql import SQLEventBroker
from brokers.testing import (
    ARRIVAL_TIMEOUT,
    Consumer,
    EventBrokerContract,
    assert_delivered_once_in_order,
    new_sender,
    stored_events,
)
from eventstore.stores.base import StoredEvent
from tests.servers.rabbitmq import RabbitTopology


class FileConsumer:
    """Reads complete JSON lines appended to the file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def __call__(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(received) < count:
            if self.path.exists():
                with self.path.open("rb") as handle:
                    handle.seek(self.offset)
                    chunk = handle.read()
                complete = chunk[: chunk.rfind(b"\n") + 1]
                self.offset += len(complete)
                received.extend(json.loads(line) for line in complete.splitlines())
            if len(received) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return received


class SQLConsumer:
    """Selects rows with an id above the last one seen, as a SQL consumer would."""

    def __init__(self, url: str, table: str) -> None:
        self.engine = sa.create_engine(url)
        self.table = table
        self.last_id = 0

    def __call__(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        query = sa.text(
            f"SELECT id, sender_id, data FROM {self.table} WHERE id > :last ORDER BY id"
        )
        while len(received) < count:
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(query, {"last": self.last_id}).all()
            except sa.exc.OperationalError:  # the table appears with the first publish
                rows = []
            for row in rows:
                self.last_id = row.id
                body = json.loads(row.data)
                assert body["sender_id"] == row.sender_id
                received.append(body)
            if len(received) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return received


class TestFileBroker(EventBrokerContract):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "rasa_event.log"

    @pytest.fixture
    def broker(self, path: Path) -> Iterator[EventBroker]:
        broker = create_broker({"type": "file", "path": str(path), "fsync": True})
        assert isinstance(broker, FileEventBroker)
        yield broker
        broker.close()

    @pytest.fixture
    def consume(self, path: Path) -> Consumer:
        return FileConsumer(path)


class _SQLBrokerContract(EventBrokerContract):
    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def table(self) -> str:
        return f"broker_{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def broker(self, database_url: str, table: str) -> Iterator[EventBroker]:
        broker = create_broker({"type": "sql", "url": database_url, "table_name": table})
        assert isinstance(broker, SQLEventBroker)
        yield broker
        broker.close()
        engine = sa.create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()

    @pytest.fixture
    def consume(self, database_url: str, table: str) -> Iterator[Consumer]:
        consumer = SQLConsumer(database_url, table)
        yield consumer
        consumer.engine.dispose()


class TestSQLiteBroker(_SQLBrokerContract):
    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'events.db'}"


class TestPostgreSQLBroker(_SQLBrokerContract):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url


class RabbitConsumer:
    """Gets messages from one queue with plain pika (``basic_get``), acking each."""

    def __init__(self, host: str, port: int, queue: str) -> None:
        import pika

        self.connection = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port))
        self.channel = self.connection.channel()
        self.queue = queue
        self.properties: list[Any] = []

    def __call__(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(received) < count:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                if time.monotonic() >= deadline:
                    break
                self.connection.sleep(0.05)
                continue
            self.properties.append(properties)
            received.append(json.loads(body))
        return received

    def close(self) -> None:
        self.connection.close()


class TestRabbitMQBroker(EventBrokerContract):
    @pytest.fixture
    def broker(self, rabbit_topology: RabbitTopology) -> Iterator[EventBroker]:
        broker = create_broker(rabbit_topology.section())
        assert isinstance(broker, PikaEventBroker)
        assert broker.is_ready()  # declares the exchange and binds the queues
        yield broker
        broker.close()

    @pytest.fixture
    def consume(self, broker: EventBroker, rabbit_topology: RabbitTopology) -> Iterator[Consumer]:
        consumer = RabbitConsumer(
            rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[0]
        )
        yield consumer
        consumer.close()

    def test_every_bound_queue_gets_persistent_messages(
        self, broker: EventBroker, rabbit_topology: RabbitTopology, consume: RabbitConsumer
    ) -> None:
        message = StoredEvent("fan", 1, {"event": "restart"}, 7).as_message()
        broker.publish(message)
        assert consume(1) == [message]
        assert consume.properties[0].delivery_mode == 2
        assert consume.properties[0].content_type == "application/json"
        second = RabbitConsumer(
            rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[1]
        )
        try:
            assert second(1) == [message]
        finally:
            second.close()

    def test_app_id_is_the_rasa_environment(
        self, rabbit_topology: RabbitTopology, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("RASA_ENVIRONMENT", "staging")
        broker = create_broker(rabbit_topology.section())
        assert broker is not None
        broker.publish(StoredEvent("env", 1, {"event": "restart"}).as_message())
        broker.close()
        consumer = RabbitConsumer(
            rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[0]
        )
        try:
            assert len(consumer(1)) == 1
            assert consumer.properties[0].app_id == "staging"
        finally:
            consumer.close()


class KafkaTopicConsumer:
    """Reads every partition of a topic from the start with plain kafka-python."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        partitions = self.consumer.partitions_for_topic(topic) or {0}
        self.partitions = sorted(partitions)
        assigned = [TopicPartition(topic, p) for p in self.partitions]
        self.consumer.assign(assigned)
        self.consumer.seek_to_beginning(*assigned)
        self.records: list[Any] = []

    def __call__(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(received) < count and time.monotonic() < deadline:
            batches = self.consumer.poll(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    self.records.append(record)
                    received.append(json.loads(record.value))
        return received

    def close(self) -> None:
        self.consumer.close()


class TestKafkaBroker(EventBrokerContract):
    """Three partitions keyed by sender: order holds per conversation."""

    @pytest.fixture
    def broker(self, kafka_bootstrap: str, kafka_topic: str) -> Iterator[EventBroker]:
        broker = create_broker(
            {
                "type": "kafka",
                "url": kafka_bootstrap,
                "topic": kafka_topic,
                "partition_by_sender": True,
                "client_id": "eventstore-tests",
            }
        )
        assert isinstance(broker, KafkaEventBroker)
        yield broker
        broker.close()

    @pytest.fixture
    def consume(self, kafka_bootstrap: str, kafka_topic: str) -> Iterator[Consumer]:
        consumer = KafkaTopicConsumer(kafka_bootstrap, kafka_topic)
        yield consumer
        consumer.close()

    def test_records_are_keyed_by_sender_with_the_rasa_header(
        self, broker: EventBroker, consume: KafkaTopicConsumer
    ) -> None:
        message = StoredEvent("alice", 1, {"event": "restart"}, 3).as_message()
        broker.publish(message)
        broker.flush(10)
        assert consume(1) == [message]
        record = consume.records[-1]
        assert record.key == b"alice"
        assert ("RASA_ENVIRONMENT", b"RASA_ENVIRONMENT_NOT_SET") in list(record.headers)

    def test_rasa_environment_header_when_set(
        self, kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("RASA_ENVIRONMENT", "production")
        broker = create_broker({"type": "kafka", "url": kafka_bootstrap, "topic": kafka_topic})
        assert broker is not None
        broker.publish(StoredEvent("env", 1, {"event": "restart"}).as_message())
        broker.flush(10)
        broker.close()
        consumer = KafkaTopicConsumer(kafka_bootstrap, kafka_topic)
        try:
            assert len(consumer(1)) == 1
            assert ("RASA_ENVIRONMENT", b"production") in list(consumer.records[0].headers)
        finally:
            consumer.close()

    def test_rasa_defaults_publish_to_an_auto_created_topic(self, kafka_bootstrap: str) -> None:
        """Rasa's defaults (no key) on a topic Kafka creates with several partitions: a
        conversation still lands in one partition, so it is read in order."""
        topic = f"es-auto-{uuid.uuid4().hex[:8]}"
        broker = create_broker({"type": "kafka", "url": kafka_bootstrap, "topic": topic})
        assert broker is not None
        expected = [e.as_message() for e in stored_events([new_sender()], 10)]
        broker.publish_many(expected)
        broker.flush(10)
        broker.close()
        consumer = KafkaTopicConsumer(kafka_bootstrap, topic)
        try:
            received = consumer(10)
        finally:
            consumer.close()
        assert_delivered_once_in_order(received, expected)
        assert all(record.key is None for record in consumer.records)
        assert len({record.partition for record in consumer.records}) == 1
        assert len(consumer.partitions) > 1  # the test means something only then


class TestMariaDBBroker(_SQLBrokerContract):
    @pytest.fixture
    def database_url(self, mysql_url: str) -> str:
        return mysql_url
