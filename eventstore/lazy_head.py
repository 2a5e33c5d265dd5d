"""The first events of a tracker restored from a snapshot: read from the store on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable

from eventstore.errors import ConcurrencyError
from eventstore.events import EventDict


class _Head:
    """The first ``count`` events of a tracker restored from a snapshot, read on first use.

    ``load`` returns them (the store reads them); they must end with ``last``, the event the
    snapshot was taken at, or the conversation changed since: ``ConcurrencyError``.
    """

    __slots__ = ("_events", "_load", "_lock", "count", "last", "sender_id", "version")

    def __init__(
        self,
        sender_id: str,
        version: int,
        count: int,
        last: EventDict,
        load: Callable[[], list[EventDict]],
    ) -> None:
        self.sender_id = sender_id
        self.version = version
        self.count = count
        self.last = last
        self._load = load
        self._events: list[EventDict] | None = None
        self._lock = threading.Lock()

    def events(self) -> list[EventDict]:
        """The events (loaded once, then shared by every copy; never modified)."""
        with self._lock:
            if self._events is None:
                events = self._load()
                if len(events) != self.count or (events and events[-1] != self.last):
                    raise ConcurrencyError(self.sender_id, self.version, None)
                self._events = events
            return self._events


__all__ = ["_Head"]
