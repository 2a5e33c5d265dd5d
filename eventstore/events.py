"""Rasa-compatible events: the validation every append runs (models in ``event_models``).

Events stay plain JSON dicts everywhere in eventstore (stored, replayed, published) so that a
round trip keeps every key, unknown extras included. The models here only *check* them:
``validate_events`` refuses a malformed event with an error naming its index and field.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import ValidationError

from eventstore.errors import EventValidationError
from eventstore.event_models import ADAPTER, EVENT_TYPES, PRO_EVENT_TYPES, EventModel
from eventstore.flows import check_update

EventDict = dict[str, Any]  # one event as stored and replayed (``EventModel`` validates it)

#: Largest accepted event, serialised as JSON (MySQL MEDIUMTEXT and DynamoDB items cope).
MAX_EVENT_BYTES = 256 * 1024
#: Longest accepted conversation id (Rasa's SQL column is VARCHAR(255)).
MAX_SENDER_ID_LENGTH = 255
#: Deepest accepted nesting of objects and lists in an event (MongoDB's own limit is 100).
MAX_NESTING = 64
#: Longest accepted intent or action/slot name (indexed; Rasa's SQL columns are VARCHAR(255)).
MAX_NAME_LENGTH = 255


#: What a store does with an event type it does not know: refuse it (the default) or keep
#: it as it is (checked only as JSON), so a newer runtime never loses a turn.
UnknownEvents = Literal["refuse", "keep"]


def validate_sender_id(sender_id: Any) -> str:
    """Check a conversation id: a non-empty string of at most 255 characters, no NUL."""
    if not isinstance(sender_id, str):
        raise EventValidationError(
            f"sender_id must be a string, got {type(sender_id).__name__}", field="sender_id"
        )
    if not sender_id:
        raise EventValidationError("sender_id must not be empty", field="sender_id")
    if len(sender_id) > MAX_SENDER_ID_LENGTH:
        raise EventValidationError(
            f"sender_id is {len(sender_id)} characters long; the limit is {MAX_SENDER_ID_LENGTH}",
            field="sender_id",
        )
    if "\x00" in sender_id:
        raise EventValidationError("sender_id must not contain NUL characters", field="sender_id")
    try:
        sender_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EventValidationError(
            "sender_id is not valid unicode (lone surrogate)", field="sender_id"
        ) from exc
    return sender_id


def _field_path(loc: tuple[Any, ...]) -> str:
    # The discriminated union puts the type tag first in the location; drop it.
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in EVENT_TYPES else [str(p) for p in loc]
    return ".".join(parts)


def validate_event(
    event: Any, index: int = 0, max_bytes: int = MAX_EVENT_BYTES, unknown: UnknownEvents = "refuse"
) -> dict[str, Any]:
    """Check one event and return it as a new dict, with a missing timestamp set to now.

    ``unknown="keep"``: an event type this version does not know is accepted as it is (its
    name must be a string of at most 255 characters; JSON, nesting and size are checked).
    """
    if not isinstance(event, Mapping):
        raise EventValidationError(
            f"an event must be a JSON object, got {type(event).__name__}", index=index
        )
    type_name = event.get("event")
    if type_name is None:
        raise EventValidationError("the 'event' key is missing", index=index, field="event")
    kept = unknown == "keep" and isinstance(type_name, str) and type_name not in EVENT_TYPES
    if kept and not (
        0 < len(type_name) <= MAX_NAME_LENGTH and "\x00" not in type_name and _encodable(type_name)
    ):
        raise EventValidationError(
            f"an event type must be 1 to {MAX_NAME_LENGTH} characters of valid unicode without NUL",
            index=index,
            field="event",
        )
    if not kept and (not isinstance(type_name, str) or type_name not in EVENT_TYPES):
        known = ", ".join(sorted(EVENT_TYPES))
        raise EventValidationError(
            f"unknown event type {type_name!r}; known types: {known}", index=index, field="event"
        )
    deep = _first_bad_key(event, lambda value: _nesting_exceeds(value, MAX_NESTING - 1))
    if deep is not None:
        raise EventValidationError(
            f"values may nest at most {MAX_NESTING} levels deep", index=index, field=deep
        )
    not_json = _first_non_json(event)
    if not_json is not None:
        field, problem = not_json
        raise EventValidationError(
            f"{problem}: JSON cannot hold it as it is (events hold dicts with string keys, "
            "lists, strings, finite numbers, booleans and None)",
            index=index,
            field=field,
        )
    try:
        if not kept:
            ADAPTER.validate_python(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise EventValidationError(
            f"{first['msg']} (got {_short(first.get('input'))})",
            index=index,
            field=_field_path(tuple(first["loc"])) or None,
        ) from None
    if type_name == "stack":  # a patch Rasa's replay could not apply is refused now
        check_update(event.get("update"), index)
    out = dict(event)
    # Names are indexed by every backend (SQL columns are VARCHAR(255)); check them here so
    # that every backend accepts and refuses the same events.
    for field, name in (("parse_data.intent.name", intent_name(out)), ("name", action_name(out))):
        if name is not None and (
            len(name) > MAX_NAME_LENGTH or "\x00" in name or not _encodable(name)
        ):
            raise EventValidationError(
                f"must be at most {MAX_NAME_LENGTH} characters without NUL or lone "
                f"surrogates (got {len(name)} characters)",
                index=index,
                field=field,
            )
    ts = out.get("timestamp")
    if not ts and type(ts) is not bool:
        out["timestamp"] = time.time()
    elif type(ts) not in (int, float):  # a kept unknown type skipped the model's check
        raise EventValidationError(
            f"timestamp must be a number, got {_short(ts)}", index=index, field="timestamp"
        )
    elif not math.isfinite(ts):
        raise EventValidationError("timestamp must be finite", index=index, field="timestamp")
    try:
        size = len(json.dumps(out, allow_nan=False, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        raise EventValidationError(
            "text holds a lone surrogate (not valid unicode)",
            index=index,
            field=_first_bad_key(out, _has_lone_surrogate),
        ) from None
    except (TypeError, ValueError) as exc:
        raise EventValidationError(f"the event is not valid JSON: {exc}", index=index) from None
    if size > max_bytes:
        biggest = max(out, key=lambda k: len(json.dumps(out[k])))
        raise EventValidationError(
            f"the event is {size} bytes of JSON; the limit is {max_bytes}",
            index=index,
            field=biggest,
        )
    return out


def validate_events(
    events: Any, max_bytes: int = MAX_EVENT_BYTES, unknown: UnknownEvents = "refuse"
) -> list[dict[str, Any]]:
    """Check a list of events (or a single event) and return new dicts ready to store."""
    if isinstance(events, Mapping):
        events = [events]
    if isinstance(events, str | bytes) or not isinstance(events, Iterable):
        raise EventValidationError(
            f"events must be a list of JSON objects, got {type(events).__name__}"
        )
    return [validate_event(e, i, max_bytes, unknown) for i, e in enumerate(events)]


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether objects/lists in ``value`` nest deeper than ``limit`` (no recursion used)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _first_non_json(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """The dotted path and description of the first value JSON would change, if any.

    A tuple would come back as a list and a key ``1`` as ``"1"``: the guarantee is that an
    event reads back exactly as given, so such values are refused rather than converted.
    """
    stack: list[tuple[str, Any]] = [("", event)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    return path or "(event)", f"a key {key!r} of type {type(key).__name__}"
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}.{i}", child) for i, child in enumerate(item))
        elif item is not None and not isinstance(item, str | int | float):
            return path, f"a value of type {type(item).__name__}"
        elif isinstance(item, float) and not math.isfinite(item):
            return path, f"the number {item!r}"
    return None


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string (key or value) in ``value`` cannot be encoded as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _first_bad_key(event: Mapping[str, Any], bad: Any) -> str | None:
    """The first top-level key whose name or value ``bad`` flags, to name in an error."""
    for key, value in event.items():
        if bad(key) or bad(value):
            return str(key) if _encodable(str(key)) else repr(key)
    return None


def _encodable(text: str) -> bool:
    """Whether ``text`` is valid unicode (no lone surrogate), so any database can index it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def intent_name(event: Mapping[str, Any]) -> str | None:
    """The intent a ``user`` event carries (``parse_data.intent.name``), as Rasa's SQL stores it."""
    if event.get("event") != "user":
        return None
    parse_data = event.get("parse_data") or {}
    intent = parse_data.get("intent") if isinstance(parse_data, Mapping) else None
    name = intent.get("name") if isinstance(intent, Mapping) else None
    return name if isinstance(name, str) else None


def action_name(event: Mapping[str, Any]) -> str | None:
    """The ``name`` key of any event (Rasa's SQL ``action_name`` column)."""
    name = event.get("name")
    return name if isinstance(name, str) else None


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


__all__ = [
    "EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_NESTING",
    "MAX_SENDER_ID_LENGTH",
    "PRO_EVENT_TYPES",
    "EventDict",
    "EventModel",
    "EventVerbosity",
    "UnknownEvents",
    "action_name",
    "intent_name",
    "validate_event",
    "validate_events",
    "validate_sender_id",
]
