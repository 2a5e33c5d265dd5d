"""Real consumers of the test brokers: they read what a downstream system would receive."""

from __future__ import annotations

import json
import time
from typing import Any

ARRIVAL_TIMEOUT = 20.0


def rabbit_messages(host: str, port: int, queue: str, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` JSON bodies from ``queue`` (pika ``basic_get``), acknowledged."""
    import pika

    connection = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port))
    try:
        channel = connection.channel()
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        while len(received) < count and time.monotonic() < deadline:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                connection.sleep(0.05)
            else:
                received.append(json.loads(body))
        return received
    finally:
        connection.close()


def kafka_messages(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` JSON bodies of ``topic`` from its start (partitions assigned directly)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.1)
        assert partitions, f"topic {topic} never appeared"
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        received: list[dict[str, Any]] = []
        while len(received) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                received.extend(json.loads(record.value) for record in records)
        return received
    finally:
        consumer.close()
