"""Tracker replay: events in, conversation state out, with no I/O (rasa-compat.md §2, §8).

A ``Tracker`` holds the events of one conversation that were loaded from a store (the
current session, or all of them) plus the events added since with ``update``. ``version``
is the seq of the last stored event; ``save`` appends ``unsaved_events`` checked against it.

State is kept incrementally: ``update`` costs O(1) for every event except ``rewind`` and
``undo``, which reset the state and replay the applied events, as Rasa does. Events are
immutable values here: the tracker never changes a dict it was given or stored, so a log
can be shared with the store that read it. See ``docs/tracker.md``.

No full copies: a tracker's events are an optional ``_Head`` (events a snapshot stands for,
read from the store only if someone asks for them), a prefix of a shared append-only list
(``_body[:_n]``, shared with the tracker cache and other copies) and a private ``_tail``.
The applied events are index ranges over those events. Copying a tracker copies neither.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from eventstore import replay
from eventstore.errors import EventValidationError
from eventstore.events import EventDict, EventVerbosity
from eventstore.lazy_head import _Head
from eventstore.sessions import (
    ACTION_LISTEN,
    ACTION_SESSION_START,
    SESSION_START_METADATA_SLOT,
    session_start_events,
)
from eventstore.tracker_views import TrackerViews

logger = logging.getLogger(__name__)

#: Slots a tracker has before any event: Rasa's default domain slot, so that tracker JSON
#: looks like what Rasa's stores and HTTP API return. Pass ``slots={}`` for none.
DEFAULT_SLOTS: Mapping[str, Any] = MappingProxyType({SESSION_START_METADATA_SLOT: None})
#: ``latest_message`` before any user message (never mutated; copied on output).
_EMPTY_MESSAGE: Mapping[str, Any] = MappingProxyType(
    {"intent": {}, "entities": [], "text": None, "message_id": None, "metadata": {}}
)
#: EventDict types whose step in the applied-events fold is more than an append.
_FOLD_SPECIAL = frozenset({"action", "undo", "rewind"})

#: Serialises in-place extensions of shared event lists (``Tracker._share``).
_SHARE_LOCK = threading.Lock()


def _timestamp(event: Mapping[str, Any]) -> float:
    """The event's timestamp as a float (0.0 when missing or not a number)."""
    value = event.get("timestamp")
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


class Tracker(TrackerViews):
    """The state of one conversation, rebuilt by replaying its events.

    ``slots`` gives the slots that exist before any event with their initial values (a
    domain's slots); every slot an event sets is added. Resets put values back to these
    initial values (``None`` for slots that only events created) and keep the keys. With
    ``known_slots_only`` (a tracker replayed with a domain), slot events for slots not in
    ``slots`` stay in the log but change no state, as in Rasa.
    """

    def __init__(
        self,
        sender_id: str,
        *,
        version: int = 0,
        slots: Mapping[str, Any] | None = None,
        known_slots_only: bool = False,
    ) -> None:
        self.sender_id = sender_id
        self.known_slots_only = known_slots_only
        # -- the events: head (lazy) + _body[:_n] (shared) + _tail (private) ----------
        self._head: _Head | None = None
        self._body: list[EventDict] = []
        self._n = 0
        self._tail: list[EventDict] = []
        self._count = 0
        #: ``_body`` is the list ``events`` returned: appends go to it, no cache extends it
        self._owned = False
        #: ``_body`` was handed out by ``events`` (by this tracker or the one it copies)
        self._exposed = False
        #: seq of the last event that is known to be stored (0 = nothing stored)
        self.version = version
        #: number of events that came from (or went to) the store
        self._stored = 0
        # -- state (reset by restart / session_started / rewind / undo) --------------
        self._initial_slots: dict[str, Any] = dict(DEFAULT_SLOTS if slots is None else slots)
        self._slots: dict[str, Any] = dict(self._initial_slots)
        self._paused = False
        self._followup: str | None = ACTION_LISTEN
        self._latest_action: dict[str, Any] = {}
        self._message: Mapping[str, Any] = _EMPTY_MESSAGE
        self._use_text: bool | None = None
        self._bot: EventDict | None = None
        self._loop: dict[str, Any] | None = None
        #: Rasa Pro's dialogue stack; None until a ``stack`` event is seen (Rasa 3.6 JSON)
        self._stack: list[Any] | None = None
        # -- facts about the whole log (never reset) ----------------------------------
        self._input_channel: str | None = None
        self._after_restart = 0  # index of the first event after the last restart
        self._last_session_started = -1  # index of the last session_started, -1 if none
        # -- applied events, folded incrementally (Rasa's ``applied_events``): half-open
        # index ranges [start, end) over the events, flattened (s0, e0, s1, e1, ...) --------
        self._applied: list[int] = []
        self._applied_from = 0  # index after the last restart / session_started
        self._applied_stale = False
        self._loop_names: set[str] = set()  # names of every active_loop/form event so far
        self._actions_seen: set[str] = set()  # action names since ``_applied_from``

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_events(
        cls,
        sender_id: str,
        events: Iterable[Mapping[str, Any]],
        *,
        version: int | None = None,
        slots: Mapping[str, Any] | None = None,
        known_slots_only: bool = False,
    ) -> Tracker:
        """Replay ``events``; they count as stored, the last one at ``version``.

        ``version`` defaults to the number of events (a log read from seq 1). The dicts
        are kept as they are (not copied): the tracker never modifies them.
        """
        tracker = cls(sender_id, slots=slots, known_slots_only=known_slots_only)
        apply = tracker._apply
        for event in events:
            apply(event if type(event) is dict else dict(event))
        tracker._body, tracker._n, tracker._tail = tracker._tail, len(tracker._tail), []
        tracker._stored = tracker._count
        tracker.version = tracker._count if version is None else version
        return tracker

    # -- mutation ----------------------------------------------------------------------
    def update(self, event: Mapping[str, Any]) -> None:
        """Add an event in memory (unsaved until the store's ``save``); stamps it if needed.

        The event is copied, so the caller's dict is never changed.
        """
        if type(event) is not dict and not isinstance(event, Mapping):
            raise EventValidationError(
                f"an event must be a JSON object, got {type(event).__name__}"
            )
        event = dict(event)
        if not event.get("timestamp"):
            event["timestamp"] = time.time()
        self._apply(event)

    def update_with_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Add several events in memory, in order (each stamped if it has no timestamp)."""
        for event in events:
            self.update(event)

    @property
    def events(self) -> list[EventDict]:
        """Every event of this tracker, in order (treat them as read-only).

        The first access builds this tracker's own list (reading a snapshot's events from
        the store if needed); later updates append to it.
        """
        if not self._owned:
            events = list(self._head.events()) if self._head is not None else []
            events += self._body[: self._n]
            events += self._tail
            self._head, self._body, self._n, self._tail = None, events, len(events), []
            self._owned = self._exposed = True
        return self._body

    def _event_at(self, index: int) -> EventDict:
        """The event at ``index`` without building the list (a head is read only if needed)."""
        head = self._head
        if head is not None:
            if index < head.count:
                return head.last if index == head.count - 1 else head.events()[index]
            index -= head.count
        if index < self._n:
            return self._body[index]
        return self._tail[index - self._n]

    def _slice(self, start: int) -> list[EventDict]:
        """The events from ``start`` on, as a new list."""
        if self._owned:
            return self._body[start:]
        head_count = self._head.count if self._head is not None else 0
        if start < head_count:
            return self.events[start:]
        start -= head_count
        if start < self._n:
            return [*self._body[start : self._n], *self._tail]
        return self._tail[start - self._n :]

    @property
    def unsaved_events(self) -> list[EventDict]:
        """Events added with ``update`` that the store has not stored yet."""
        return self._slice(self._stored)

    def mark_saved(self, version: int) -> None:
        """Record that every event is now stored and the log is at ``version``."""
        self._stored = self._count
        self.version = version

    def extend_stored(self, events: Iterable[EventDict], version: int) -> None:
        """Apply events read from the store after this tracker's last stored one.

        Used to bring a cached tracker up to date with only the log's tail.
        """
        if self._stored != self._count:
            raise ValueError("extend_stored on a tracker with unsaved events")
        apply = self._apply
        for event in events:
            apply(event)
        self._stored = self._count
        self.version = version

    @property
    def last_stored_event(self) -> EventDict | None:
        """The last event that came from (or went to) the store, or None."""
        return self._event_at(self._stored - 1) if self._stored else None

    def copy(self) -> Tracker:
        """An independent copy: events are shared (never mutated), state containers copied.

        Costs O(slots + unsaved events), not O(events).
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._owned = False  # our list may grow: the copy reads only its first ``_n``
        new._tail = list(self._tail)
        new._initial_slots = dict(self._initial_slots)
        new._slots = dict(self._slots)
        new._applied = list(self._applied)
        new._loop_names = set(self._loop_names)
        new._actions_seen = set(self._actions_seen)
        return new

    def _share(self) -> None:
        """Move the private tail into the shared list so copies of this tracker share it.

        The shared list is extended in place when nobody has extended it past our view and
        it was never handed out by ``events``; otherwise it is copied once.
        """
        if self._owned or not self._tail:
            return
        with _SHARE_LOCK:
            body = self._body
            if self._exposed or len(body) != self._n:
                body = body[: self._n]
                self._exposed = False
            body += self._tail
            self._body, self._n, self._tail = body, len(body), []

    def travel_back_in_time(self, target_time: float) -> Tracker:
        """A new tracker replaying the events up to the first one later than ``target_time``.

        Events stamped exactly ``target_time`` are kept (the HTTP ``until`` parameter). As in
        Rasa, replay stops at the first later event, so the result is always a prefix of the
        log. ``version`` is the seq of the last stored event kept.
        """
        kept: list[EventDict] = []
        for event in self.events:
            if _timestamp(event) > target_time:
                break
            kept.append(event)
        tracker = Tracker.from_events(
            self.sender_id,
            kept,
            slots=self._initial_slots,
            known_slots_only=self.known_slots_only,
        )
        tracker._stored = min(len(kept), self._stored)
        tracker.version = self.version - (self._stored - tracker._stored)
        return tracker

    # -- the replay --------------------------------------------------------------------
    def _apply(self, event: EventDict) -> None:
        """Append one event to the log and fold it into the state."""
        if self._owned:
            self._body.append(event)
            self._n += 1
        else:
            self._tail.append(event)
        index = self._count
        self._count = count = index + 1
        kind = event.get("event")
        if kind == "restart" or kind == "session_started":
            if kind == "restart":
                self._after_restart = count
            else:
                self._last_session_started = index
            self._applied = []
            self._applied_from = count
            self._applied_stale = False
            self._actions_seen = set()
        else:
            if kind == "user":
                self._input_channel = event.get("input_channel")
            elif kind == "action":
                name = event.get("name")
                if type(name) is str:
                    self._actions_seen.add(name)
            elif kind in replay.LOOP_EVENTS:
                name = event.get("name")
                if name and type(name) is str and name not in self._loop_names:
                    self._loop_names.add(name)
                    # Applied events already folded may have kept a run of this loop that
                    # pruning would now drop: refold lazily, only when someone needs them.
                    if name in self._actions_seen:
                        self._applied_stale = True
            if not self._applied_stale:
                if kind in _FOLD_SPECIAL:
                    self._fold_applied(self._applied, index, event, kind)
                else:
                    applied = self._applied
                    if applied and applied[-1] == index:
                        applied[-1] = count
                    else:
                        applied += (index, count)
            if kind == "rewind" or kind == "undo":
                self._replay_applied()
                return
        handler = replay.STATE_HANDLERS.get(kind)  # type: ignore[arg-type]
        if handler is not None:
            handler(self, event)

    def _fold_applied(self, applied: list[int], index: int, event: EventDict, kind: Any) -> None:
        """One step of Rasa's ``applied_events`` (restart/session_started handled by callers).

        ``applied`` is a list of index ranges; ``index`` is the event's index.
        """
        at = self._event_at
        if kind == "undo":
            replay.pop_through(applied, at, "action")
        elif kind == "rewind":
            replay.pop_through(applied, at, "user")
            replay.pop_through(applied, at, "action")
        elif (
            kind == "action"
            and event.get("name") in self._loop_names
            and not replay.first_run_or_unhappy_path(event["name"], self._reversed(applied))
        ):
            replay.prune_since_last_run(event["name"], applied, at)
        elif applied and applied[-1] == index:
            applied[-1] = index + 1
        else:
            applied += (index, index + 1)

    def _applied_ranges(self) -> list[int]:
        """The applied events' index ranges (refolded first if a loop name appeared)."""
        if self._applied_stale:
            applied: list[int] = []
            at = self._event_at
            for index in range(self._applied_from, self._count):
                event = at(index)
                self._fold_applied(applied, index, event, event.get("event"))
            self._applied = applied
            self._applied_stale = False
        return self._applied

    def _applied_list(self) -> list[EventDict]:
        """The applied events, in order."""
        at = self._event_at
        ranges = self._applied_ranges()
        pairs = zip(ranges[::2], ranges[1::2], strict=True)
        return [at(i) for start, end in pairs for i in range(start, end)]

    def _reversed(self, ranges: list[int]) -> Iterator[EventDict]:
        """The events of ``ranges``, last first (lazily: callers usually stop early)."""
        at = self._event_at
        for r in range(len(ranges) - 2, -1, -2):
            for index in range(ranges[r + 1] - 1, ranges[r] - 1, -1):
                yield at(index)

    def _replay_applied(self) -> None:
        """Rewind/undo: reset the state and apply the applied events again."""
        self._reset()
        handlers = replay.STATE_HANDLERS
        for event in self._applied_list():
            handler = handlers.get(event.get("event"))  # type: ignore[arg-type]
            if handler is not None:
                handler(self, event)

    def _reset(self) -> None:
        initial = self._initial_slots
        slots = self._slots
        for name in slots:
            slots[name] = initial.get(name)
        self._paused = False
        self._followup = ACTION_LISTEN
        self._latest_action = {}
        self._message = _EMPTY_MESSAGE
        self._use_text = None
        self._bot = None
        self._loop = None
        if self._stack is not None:
            self._stack = []

    # -- sessions ----------------------------------------------------------------------
    def has_session_started(self) -> bool:
        """Whether a ``session_started`` event was logged after the last ``restart``."""
        return self._last_session_started >= self._after_restart

    def session_expired(self, now: float | None = None, expiration_minutes: float = 60.0) -> bool:
        """Rasa's rule: the last applied ``user`` event is more than ``expiration_minutes``
        before ``now``. False when sessions are disabled (minutes <= 0) or nobody spoke."""
        if expiration_minutes <= 0:
            return False
        for event in self._reversed(self._applied_ranges()):
            if event.get("event") == "user":
                now = time.time() if now is None else now
                return (now - _timestamp(event)) / 60.0 > expiration_minutes
        return False

    def needs_session_start(
        self, now: float | None = None, expiration_minutes: float = 60.0
    ) -> bool:
        """Whether a bot should start a session before handling the next message:
        no applied events (fresh, or after a restart), or the session expired."""
        return not self._applied_ranges() or self.session_expired(now, expiration_minutes)

    def start_session(
        self,
        *,
        metadata: Mapping[str, Any] | None = None,
        carry_over_slots: bool = True,
        timestamp: float | None = None,
    ) -> list[EventDict]:
        """Add the session-start events (see ``session_start_events``) and return them."""
        events = session_start_events(
            self, metadata=metadata, carry_over_slots=carry_over_slots, timestamp=timestamp
        )
        self.update_with_events(events)
        return events

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return (
            f"Tracker(sender_id={self.sender_id!r}, events={self._count}, version={self.version})"
        )


__all__ = [
    "ACTION_LISTEN",
    "ACTION_SESSION_START",
    "DEFAULT_SLOTS",
    "SESSION_START_METADATA_SLOT",
    "EventVerbosity",
    "Tracker",
    "session_start_events",
]
