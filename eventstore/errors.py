"""The one error tree of eventstore.

    EventStoreError
    ├── ConfigError                  endpoints.yml / store or broker settings are wrong
    │   └── UnknownBackendError      a `type:` that names no store or broker
    ├── MissingDependencyError       an optional driver is not installed
    ├── BackendUnavailable           the store's server cannot be reached or failed
    ├── SchemaError                  the SQL schema is missing or behind head
    ├── ConcurrencyError             the log moved past `expected_version`
    ├── EventValidationError         an event (or sender id) is malformed; nothing stored
    ├── DecryptionError              a stored event does not decrypt with the configured keys
    ├── NoPositionsError             a feed/subscription on a store without global positions
    ├── CheckpointConflictError      another process moved a checkpoint this one writes
    ├── BrokerError                  publishing to the event broker failed
    │   ├── BrokerUnavailable        the broker cannot be reached
    │   ├── BrokerAuthenticationError  it refused the credentials (never retried)
    │   ├── PublishError             a batch failed part-way (``confirmed`` were accepted)
    │   └── TombstoneError           conversations deleted, their tombstones not confirmed
    └── ExportFailed                 ``export`` stopped; ``resume`` says where to go on

Every driver exception is translated into one of these, ``raise ... from exc``, in one
place per backend, so callers never need to import a driver to handle errors.
"""

from __future__ import annotations

from typing import Any


class EventStoreError(Exception):
    """Base class of every error eventstore raises on purpose."""


class ConfigError(EventStoreError):
    """A configuration value is missing, unknown or of the wrong type."""


class UnknownBackendError(ConfigError):
    """A `type:` names no registered store or broker, and is not an importable class."""


class MissingDependencyError(EventStoreError):
    """An optional driver is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"the '{module}' package is required for this backend; "
            f"install it with: pip install 'eventstore[{extra}]'"
        )


class BackendUnavailable(EventStoreError):
    """The store's server could not be reached, or failed mid-operation."""


class SchemaError(EventStoreError):
    """The SQL schema is not at the revision this version of eventstore needs."""


class ConcurrencyError(EventStoreError):
    """An append was refused because the conversation's log moved on (HTTP 409)."""

    def __init__(self, sender_id: str, expected: int | None, actual: int | None) -> None:
        self.sender_id = sender_id
        self.expected = expected
        self.actual = actual
        detail = f"; it is at version {actual}" if actual is not None else ""
        super().__init__(
            f"conversation {sender_id!r} was expected at version {expected}{detail}; "
            "reload it and try again"
        )


class EventValidationError(EventStoreError, ValueError):
    """An event or sender id is malformed; the request stored nothing.

    ``index`` is the position of the bad event in the request (None for the sender id),
    ``field`` the dotted path of the bad field when one can be named.
    """

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None) -> None:
        self.index = index
        self.field = field
        self.reason = message
        where = []
        if index is not None:
            where.append(f"event {index}")
        if field:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class DecryptionError(EventStoreError):
    """A stored event is encrypted with a key that is not configured, or does not open."""


class NoPositionsError(EventStoreError):
    """The store keeps no global positions, so it cannot feed ordered, resumable consumers."""

    def __init__(self, store: str) -> None:
        self.store = store
        super().__init__(
            f"{store} has no global positions: it cannot feed a resumable consumer (no "
            "subscriptions, no 'after' position); use a store with positions (SQL, Redis, "
            "MongoDB, in-memory) or 'eventstore export' for a one-off copy"
        )


class CheckpointConflictError(EventStoreError):
    """Another process moved the checkpoint this one commits with its work (two consumers)."""


class BrokerError(EventStoreError):
    """Publishing to the event broker failed."""


class BrokerUnavailable(BrokerError):
    """The event broker could not be reached."""


class BrokerAuthenticationError(BrokerError):
    """The event broker refused the credentials: retrying cannot help, so nobody does."""


class TombstoneError(BrokerError):
    """Conversations were deleted but the broker did not confirm their tombstones.

    ``erased`` lists their ids; forgetting them again publishes the tombstones again.
    """

    def __init__(self, message: str, erased: list[str]) -> None:
        self.erased = erased
        super().__init__(message)


class PublishError(BrokerError):
    """``publish_many`` failed part-way: the first ``confirmed`` messages were accepted.

    The outbox relay acknowledges exactly those and publishes the rest again, so a failure
    in the middle of a batch republishes as little as possible.
    """

    def __init__(self, message: str, confirmed: int = 0) -> None:
        self.confirmed = confirmed
        super().__init__(message)


class ExportFailed(EventStoreError):
    """The export stopped part-way; ``resume`` is where a new run continues (None: the start).

    ``resume`` is an ``eventstore.export.ResumePoint``, ``summary`` an ``ExportSummary``.
    """

    def __init__(self, cause: BaseException, resume: Any, summary: Any) -> None:
        self.cause = cause
        self.resume = resume
        self.summary = summary
        if isinstance(cause, KeyboardInterrupt):
            super().__init__(f"export interrupted after {summary.events} events")
        else:
            super().__init__(f"export failed after {summary.events} events: {cause}")


__all__ = [
    "BackendUnavailable",
    "BrokerAuthenticationError",
    "BrokerError",
    "BrokerUnavailable",
    "CheckpointConflictError",
    "ConcurrencyError",
    "ConfigError",
    "DecryptionError",
    "EventStoreError",
    "EventValidationError",
    "ExportFailed",
    "MissingDependencyError",
    "NoPositionsError",
    "PublishError",
    "SchemaError",
    "TombstoneError",
    "UnknownBackendError",
]
