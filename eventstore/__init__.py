"""eventstore: an event-sourced, Rasa-compatible store for chatbot conversations.

The backend kit: ``TrackerStore`` (subclass it: a few private primitives), its settings
base ``StoreSettings``, ``StoredEvent`` and ``EventQuery``; ``open_store`` /
``create_tracker_store`` build a store from a ``tracker_store:`` section, ``attach`` wires
a store to an event broker; every error is in ``eventstore.errors`` and re-exported here.
The shipped contracts for a new backend are in ``eventstore.testing``.
"""

from eventstore.config import StoreSettings, StrictConfig
from eventstore.endpoints import Endpoints, load_endpoints
from eventstore.errors import (
    BackendUnavailable,
    BrokerAuthenticationError,
    BrokerError,
    BrokerUnavailable,
    CheckpointConflictError,
    ConcurrencyError,
    ConfigError,
    DecryptionError,
    EventStoreError,
    EventValidationError,
    ExportFailed,
    MissingDependencyError,
    NoPositionsError,
    PublishError,
    SchemaError,
    TombstoneError,
    UnknownBackendError,
)
from eventstore.events import EventDict, EventVerbosity
from eventstore.factory import create_from_endpoints, create_tracker_store, open_store
from eventstore.relay import OutboxRelay, attach, relay_of
from eventstore.sessions import append_turn, session_start_events
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.tracker import Tracker

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "BrokerAuthenticationError",
    "BrokerError",
    "BrokerUnavailable",
    "CheckpointConflictError",
    "ConcurrencyError",
    "ConfigError",
    "DecryptionError",
    "Endpoints",
    "EventDict",
    "EventQuery",
    "EventStoreError",
    "EventValidationError",
    "EventVerbosity",
    "ExportFailed",
    "MissingDependencyError",
    "NoPositionsError",
    "OutboxRelay",
    "PublishError",
    "SchemaError",
    "StoreSettings",
    "StoredEvent",
    "StrictConfig",
    "TombstoneError",
    "Tracker",
    "TrackerStore",
    "UnknownBackendError",
    "__version__",
    "append_turn",
    "attach",
    "create_from_endpoints",
    "create_tracker_store",
    "load_endpoints",
    "open_store",
    "relay_of",
    "session_start_events",
]
