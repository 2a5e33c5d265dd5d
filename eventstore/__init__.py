"""eventstore: an event-sourced, Rasa-compatible store for chatbot conversations."""

from eventstore.endpoints import Endpoints, load_endpoints
from eventstore.errors import (
    BackendUnavailable,
    BrokerError,
    BrokerUnavailable,
    ConcurrencyError,
    ConfigError,
    EventStoreError,
    EventValidationError,
    MissingDependencyError,
    SchemaError,
    UnknownBackendError,
)
from eventstore.factory import create_from_endpoints, create_tracker_store
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.tracker import EventVerbosity, Tracker

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "BrokerError",
    "BrokerUnavailable",
    "ConcurrencyError",
    "ConfigError",
    "Endpoints",
    "EventQuery",
    "EventStoreError",
    "EventValidationError",
    "EventVerbosity",
    "MissingDependencyError",
    "SchemaError",
    "StoredEvent",
    "Tracker",
    "TrackerStore",
    "UnknownBackendError",
    "__version__",
    "create_from_endpoints",
    "create_tracker_store",
    "load_endpoints",
]
