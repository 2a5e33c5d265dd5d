"""eventstore for Rasa: ``type: eventstore_rasa.EventStoreTrackerStore`` in Rasa's endpoints.yml.

Installs into Rasa's own environment (it needs only aiohttp, which Rasa ships) and keeps
every conversation in an eventstore service (``eventstore run``). See docs/rasa.md.
"""

from eventstore_rasa.errors import (
    ConversationConflict,
    EventStoreAuthError,
    EventStoreConfigError,
    EventStoreRasaError,
    EventStoreRequestError,
    EventStoreUnavailable,
)
from eventstore_rasa.store import EventStoreTrackerStore

__version__ = "0.1.0"

__all__ = [
    "ConversationConflict",
    "EventStoreAuthError",
    "EventStoreConfigError",
    "EventStoreRasaError",
    "EventStoreRequestError",
    "EventStoreTrackerStore",
    "EventStoreUnavailable",
]
