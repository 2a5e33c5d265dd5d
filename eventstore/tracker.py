"""Tracker replay: events in, conversation state out, with no I/O (rasa-compat.md §2, §8).

A ``Tracker`` holds the events of one conversation that were loaded from a store (the
current session, or all of them) plus the events added since with ``update``. ``version``
is the seq of the last stored event; ``save`` appends ``unsaved_events`` checked against it.

NOTE: the replay here is being completed (sessions, rewind/undo, loops) - see issue 2.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from eventstore.errors import EventValidationError


class EventVerbosity(StrEnum):
    """Which events ``Tracker.as_dict`` includes (Rasa's ``include_events``)."""

    ALL = "ALL"
    APPLIED = "APPLIED"
    AFTER_RESTART = "AFTER_RESTART"
    NONE = "NONE"

    @classmethod
    def parse(cls, value: str | EventVerbosity) -> EventVerbosity:
        """Case-insensitive lookup; an unknown name raises ``EventValidationError``."""
        if isinstance(value, EventVerbosity):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            names = ", ".join(v.value for v in cls)
            raise EventValidationError(
                f"include_events must be one of {names}, got {value!r}", field="include_events"
            ) from None


class Tracker:
    """The state of one conversation, rebuilt by replaying its events."""

    def __init__(self, sender_id: str, *, version: int = 0) -> None:
        self.sender_id = sender_id
        self.events: list[dict[str, Any]] = []
        #: seq of the last event that is known to be stored (0 = nothing stored)
        self.version = version
        #: number of events in ``self.events`` that came from (or went to) the store
        self._stored = 0

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_events(
        cls, sender_id: str, events: Iterable[Mapping[str, Any]], *, version: int | None = None
    ) -> Tracker:
        """Replay ``events``; they count as stored, the last one at ``version``.

        ``version`` defaults to the number of events (a log read from seq 1).
        """
        tracker = cls(sender_id)
        for event in events:
            tracker._apply(dict(event))
        tracker._stored = len(tracker.events)
        tracker.version = len(tracker.events) if version is None else version
        return tracker

    # -- mutation ----------------------------------------------------------------------
    def update(self, event: Mapping[str, Any]) -> None:
        """Add an event in memory (unsaved until the store's ``save``); stamps it if needed."""
        event = dict(event)
        if not event.get("timestamp"):
            event["timestamp"] = time.time()
        self._apply(event)

    def update_with_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Add several events in memory, in order."""
        for event in events:
            self.update(event)

    @property
    def unsaved_events(self) -> list[dict[str, Any]]:
        """Events added with ``update`` that the store has not stored yet."""
        return self.events[self._stored :]

    def mark_saved(self, version: int) -> None:
        """Record that every event is now stored and the log is at ``version``."""
        self._stored = len(self.events)
        self.version = version

    def copy(self) -> Tracker:
        """A deep copy, independent of this tracker."""
        return copy.deepcopy(self)

    def _apply(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    # -- state -------------------------------------------------------------------------
    @property
    def latest_event_time(self) -> float | None:
        """Timestamp of the last event of any type, or None."""
        return self.events[-1].get("timestamp") if self.events else None

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return (
            f"Tracker(sender_id={self.sender_id!r}, events={len(self.events)}, "
            f"version={self.version})"
        )
