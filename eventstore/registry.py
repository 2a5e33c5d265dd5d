"""Names of stores and brokers, resolved lazily so no driver is imported before it is used.

A ``type:`` is looked up case-insensitively here; a dotted path (``pkg.module.Class``)
loads a custom class. An unknown name is an error with a did-you-mean hint, never a silent
fallback to another backend.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from eventstore.errors import UnknownBackendError

TRACKER_STORES: dict[str, str] = {
    "in_memory": "eventstore.stores.memory:InMemoryTrackerStore",
    "sql": "eventstore.stores.sql:SQLTrackerStore",
    "redis": "eventstore.stores.redis:RedisTrackerStore",
    "mongod": "eventstore.stores.mongo:MongoTrackerStore",
    "dynamo": "eventstore.stores.dynamo:DynamoTrackerStore",
}
STORE_ALIASES: dict[str, str] = {
    "memory": "in_memory",
    "inmemory": "in_memory",
    "in-memory": "in_memory",
    "mongo": "mongod",
    "mongodb": "mongod",
    "dynamodb": "dynamo",
    "postgresql": "sql",
}

EVENT_BROKERS: dict[str, str] = {
    "pika": "brokers.rabbitmq:PikaEventBroker",
    "kafka": "brokers.kafka:KafkaEventBroker",
    "sql": "brokers.sql:SQLEventBroker",
    "file": "brokers.file:FileEventBroker",
}
BROKER_ALIASES: dict[str, str] = {"rabbitmq": "pika", "rabbit": "pika", "amqp": "pika"}


def resolve(kind: str, type_name: str, table: dict[str, str], aliases: dict[str, str]) -> Any:
    """Return the class registered as ``type_name`` (or at that dotted path)."""
    if not isinstance(type_name, str) or not type_name.strip():
        raise UnknownBackendError(f"{kind}: 'type' must be a non-empty string, got {type_name!r}")
    key = type_name.strip().lower()
    key = aliases.get(key, key)
    if key in table:
        return import_object(table[key])
    if "." in type_name:
        module, _, name = type_name.strip().rpartition(".")
        return import_object(f"{module}:{name}", kind=kind)
    names = sorted(set(table) | set(aliases))
    hint = difflib.get_close_matches(key, names, n=1)
    tip = f"; did you mean '{hint[0]}'?" if hint else ""
    raise UnknownBackendError(
        f"{kind}: unknown type {type_name!r}{tip} "
        f"(known: {', '.join(names)}, or a dotted path to a class)"
    )


def import_object(path: str, kind: str = "backend") -> Any:
    """Import ``module:attr``; a failure is an ``UnknownBackendError`` naming the path."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # MissingDependencyError is not an ImportError: it passes
        raise UnknownBackendError(f"{kind}: cannot import module {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownBackendError(
            f"{kind}: module {module_name!r} has no attribute {attr!r}"
        ) from None
