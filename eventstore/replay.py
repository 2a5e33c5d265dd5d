"""Rasa's state rules, one function per event type (rasa-compat.md §1), and the pruning of
applied events by loops (§2, §8). ``Tracker`` applies them; they change its state in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from eventstore.events import EventDict
from eventstore.flows import apply_patch
from eventstore.sessions import ACTION_LISTEN, ACTION_SESSION_START

if TYPE_CHECKING:
    from eventstore.tracker import Tracker

logger = logging.getLogger("eventstore.tracker")


#: Loop events (``form`` is Rasa's legacy name of ``active_loop``).
LOOP_EVENTS = frozenset({"active_loop", "form"})
#: EventDict types that loop pruning removes between two runs of a loop (Rasa's applied events).
_PRUNED_BY_LOOP = frozenset({"action", "user", "user_featurization"})


def on_user(tracker: Tracker, event: EventDict) -> None:
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
    tracker._message = message
    # Rasa's default featurization: by text when there is no intent, and vice versa.
    text = event.get("text")
    has_intent = isinstance(intent, Mapping) and bool(intent.get("name"))
    tracker._use_text = None if bool(text) == has_intent else bool(text)
    tracker._followup = None


def on_bot(tracker: Tracker, event: EventDict) -> None:
    tracker._bot = event


def on_action(tracker: Tracker, event: EventDict) -> None:
    name = event.get("name")
    text = event.get("action_text")
    tracker._latest_action = {"action_name": name} if name else {"action_text": text}
    tracker._followup = None
    loop = tracker._loop
    if loop is not None:
        loop_name = tracker.active_loop_name
        interrupted = False if loop_name else loop["is_interrupted"]
        rejected = (
            False if tracker._latest_action.get("action_name") == loop_name else loop["rejected"]
        )
        if interrupted != loop["is_interrupted"] or rejected != loop["rejected"]:
            tracker._loop = {**loop, "is_interrupted": interrupted, "rejected": rejected}


def on_slot(tracker: Tracker, event: EventDict) -> None:
    name = event.get("name")
    if isinstance(name, str) and (not tracker.known_slots_only or name in tracker._initial_slots):
        tracker._slots[name] = event.get("value")


def on_restart(tracker: Tracker, event: EventDict) -> None:
    tracker._reset()
    tracker._followup = ACTION_SESSION_START


def on_session_started(tracker: Tracker, event: EventDict) -> None:
    tracker._reset()


def on_reset_slots(tracker: Tracker, event: EventDict) -> None:
    initial = tracker._initial_slots
    slots = tracker._slots
    for name in slots:
        slots[name] = initial.get(name)


def on_followup(tracker: Tracker, event: EventDict) -> None:
    tracker._followup = event.get("name")


def on_pause(tracker: Tracker, event: EventDict) -> None:
    tracker._paused = True


def on_resume(tracker: Tracker, event: EventDict) -> None:
    tracker._paused = False


def on_active_loop(tracker: Tracker, event: EventDict) -> None:
    name = event.get("name")
    if name is None:
        tracker._loop = None
    else:
        tracker._loop = {
            "name": name,
            "is_interrupted": False,
            "rejected": False,
            "trigger_message": dict(tracker._message),
        }


def on_loop_interrupted(tracker: Tracker, event: EventDict) -> None:
    if tracker._loop is not None:
        tracker._loop = {**tracker._loop, "is_interrupted": event.get("is_interrupted", False)}


def on_form_validation(tracker: Tracker, event: EventDict) -> None:
    if tracker._loop is not None:
        tracker._loop = {**tracker._loop, "is_interrupted": not event.get("validate", True)}


def on_rejected(tracker: Tracker, event: EventDict) -> None:
    if tracker._loop is not None and event.get("name") == tracker.active_loop_name:
        tracker._loop = {**tracker._loop, "rejected": True}


def on_featurization(tracker: Tracker, event: EventDict) -> None:
    if tracker.latest_action_name == ACTION_LISTEN:
        tracker._use_text = event.get("use_text_for_featurization")


def on_entities(tracker: Tracker, event: EventDict) -> None:
    added = event.get("entities")
    if tracker.latest_action_name != ACTION_LISTEN or not isinstance(added, list):
        return
    merged = list(tracker._message["entities"])
    for entity in added:
        if entity not in merged:
            merged.append(entity)
    tracker._message = {**tracker._message, "entities": merged}


def on_stack(tracker: Tracker, event: EventDict) -> None:
    try:  # appends check the patch; a stored one that does not apply changes nothing
        tracker._stack = apply_patch(tracker._stack or [], event.get("update"))  # type: ignore[arg-type]
    except (ValueError, LookupError, TypeError) as exc:
        logger.warning("stack event of %r not applied: %s", tracker.sender_id, exc)
        tracker._stack = tracker._stack or []


STATE_HANDLERS: dict[str, Callable[[Tracker, EventDict], None]] = {
    "user": on_user,
    "bot": on_bot,
    "action": on_action,
    "slot": on_slot,
    "restart": on_restart,
    "session_started": on_session_started,
    "reset_slots": on_reset_slots,
    "followup": on_followup,
    "pause": on_pause,
    "resume": on_resume,
    "active_loop": on_active_loop,
    "form": on_active_loop,
    "loop_interrupted": on_loop_interrupted,
    "form_validation": on_form_validation,
    "action_execution_rejected": on_rejected,
    "user_featurization": on_featurization,
    "entities": on_entities,
    "stack": on_stack,
}


def pop_through(applied: list[int], at: Callable[[int], EventDict], kind: str) -> None:
    """Drop events from the end up to and including the last one of type ``kind``."""
    while applied:
        index = applied[-1] - 1
        if index == applied[-2]:
            del applied[-2:]
        else:
            applied[-1] = index
        if at(index).get("event") == kind:
            return


def first_run_or_unhappy_path(loop: str, applied_reversed: Iterable[EventDict]) -> bool:
    """Whether a run of ``loop`` must be kept: no earlier run of it since a deactivation,
    or the loop was rejected / another action answered the user since (unhappy path)."""
    next_action: Any = None
    for event in applied_reversed:
        kind = event.get("event")
        if kind in LOOP_EVENTS and event.get("name") is None:
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


def prune_since_last_run(loop: str, applied: list[int], at: Callable[[int], EventDict]) -> None:
    """Drop the user/action/featurization events since the previous run of ``loop``."""
    removed: set[int] = set()
    first = len(applied)  # the first range touched (an even index into ``applied``)
    for r in range(len(applied) - 2, -1, -2):
        first = r
        for index in range(applied[r + 1] - 1, applied[r] - 1, -1):
            event = at(index)
            kind = event.get("event")
            if kind == "action" and event.get("name") == loop:
                break
            if kind in _PRUNED_BY_LOOP:
                removed.add(index)
        else:
            continue
        break
    if not removed:
        return
    kept: list[int] = []
    for r in range(first, len(applied), 2):
        start = applied[r]
        for index in range(applied[r], applied[r + 1]):
            if index in removed:
                if start < index:
                    kept += (start, index)
                start = index + 1
        if start < applied[r + 1]:
            kept += (start, applied[r + 1])
    applied[first:] = kept
