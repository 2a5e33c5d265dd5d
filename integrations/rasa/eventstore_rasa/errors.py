"""Errors of the plug-in.

    EventStoreRasaError
    ├── EventStoreConfigError     a tracker_store option is missing, unknown or wrong
    ├── EventStoreUnavailable     the eventstore service cannot be reached (after retries)
    ├── EventStoreAuthError       the service refused the credentials (401/403)
    ├── EventStoreRequestError    the service refused a request (4xx, 5xx): its message
    └── ConversationConflict      another writer moved the conversation on (409)

None of them is an ``ImportError`` or ``AttributeError``: Rasa turns those, raised while it
builds a custom tracker store, into a silent fallback to its in-memory store. Messages name
the eventstore URL, never the token.
"""

from __future__ import annotations


class EventStoreRasaError(Exception):
    """Base of every error this plug-in raises on purpose."""


class EventStoreConfigError(EventStoreRasaError, ValueError):
    """A ``tracker_store:`` option in Rasa's endpoints.yml is missing, unknown or wrong."""


class EventStoreUnavailable(EventStoreRasaError):
    """The eventstore service could not be reached (connection refused, DNS, timeout)."""


class EventStoreAuthError(EventStoreRasaError):
    """The eventstore service refused the credentials (HTTP 401 or 403)."""


class EventStoreRequestError(EventStoreRasaError):
    """The eventstore service answered a request with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ConversationConflict(EventStoreRasaError):
    """The conversation moved past the version the tracker was loaded at (HTTP 409)."""

    def __init__(self, message: str, sender_id: str, expected: int, actual: int | None) -> None:
        super().__init__(message)
        self.sender_id = sender_id
        self.expected = expected
        self.actual = actual
