"""Event brokers, one per module; pick one by name with ``create_broker``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from brokers.base import EventBroker, encode_message
from eventstore.errors import ConfigError, PublishError
from eventstore.registry import resolve

#: Type name -> ``module:Class`` of the broker (resolved by ``eventstore.registry``).
EVENT_BROKERS: dict[str, str] = {
    "pika": "brokers.rabbitmq:PikaEventBroker",
    "kafka": "brokers.kafka:KafkaEventBroker",
    "sql": "brokers.sql:SQLEventBroker",
    "file": "brokers.file:FileEventBroker",
}
BROKER_ALIASES: dict[str, str] = {"rabbitmq": "pika", "rabbit": "pika", "amqp": "pika"}


def create_broker(config: Mapping[str, Any] | None) -> EventBroker | None:
    """Build the broker an ``event_broker:`` section describes (None for no section).

    As in Rasa, a section without ``type`` means pika.
    """
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise ConfigError(f"event_broker must be a mapping, got {type(config).__name__}")
    settings = dict(config)
    type_name = settings.pop("type", None) or "pika"
    cls = resolve("event_broker", type_name, EVENT_BROKERS, BROKER_ALIASES)
    if not (isinstance(cls, type) and issubclass(cls, EventBroker)):
        raise ConfigError(f"event_broker: {type_name!r} is not an EventBroker subclass")
    return cls.from_config(settings)


__all__ = [
    "BROKER_ALIASES",
    "EVENT_BROKERS",
    "EventBroker",
    "PublishError",
    "create_broker",
    "encode_message",
]
