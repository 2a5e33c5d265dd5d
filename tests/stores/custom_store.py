"""A custom store loaded by dotted path in the tests; it also runs the shared contract."""

from __future__ import annotations

from eventstore.stores.memory import InMemoryTrackerStore


class ListTrackerStore(InMemoryTrackerStore):
    """The in-memory store, configured the way custom stores are: keys as kwargs."""

    Config = None

    def __init__(self, url: str = "", label: str = "") -> None:
        super().__init__()
        self.url = url
        self.label = label


class NotAStore:
    """Something that is not a TrackerStore."""
