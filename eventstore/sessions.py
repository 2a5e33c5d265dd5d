"""Conversation policy Rasa applies around the log (rasa-compat.md §2 "Sessions"): a
session starts with its own events, and a new conversation gets a session start before
its first turn. Used by the HTTP API and the Rasa plug-in alike.
"""

from __future__ import annotations

import copy as _copy
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventstore.errors import ConcurrencyError, EventValidationError
from eventstore.events import EventDict

if TYPE_CHECKING:
    from eventstore.stores.base import TrackerStore
    from eventstore.tracker import Tracker


ACTION_LISTEN = "action_listen"
ACTION_SESSION_START = "action_session_start"
#: The slot Rasa fills with the metadata of the message that started a session.
SESSION_START_METADATA_SLOT = "session_started_metadata"
#: Appends that lose the race to start a conversation and are tried again after it.
SESSION_START_RETRIES = 3


def _action_event(name: str, stamp: float, confidence: float | None) -> EventDict:
    """An ``action`` event as Rasa logs it for a session start (no policy)."""
    return {
        "event": "action",
        "timestamp": stamp,
        "name": name,
        "policy": None,
        "confidence": confidence,
        "action_text": None,
        "hide_rule_turn": False,
    }


def _slot_event(name: Any, value: Any, stamp: float, metadata: Any = None) -> EventDict:
    """A ``slot`` event; ``metadata`` is written only when there is some, as Rasa does."""
    event: EventDict = {"event": "slot", "timestamp": stamp, "name": name, "value": value}
    if metadata:
        event["metadata"] = metadata
    return event


def session_start_events(
    tracker: Tracker | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    carry_over_slots: bool = True,
    timestamp: float | None = None,
) -> list[EventDict]:
    """The events Rasa logs to start a session (rasa-compat.md §2 "Sessions").

    ``slot session_started_metadata`` (only with ``metadata``), ``action
    action_session_start``, ``session_started``, a copy of every applied ``slot`` event of
    ``tracker`` (with ``carry_over_slots``; the metadata slot included, as in Rasa), then
    ``action action_listen``. All carry ``timestamp`` (default: now).
    """
    stamp = time.time() if timestamp is None else timestamp
    if not math.isfinite(stamp):
        raise EventValidationError("timestamp must be finite", field="timestamp")
    head: list[EventDict] = []
    if metadata:
        head.append(_slot_event(SESSION_START_METADATA_SLOT, _copy.deepcopy(dict(metadata)), stamp))
    head.append(_action_event(ACTION_SESSION_START, stamp, 1.0))
    carried: list[EventDict] = []
    if carry_over_slots:
        before = tracker.applied_events() if tracker is not None else []
        for event in [*before, *head]:
            if event.get("event") == "slot":
                value, meta = _copy.deepcopy((event.get("value"), event.get("metadata")))
                carried.append(_slot_event(event.get("name"), value, stamp, meta))
    started: EventDict = {"event": "session_started", "timestamp": stamp}
    return [*head, started, *carried, _action_event(ACTION_LISTEN, stamp, None)]


def starts_session(events: Sequence[Any]) -> bool:
    """Whether the events begin with ``action_session_start`` followed by ``session_started``."""
    return (
        len(events) >= 2
        and isinstance(events[0], dict)
        and isinstance(events[1], dict)
        and events[0].get("event") == "action"
        and events[0].get("name") == ACTION_SESSION_START
        and events[1].get("event") == "session_started"
    )


@dataclass(frozen=True)
class Appended:
    """What ``append_turn`` stored: the new version and how many events (prefix included)."""

    version: int
    stored: int


def append_turn(
    store: TrackerStore,
    sender_id: str,
    events: list[dict[str, Any]],
    expected_version: int | None = None,
    *,
    start_session: bool = True,
) -> Appended:
    """Append a turn all or nothing; a new conversation first gets a session start (as Rasa).

    The session-start events go first unless ``start_session`` is false or the turn itself
    begins with them; they are appended at version 0, so two writers starting the same
    conversation cannot both add them: the loser appends after the winner (up to
    ``SESSION_START_RETRIES`` times), unless the caller asked for ``expected_version``.
    A bad event is named by its place in ``events`` (not counting the prefix).
    """
    for attempt in range(SESSION_START_RETRIES):
        prefix: list[dict[str, Any]] = []
        if start_session and events and not starts_session(events):
            current = expected_version
            if current is None:
                current = store.version(sender_id)
            if current == 0:
                prefix = session_start_events()
        check = expected_version if expected_version is not None else (0 if prefix else None)
        try:
            version = store.append(sender_id, prefix + events, expected_version=check)
        except EventValidationError as exc:
            if prefix and exc.index is not None:
                raise EventValidationError(
                    exc.reason, index=exc.index - len(prefix), field=exc.field
                ) from None
            raise
        except ConcurrencyError:
            if expected_version is not None or attempt == SESSION_START_RETRIES - 1:
                raise
            continue
        return Appended(version, len(prefix) + len(events))
    raise AssertionError("unreachable")  # pragma: no cover
