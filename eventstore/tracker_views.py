"""What a ``Tracker`` shows of its state: slots, latest message, loop, stack, Rasa's JSON.

A mixin of read-only views over the state ``eventstore.tracker.Tracker`` keeps up to date
as events arrive (it holds the replay; this holds what callers read). Values are copies,
so no caller can change the tracker's state through them.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Mapping
from typing import Any

from eventstore.events import EventDict, EventVerbosity
from eventstore.flows import active_flow

#: Rasa's marker for "no loop" inside an active loop (``active_loop_name`` is then None).
_SHOULD_NOT_BE_SET = "should_not_be_set"


class TrackerViews:
    """Read-only views of the state; ``Tracker`` keeps the attributes below current."""

    sender_id: str
    _count: int
    _slots: dict[str, Any]
    _paused: bool
    _followup: str | None
    _latest_action: dict[str, Any]
    _message: Mapping[str, Any]
    _use_text: bool | None
    _bot: EventDict | None
    _loop: dict[str, Any] | None
    _stack: list[Any] | None
    _input_channel: str | None
    _after_restart: int

    @property
    def events(self) -> list[EventDict]:
        """Every event of the tracker, in order."""
        raise NotImplementedError

    def _event_at(self, index: int) -> EventDict:
        raise NotImplementedError

    def _slice(self, start: int) -> list[EventDict]:
        raise NotImplementedError

    def _applied_list(self) -> list[EventDict]:
        raise NotImplementedError

    @property
    def stack(self) -> list[Any]:
        """Rasa Pro's dialogue stack (frames as dicts), built from ``stack`` events."""
        return _copy.deepcopy(self._stack or [])

    @property
    def active_flow(self) -> str | None:
        """The flow of the top stack frame, as Rasa Pro's ``tracker.active_flow``."""
        return active_flow(self._stack or [])

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
    def latest_bot_utterance(self) -> EventDict | None:
        """The last applied ``bot`` event, or None."""
        return self._bot

    @property
    def latest_event_time(self) -> float | None:
        """Timestamp of the last event of any type, or None."""
        return self._event_at(self._count - 1).get("timestamp") if self._count else None

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

    def applied_events(self) -> list[EventDict]:
        """The events that make the current state: without what rewind/undo reverted,
        before the last restart/session start, or between two runs of a loop."""
        return list(self._applied_list())

    def events_after_latest_restart(self) -> list[EventDict]:
        """The events strictly after the last ``restart`` (all events if there is none)."""
        return self._slice(self._after_restart)

    def current_state(
        self, include_events: str | EventVerbosity = EventVerbosity.AFTER_RESTART
    ) -> dict[str, Any]:
        """The tracker JSON of Rasa's HTTP API, with the keys in Rasa's order.

        ``include_events`` is an ``EventVerbosity`` or its name in any case; events are the
        stored dicts themselves (treat them as read-only), ``None`` for ``NONE``.
        """
        verbosity = EventVerbosity.parse(include_events)
        events: list[EventDict] | None
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
            **({} if self._stack is None else {"stack": _copy.deepcopy(self._stack)}),
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
