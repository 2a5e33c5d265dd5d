"""The one error tree of eventstore.

    EventStoreError
    ├── ConfigError                  endpoints.yml / store or broker settings are wrong
    │   └── UnknownBackendError      a `type:` that names no store or broker
    ├── MissingDependencyError       an optional driver is not installed
    ├── BackendUnavailable           the store's server cannot be reached or failed
    ├── SchemaError                  the SQL schema is missing or behind head
    ├── ConcurrencyError             the log moved past `expected_version`
    ├── EventValidationError         an event (or sender id) is malformed; nothing stored
    └── BrokerError                  publishing to the event broker failed
        └── BrokerUnavailable        the broker cannot be reached

Every driver exception is translated into one of these, ``raise ... from exc``, in one
place per backend, so callers never need to import a driver to handle errors.
"""

from __future__ import annotations


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


class BrokerError(EventStoreError):
    """Publishing to the event broker failed."""


class BrokerUnavailable(BrokerError):
    """The event broker could not be reached."""


__all__ = [
    "BackendUnavailable",
    "BrokerError",
    "BrokerUnavailable",
    "ConcurrencyError",
    "ConfigError",
    "EventStoreError",
    "EventValidationError",
    "MissingDependencyError",
    "SchemaError",
    "UnknownBackendError",
]
