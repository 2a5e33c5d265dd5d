"""One RabbitMQ exchange for Rasa 3.6 pods and eventstore, in either start order.

Rasa's real ``PikaEventBroker`` (aio-pika, in the Rasa venv) declares ``rasa-exchange``
non-durable and fails to start on any other declaration; eventstore's broker uses an
existing exchange as it is and declares a missing one as Rasa does. With
``message_format: rasa`` eventstore's messages are byte for byte Rasa's, with Rasa's
properties.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from brokers.rabbitmq import PikaBrokerConfig, PikaEventBroker
from eventstore.stores.base import StoredEvent
from tests.servers.rabbitmq import RabbitTopology, rabbit_connection
from tests.servers.rasa import rasa_env

PUBLISHER = Path(__file__).parent / "rasa_side" / "pika_publisher.py"
EVENT = {
    "event": "user",
    "timestamp": 1700000001.5,
    "text": "grüße aus Köln",
    "parse_data": {"intent": {"name": "greet", "confidence": 0.98}, "entities": []},
    "input_channel": "rest",
    "message_id": "m1",
    "metadata": {"model_id": "x"},
}


def rasa_publishes(python: Path, topology: RabbitTopology, queue: str) -> None:
    """A Rasa pod starts its broker on the topology and publishes EVENT for 'alice'."""
    config = {
        **{k: v for k, v in topology.section().items() if k not in ("type", "queues")},
        "queues": [queue],
        "bodies": [{"sender_id": "alice", **EVENT}],
    }
    env = {**rasa_env(), "RASA_ENVIRONMENT": "rollout-test"}
    proc = subprocess.run(
        [str(python), str(PUBLISHER), json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0 and "published" in proc.stdout, proc.stderr[-3000:]


def eventstore_publishes(topology: RabbitTopology, queue: str, **options: Any) -> None:
    section = {k: v for k, v in topology.section(**options).items() if k != "type"}
    settings = PikaBrokerConfig(**{**section, "queues": [queue]})
    broker = PikaEventBroker(settings)
    try:
        broker.publish(StoredEvent("alice", 7, dict(EVENT), 412).as_message())
    finally:
        broker.close()


def take_all(queue: str) -> list[tuple[Any, bytes]]:
    connection = rabbit_connection()
    try:
        channel = connection.channel()
        got = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append((properties, body))
    finally:
        connection.close()


def comparable(properties: Any) -> dict[str, Any]:
    """Every property but the per-message id (checked to be there)."""
    assert len(properties.message_id) == 32
    return {k: v for k, v in vars(properties).items() if k != "message_id"}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_ENVIRONMENT", "rollout-test")


def test_rasa_first_then_eventstore_publishes_rasas_exact_message(
    rabbit_topology: RabbitTopology, rasa_python: Path, environment: None
) -> None:
    rasa_queue, our_queue = rabbit_topology.queues
    rasa_publishes(rasa_python, rabbit_topology, rasa_queue)  # declares the exchange
    eventstore_publishes(rabbit_topology, our_queue, message_format="rasa")

    (rasa_props, rasa_body), (our_props, our_body) = take_all(rasa_queue)  # fanout: both
    assert our_body == rasa_body  # Rasa's json.dumps: ASCII escapes, no seq/position
    assert json.loads(our_body) == {"sender_id": "alice", **EVENT}
    assert comparable(our_props) == comparable(rasa_props)
    assert our_props.app_id == "rollout-test" and our_props.delivery_mode == 2
    assert [body for _, body in take_all(our_queue)] == [rasa_body]


def test_eventstore_first_then_a_rasa_pod_starts_on_its_exchange(
    rabbit_topology: RabbitTopology, rasa_python: Path, environment: None
) -> None:
    rasa_queue, our_queue = rabbit_topology.queues
    eventstore_publishes(rabbit_topology, our_queue)  # declares the exchange, as Rasa would
    rasa_publishes(rasa_python, rabbit_topology, rasa_queue)  # would exit on 406

    rasas = {"sender_id": "alice", **EVENT}
    assert [json.loads(body) for _, body in take_all(our_queue)] == [
        {**rasas, "seq": 7, "position": 412},  # ours, in eventstore's default format
        rasas,  # the Rasa pod's, through the same exchange
    ]
    assert [json.loads(body) for _, body in take_all(rasa_queue)] == [rasas]


def test_an_existing_durable_exchange_is_used_as_it_is(rabbit_topology: RabbitTopology) -> None:
    connection = rabbit_connection()
    connection.channel().exchange_declare(rabbit_topology.exchange, "fanout", durable=True)
    connection.close()
    queue = rabbit_topology.queues[0]
    eventstore_publishes(rabbit_topology, queue)  # no 406: the declaration is not repeated
    assert len(take_all(queue)) == 1


def test_exchange_durable_declares_a_durable_exchange(rabbit_topology: RabbitTopology) -> None:
    queue = rabbit_topology.queues[0]
    eventstore_publishes(rabbit_topology, queue, exchange_durable=True)
    connection = rabbit_connection()
    channel = connection.channel()
    try:  # a durable exchange refuses a non-durable redeclaration, as a Rasa pod would see
        with pytest.raises(Exception, match="PRECONDITION_FAILED"):
            channel.exchange_declare(rabbit_topology.exchange, "fanout", durable=False)
    finally:
        if connection.is_open:
            connection.close()
