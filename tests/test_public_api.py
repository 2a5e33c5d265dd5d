"""The public surface is explicit: ``eventstore.__all__`` is pinned, and every error class
eventstore raises on purpose lives in ``eventstore.errors``."""

from __future__ import annotations

import inspect

import eventstore
import eventstore.errors

PUBLIC = [
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


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert eventstore.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(eventstore, name) is not None, name


def test_every_error_of_the_tree_is_exported_from_errors_and_the_package() -> None:
    tree = {
        name
        for name, value in vars(eventstore.errors).items()
        if inspect.isclass(value) and issubclass(value, eventstore.errors.EventStoreError)
    }
    assert tree == set(eventstore.errors.__all__)
    assert tree <= set(eventstore.__all__)
    for name in tree:
        assert getattr(eventstore, name) is getattr(eventstore.errors, name)
        assert getattr(eventstore.errors, name).__module__ == "eventstore.errors"


def test_broker_and_export_errors_are_the_ones_in_errors() -> None:
    from brokers.base import PublishError
    from eventstore.export import ExportFailed

    assert PublishError is eventstore.errors.PublishError
    assert ExportFailed is eventstore.errors.ExportFailed
