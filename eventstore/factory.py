"""Build stores and brokers from endpoints.yml sections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from eventstore.errors import ConfigError
from eventstore.registry import STORE_ALIASES, TRACKER_STORES, resolve
from eventstore.stores.base import TrackerStore

if TYPE_CHECKING:
    from brokers.base import EventBroker
    from eventstore.endpoints import Endpoints


def create_tracker_store(
    config: Mapping[str, Any] | None = None, event_broker: EventBroker | None = None
) -> TrackerStore:
    """Build the store a ``tracker_store:`` section describes; None means in-memory.

    ``type`` picks the backend (case-insensitive, aliases allowed) or names a custom
    ``TrackerStore`` subclass by dotted path. ``store_type`` is Rasa's legacy spelling.
    """
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"tracker_store must be a mapping, got {type(config).__name__}")
    settings = dict(config)
    legacy = settings.pop("store_type", None)
    type_name = legacy or settings.pop("type", None) or "in_memory"
    settings.pop("type", None)
    cls = resolve("tracker_store", type_name, TRACKER_STORES, STORE_ALIASES)
    if not (isinstance(cls, type) and issubclass(cls, TrackerStore)):
        raise ConfigError(f"tracker_store: {type_name!r} is not a TrackerStore subclass")
    return cls.from_config(settings, event_broker)


def create_from_endpoints(endpoints: Endpoints) -> TrackerStore:
    """The store and its broker, both from one endpoints.yml."""
    from brokers import create_broker

    broker = create_broker(endpoints.event_broker)
    return create_tracker_store(endpoints.tracker_store, broker)
