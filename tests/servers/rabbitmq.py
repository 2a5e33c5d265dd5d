"""RabbitMQ: the machine's server at 127.0.0.1:5672, with unique exchanges and queues per test.

A server that is down fails the tests that need it; it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

RABBITMQ_HOST = os.environ.get("EVENTSTORE_TEST_RABBITMQ_HOST", "127.0.0.1")
RABBITMQ_PORT = int(os.environ.get("EVENTSTORE_TEST_RABBITMQ_PORT", "5672"))


@dataclass(frozen=True)
class RabbitTopology:
    """Names one test publishes to: an exchange and the queues bound to it."""

    host: str
    port: int
    exchange: str
    queues: tuple[str, ...]

    def section(self, port: int | None = None, **options: Any) -> dict[str, Any]:
        """The ``event_broker:`` section publishing here (``port``: e.g. a proxy's)."""
        return {
            "type": "pika",
            "url": self.host,
            "port": port or self.port,
            "username": "guest",
            "password": "guest",
            "exchange_name": self.exchange,
            "queues": list(self.queues),
            **options,
        }


def rabbit_connection(host: str = RABBITMQ_HOST, port: int = RABBITMQ_PORT):  # type: ignore[no-untyped-def]
    """A plain pika connection (guest/guest), failing the test if RabbitMQ is down."""
    import pika

    try:
        return pika.BlockingConnection(
            pika.ConnectionParameters(host=host, port=port, connection_attempts=1)
        )
    except pika.exceptions.AMQPConnectionError as exc:
        pytest.fail(f"RabbitMQ is not reachable at {host}:{port}: {exc!r}")


@pytest.fixture(scope="session")
def rabbitmq_server() -> tuple[str, int]:
    """(host, port) of the running RabbitMQ, checked once per session."""
    rabbit_connection().close()
    return RABBITMQ_HOST, RABBITMQ_PORT


@pytest.fixture
def rabbit_topology(rabbitmq_server: tuple[str, int]) -> Iterator[RabbitTopology]:
    """A fresh exchange and two queue names; both deleted after the test."""
    tag = uuid.uuid4().hex[:10]
    topology = RabbitTopology(
        *rabbitmq_server, exchange=f"es-test-{tag}", queues=(f"es-q1-{tag}", f"es-q2-{tag}")
    )
    yield topology
    connection = rabbit_connection(*rabbitmq_server)
    channel = connection.channel()
    for queue in topology.queues:
        channel.queue_delete(queue)
    channel.exchange_delete(topology.exchange)
    connection.close()
