"""Tracker replay: events in, conversation state out, with no I/O (rasa-compat.md §2, §8).

A ``Tracker`` holds the events of one conversation that were loaded from a store (the
current session, or all of them) plus the events added since with ``update``. ``version``
is the seq of the last stored event; ``save`` appends ``unsaved_events`` checked against it.

State is kept incrementally: ``update`` costs O(1) for every event except ``rewind`` and
``undo``, which reset the state and replay the applied events, as Rasa does. Events are
immutable values here: the tracker never changes a dict it was given or stored, so a log
can be shared with the store that read it. See ``docs/tracker.md``.
"""

from __future__ import annotations

import copy as _copy
import math
import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar

from eventstore.errors import EventValidationError

ACTION_LISTEN = "action_listen"
ACTION_SESSION_START = "action_session_start"
#: The slot Rasa fills with the metadata of the message that started a session.
SESSION_START_METADATA_SLOT = "session_started_metadata"
#: Slots a tracker has before any event: Rasa's default domain slot, so that tracker JSON
#: looks like what Rasa's stores and HTTP API return. Pass ``slots={}`` for none.
DEFAULT_SLOTS: Mapping[str, Any] = MappingProxyType({SESSION_START_METADATA_SLOT: None})
#: Rasa's marker for "no loop" inside an active loop (``active_loop_name`` is then None).
_SHOULD_NOT_BE_SET = "should_not_be_set"
#: ``latest_message`` before any user message (never mutated; copied on output).
_EMPTY_MESSAGE: Mapping[str, Any] = MappingProxyType(
    {"intent": {}, "entities": [], "text": None, "message_id": None, "metadata": {}}
)
_LOOP_EVENTS = frozenset({"active_loop", "form"})
#: Event types that loop pruning removes between two runs of a loop (Rasa's applied events).
_PRUNED_BY_LOOP = frozenset({"action", "user", "user_featurization"})
#: Event types whose step in the applied-events fold is more than an append.
_FOLD_SPECIAL = frozenset({"action", "undo", "rewind"})

Event = dict[str, Any]


class EventVerbosity(StrEnum):
    """Which events ``Tracker.current_state`` includes (Rasa's ``include_events``)."""

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


def _timestamp(event: Mapping[str, Any]) -> float:
    """The event's timestamp as a float (0.0 when missing or not a number)."""
    value = event.get("timestamp")
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


class Tracker:
    """The state of one conversation, rebuilt by replaying its events.

    ``slots`` gives the slots that exist before any event with their initial values (a
    domain's slots); every slot an event sets is added. Resets put values back to these
    initial values (``None`` for slots that only events created) and keep the keys.
    """

    _STATE_HANDLERS: ClassVar[dict[str, Callable[[Tracker, Event], None]]]

    def __init__(
        self, sender_id: str, *, version: int = 0, slots: Mapping[str, Any] | None = None
    ) -> None:
        self.sender_id = sender_id
        self.events: list[Event] = []
        #: seq of the last event that is known to be stored (0 = nothing stored)
        self.version = version
        #: number of events in ``self.events`` that came from (or went to) the store
        self._stored = 0
        # -- state (reset by restart / session_started / rewind / undo) --------------
        self._initial_slots: dict[str, Any] = dict(DEFAULT_SLOTS if slots is None else slots)
        self._slots: dict[str, Any] = dict(self._initial_slots)
        self._paused = False
        self._followup: str | None = ACTION_LISTEN
        self._latest_action: dict[str, Any] = {}
        self._message: Mapping[str, Any] = _EMPTY_MESSAGE
        self._use_text: bool | None = None
        self._bot: Event | None = None
        self._loop: dict[str, Any] | None = None
        # -- facts about the whole log (never reset) ----------------------------------
        self._input_channel: str | None = None
        self._after_restart = 0  # index of the first event after the last restart
        self._last_session_started = -1  # index of the last session_started, -1 if none
        # -- applied events, folded incrementally (Rasa's ``applied_events``) ---------
        self._applied: list[Event] = []
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
    ) -> Tracker:
        """Replay ``events``; they count as stored, the last one at ``version``.

        ``version`` defaults to the number of events (a log read from seq 1). The dicts
        are kept as they are (not copied): the tracker never modifies them.
        """
        tracker = cls(sender_id, slots=slots)
        apply = tracker._apply
        for event in events:
            apply(event if type(event) is dict else dict(event))
        tracker._stored = len(tracker.events)
        tracker.version = len(tracker.events) if version is None else version
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
    def unsaved_events(self) -> list[Event]:
        """Events added with ``update`` that the store has not stored yet."""
        return self.events[self._stored :]

    def mark_saved(self, version: int) -> None:
        """Record that every event is now stored and the log is at ``version``."""
        self._stored = len(self.events)
        self.version = version

    def extend_stored(self, events: Iterable[Event], version: int) -> None:
        """Apply events read from the store after this tracker's last stored one.

        Used to bring a cached tracker up to date with only the log's tail.
        """
        if self._stored != len(self.events):
            raise ValueError("extend_stored on a tracker with unsaved events")
        apply = self._apply
        for event in events:
            apply(event)
        self._stored = len(self.events)
        self.version = version

    @property
    def last_stored_event(self) -> Event | None:
        """The last event that came from (or went to) the store, or None."""
        return self.events[self._stored - 1] if self._stored else None

    def copy(self) -> Tracker:
        """An independent copy; events and internal state values are shared, never mutated."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.events = list(self.events)
        new._initial_slots = dict(self._initial_slots)
        new._slots = dict(self._slots)
        new._applied = list(self._applied)
        new._loop_names = set(self._loop_names)
        new._actions_seen = set(self._actions_seen)
        return new

    def travel_back_in_time(self, target_time: float) -> Tracker:
        """A new tracker replaying the events up to the first one later than ``target_time``.

        Events stamped exactly ``target_time`` are kept (the HTTP ``until`` parameter). As in
        Rasa, replay stops at the first later event, so the result is always a prefix of the
        log. ``version`` is the seq of the last stored event kept.
        """
        kept: list[Event] = []
        for event in self.events:
            if _timestamp(event) > target_time:
                break
            kept.append(event)
        tracker = Tracker.from_events(self.sender_id, kept, slots=self._initial_slots)
        tracker._stored = min(len(kept), self._stored)
        tracker.version = self.version - (self._stored - tracker._stored)
        return tracker

    # -- the replay --------------------------------------------------------------------
    def _apply(self, event: Event) -> None:
        """Append one event to the log and fold it into the state."""
        events = self.events
        events.append(event)
        kind = event.get("event")
        if kind == "restart" or kind == "session_started":
            if kind == "restart":
                self._after_restart = len(events)
            else:
                self._last_session_started = len(events) - 1
            self._applied = []
            self._applied_from = len(events)
            self._applied_stale = False
            self._actions_seen = set()
        else:
            if kind == "user":
                self._input_channel = event.get("input_channel")
            elif kind == "action":
                name = event.get("name")
                if type(name) is str:
                    self._actions_seen.add(name)
            elif kind in _LOOP_EVENTS:
                name = event.get("name")
                if name and type(name) is str and name not in self._loop_names:
                    self._loop_names.add(name)
                    # Applied events already folded may have kept a run of this loop that
                    # pruning would now drop: refold lazily, only when someone needs them.
                    if name in self._actions_seen:
                        self._applied_stale = True
            if not self._applied_stale:
                if kind in _FOLD_SPECIAL:
                    self._fold_applied(self._applied, event, kind)
                else:
                    self._applied.append(event)
            if kind == "rewind" or kind == "undo":
                self._replay_applied()
                return
        handler = self._STATE_HANDLERS.get(kind)  # type: ignore[arg-type]
        if handler is not None:
            handler(self, event)

    def _fold_applied(self, applied: list[Event], event: Event, kind: Any) -> None:
        """One step of Rasa's ``applied_events`` (restart/session_started handled by callers)."""
        if kind == "undo":
            _pop_through(applied, "action")
        elif kind == "rewind":
            _pop_through(applied, "user")
            _pop_through(applied, "action")
        elif (
            kind == "action"
            and event.get("name") in self._loop_names
            and not _first_run_or_unhappy_path(event["name"], applied)
        ):
            _prune_since_last_run(event["name"], applied)
        else:
            applied.append(event)

    def _applied_list(self) -> list[Event]:
        """The applied events (the internal list; refolded first if a loop name appeared)."""
        if self._applied_stale:
            applied: list[Event] = []
            for event in self.events[self._applied_from :]:
                self._fold_applied(applied, event, event.get("event"))
            self._applied = applied
            self._applied_stale = False
        return self._applied

    def _replay_applied(self) -> None:
        """Rewind/undo: reset the state and apply the applied events again."""
        self._reset()
        handlers = self._STATE_HANDLERS
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

    # -- effect of each event type on the state (rasa-compat.md §1) -------------------
    def _on_user(self, event: Event) -> None:
        parse_data = event.get("parse_data")
        if type(parse_data) is not dict and not isinstance(parse_data, Mapping):
            parse_data = {}
        intent = parse_data.get("intent")
        entities = parse_data.get("entities")
        message = {
            "intent": intent if intent else {},
            "entities": None,
            "text": event.get("text"),
            "message_id": event.get("message_id"),
            "metadata": event.get("metadata") or {},
        }
        message.update(parse_data)
        message["entities"] = entities if entities else []
        self._message = message
        # Rasa's default featurization: by text when there is no intent, and vice versa.
        text = event.get("text")
        has_intent = isinstance(intent, Mapping) and bool(intent.get("name"))
        self._use_text = None if bool(text) == has_intent else bool(text)
        self._followup = None

    def _on_bot(self, event: Event) -> None:
        self._bot = event

    def _on_action(self, event: Event) -> None:
        name = event.get("name")
        text = event.get("action_text")
        self._latest_action = {"action_name": name} if name else {"action_text": text}
        self._followup = None
        loop = self._loop
        if loop is not None:
            loop_name = self.active_loop_name
            interrupted = False if loop_name else loop["is_interrupted"]
            rejected = (
                False if self._latest_action.get("action_name") == loop_name else loop["rejected"]
            )
            if interrupted != loop["is_interrupted"] or rejected != loop["rejected"]:
                self._loop = {**loop, "is_interrupted": interrupted, "rejected": rejected}

    def _on_slot(self, event: Event) -> None:
        name = event.get("name")
        if isinstance(name, str):
            self._slots[name] = event.get("value")

    def _on_restart(self, event: Event) -> None:
        self._reset()
        self._followup = ACTION_SESSION_START

    def _on_session_started(self, event: Event) -> None:
        self._reset()

    def _on_reset_slots(self, event: Event) -> None:
        initial = self._initial_slots
        slots = self._slots
        for name in slots:
            slots[name] = initial.get(name)

    def _on_followup(self, event: Event) -> None:
        self._followup = event.get("name")

    def _on_pause(self, event: Event) -> None:
        self._paused = True

    def _on_resume(self, event: Event) -> None:
        self._paused = False

    def _on_active_loop(self, event: Event) -> None:
        name = event.get("name")
        if name is None:
            self._loop = None
        else:
            self._loop = {
                "name": name,
                "is_interrupted": False,
                "rejected": False,
                "trigger_message": dict(self._message),
            }

    def _on_loop_interrupted(self, event: Event) -> None:
        if self._loop is not None:
            self._loop = {**self._loop, "is_interrupted": event.get("is_interrupted", False)}

    def _on_form_validation(self, event: Event) -> None:
        if self._loop is not None:
            self._loop = {**self._loop, "is_interrupted": not event.get("validate", True)}

    def _on_rejected(self, event: Event) -> None:
        if self._loop is not None and event.get("name") == self.active_loop_name:
            self._loop = {**self._loop, "rejected": True}

    def _on_featurization(self, event: Event) -> None:
        if self.latest_action_name == ACTION_LISTEN:
            self._use_text = event.get("use_text_for_featurization")

    def _on_entities(self, event: Event) -> None:
        added = event.get("entities")
        if self.latest_action_name != ACTION_LISTEN or not isinstance(added, list):
            return
        merged = list(self._message["entities"])
        for entity in added:
            if entity not in merged:
                merged.append(entity)
        self._message = {**self._message, "entities": merged}

    # -- state -------------------------------------------------------------------------
    @property
    def slots(self) -> dict[str, Any]:
        """Current slot values by name (a copy)."""
        return dict(self._slots)

    def get_slot(self, name: str) -> Any:
        """The value of one slot, None when it was never set."""
        return self._slots.get(name)

    @property
    def latest_message(self) -> dict[str, Any]:
        """The last applied user message's parse data, entities merged (a copy)."""
        return _copy.deepcopy(dict(self._message))

    @property
    def use_text_for_featurization(self) -> bool | None:
        """The latest message's ``user_featurization`` flag (not part of the state JSON)."""
        return self._use_text

    @property
    def latest_bot_utterance(self) -> Event | None:
        """The last applied ``bot`` event, or None."""
        return self._bot

    @property
    def latest_event_time(self) -> float | None:
        """Timestamp of the last event of any type, or None."""
        return self.events[-1].get("timestamp") if self.events else None

    @property
    def followup_action(self) -> str | None:
        """The action to run next, if one is forced (``action_listen`` when fresh)."""
        return self._followup

    @property
    def paused(self) -> bool:
        """Whether the conversation is paused."""
        return self._paused

    def is_paused(self) -> bool:
        """Whether the conversation is paused (Rasa's name)."""
        return self._paused

    @property
    def latest_input_channel(self) -> str | None:
        """The input channel of the last ``user`` event among *all* events."""
        return self._input_channel

    @property
    def active_loop(self) -> dict[str, Any]:
        """``{}`` or ``{name, is_interrupted, rejected, trigger_message}`` (a copy)."""
        return _copy.deepcopy(self._loop) if self._loop is not None else {}

    @property
    def active_loop_name(self) -> str | None:
        """The name of the active loop, or None."""
        if self._loop is None or self._loop["name"] == _SHOULD_NOT_BE_SET:
            return None
        name = self._loop["name"]
        return name if isinstance(name, str) else None

    @property
    def latest_action(self) -> dict[str, Any]:
        """``{}``, ``{"action_name": ..}`` or ``{"action_text": ..}``."""
        return dict(self._latest_action)

    @property
    def latest_action_name(self) -> str | None:
        """The latest action's name, or its text for an end-to-end action, or None."""
        action = self._latest_action
        return action.get("action_name") or action.get("action_text")

    def applied_events(self) -> list[Event]:
        """The events that make the current state: without what rewind/undo reverted,
        before the last restart/session start, or between two runs of a loop."""
        return list(self._applied_list())

    def events_after_latest_restart(self) -> list[Event]:
        """The events strictly after the last ``restart`` (all events if there is none)."""
        return self.events[self._after_restart :]

    def current_state(
        self, include_events: str | EventVerbosity = EventVerbosity.AFTER_RESTART
    ) -> dict[str, Any]:
        """The tracker JSON of Rasa's HTTP API, with the keys in Rasa's order.

        ``include_events`` is an ``EventVerbosity`` or its name in any case; events are the
        stored dicts themselves (treat them as read-only), ``None`` for ``NONE``.
        """
        verbosity = EventVerbosity.parse(include_events)
        events: list[Event] | None
        if verbosity is EventVerbosity.ALL:
            events = list(self.events)
        elif verbosity is EventVerbosity.AFTER_RESTART:
            events = self.events_after_latest_restart()
        elif verbosity is EventVerbosity.APPLIED:
            events = self.applied_events()
        else:
            events = None
        return {
            "sender_id": self.sender_id,
            "slots": _copy.deepcopy(self._slots),
            "latest_message": self.latest_message,
            "latest_event_time": self.latest_event_time,
            "followup_action": self._followup,
            "paused": self._paused,
            "events": events,
            "latest_input_channel": self._input_channel,
            "active_loop": self.active_loop,
            "latest_action": self.latest_action,
            "latest_action_name": self.latest_action_name,
        }

    def as_dict(
        self, include_events: str | EventVerbosity = EventVerbosity.AFTER_RESTART
    ) -> dict[str, Any]:
        """Alias of ``current_state``."""
        return self.current_state(include_events)

    # -- sessions ----------------------------------------------------------------------
    def has_session_started(self) -> bool:
        """Whether a ``session_started`` event was logged after the last ``restart``."""
        return self._last_session_started >= self._after_restart

    def session_expired(self, now: float | None = None, expiration_minutes: float = 60.0) -> bool:
        """Rasa's rule: the last applied ``user`` event is more than ``expiration_minutes``
        before ``now``. False when sessions are disabled (minutes <= 0) or nobody spoke."""
        if expiration_minutes <= 0:
            return False
        for event in reversed(self._applied_list()):
            if event.get("event") == "user":
                now = time.time() if now is None else now
                return (now - _timestamp(event)) / 60.0 > expiration_minutes
        return False

    def needs_session_start(
        self, now: float | None = None, expiration_minutes: float = 60.0
    ) -> bool:
        """Whether a bot should start a session before handling the next message:
        no applied events (fresh, or after a restart), or the session expired."""
        return not self._applied_list() or self.session_expired(now, expiration_minutes)

    def start_session(
        self,
        *,
        metadata: Mapping[str, Any] | None = None,
        carry_over_slots: bool = True,
        timestamp: float | None = None,
    ) -> list[Event]:
        """Add the session-start events (see ``session_start_events``) and return them."""
        events = session_start_events(
            self, metadata=metadata, carry_over_slots=carry_over_slots, timestamp=timestamp
        )
        self.update_with_events(events)
        return events

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return (
            f"Tracker(sender_id={self.sender_id!r}, events={len(self.events)}, "
            f"version={self.version})"
        )


Tracker._STATE_HANDLERS = {
    "user": Tracker._on_user,
    "bot": Tracker._on_bot,
    "action": Tracker._on_action,
    "slot": Tracker._on_slot,
    "restart": Tracker._on_restart,
    "session_started": Tracker._on_session_started,
    "reset_slots": Tracker._on_reset_slots,
    "followup": Tracker._on_followup,
    "pause": Tracker._on_pause,
    "resume": Tracker._on_resume,
    "active_loop": Tracker._on_active_loop,
    "form": Tracker._on_active_loop,
    "loop_interrupted": Tracker._on_loop_interrupted,
    "form_validation": Tracker._on_form_validation,
    "action_execution_rejected": Tracker._on_rejected,
    "user_featurization": Tracker._on_featurization,
    "entities": Tracker._on_entities,
}


# -- applied-events helpers (rasa-compat.md §2, §8) ----------------------------------
def _pop_through(applied: list[Event], kind: str) -> None:
    """Drop events from the end up to and including the last one of type ``kind``."""
    while applied:
        if applied.pop().get("event") == kind:
            return


def _first_run_or_unhappy_path(loop: str, applied: list[Event]) -> bool:
    """Whether a run of ``loop`` must be kept: no earlier run of it since a deactivation,
    or the loop was rejected / another action answered the user since (unhappy path)."""
    next_action: Any = None
    for event in reversed(applied):
        kind = event.get("event")
        if kind in _LOOP_EVENTS and event.get("name") is None:
            return True
        if kind == "action_execution_rejected" and event.get("name") == loop:
            return True
        if kind == "user" and next_action is not None and next_action != loop:
            return True
        if kind == "action":
            name = event.get("name")
            if name == loop:
                return False
            next_action = name
    return True


def _prune_since_last_run(loop: str, applied: list[Event]) -> None:
    """Drop the user/action/featurization events since the previous run of ``loop``."""
    index = len(applied) - 1
    while index >= 0:
        event = applied[index]
        kind = event.get("event")
        if kind == "action" and event.get("name") == loop:
            return
        if kind in _PRUNED_BY_LOOP:
            del applied[index]
        index -= 1


# -- sessions ------------------------------------------------------------------------
def _action_event(name: str, stamp: float, confidence: float | None) -> Event:
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


def _slot_event(name: Any, value: Any, stamp: float, metadata: Any = None) -> Event:
    """A ``slot`` event; ``metadata`` is written only when there is some, as Rasa does."""
    event: Event = {"event": "slot", "timestamp": stamp, "name": name, "value": value}
    if metadata:
        event["metadata"] = metadata
    return event


def session_start_events(
    tracker: Tracker | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    carry_over_slots: bool = True,
    timestamp: float | None = None,
) -> list[Event]:
    """The events Rasa logs to start a session (rasa-compat.md §2 "Sessions").

    ``slot session_started_metadata`` (only with ``metadata``), ``action
    action_session_start``, ``session_started``, a copy of every applied ``slot`` event of
    ``tracker`` (with ``carry_over_slots``; the metadata slot included, as in Rasa), then
    ``action action_listen``. All carry ``timestamp`` (default: now).
    """
    stamp = time.time() if timestamp is None else timestamp
    if not math.isfinite(stamp):
        raise EventValidationError("timestamp must be finite", field="timestamp")
    head: list[Event] = []
    if metadata:
        head.append(_slot_event(SESSION_START_METADATA_SLOT, _copy.deepcopy(dict(metadata)), stamp))
    head.append(_action_event(ACTION_SESSION_START, stamp, 1.0))
    carried: list[Event] = []
    if carry_over_slots:
        before = tracker.applied_events() if tracker is not None else []
        for event in [*before, *head]:
            if event.get("event") == "slot":
                value, meta = _copy.deepcopy((event.get("value"), event.get("metadata")))
                carried.append(_slot_event(event.get("name"), value, stamp, meta))
    started: Event = {"event": "session_started", "timestamp": stamp}
    return [*head, started, *carried, _action_event(ACTION_LISTEN, stamp, None)]


__all__ = [
    "ACTION_LISTEN",
    "ACTION_SESSION_START",
    "DEFAULT_SLOTS",
    "SESSION_START_METADATA_SLOT",
    "EventVerbosity",
    "Tracker",
    "session_start_events",
]
