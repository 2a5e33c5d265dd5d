"""Rasa-compatible events: one pydantic model per type, and the validation every append runs.

Events stay plain JSON dicts everywhere in eventstore (stored, replayed, published) so that a
round trip keeps every key, unknown extras included. The models here only *check* them:
``validate_events`` refuses a malformed event with an error naming its index and field.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from eventstore.errors import EventValidationError

#: Largest accepted event, serialised as JSON (MySQL MEDIUMTEXT and DynamoDB items cope).
MAX_EVENT_BYTES = 256 * 1024
#: Longest accepted conversation id (Rasa's SQL column is VARCHAR(255)).
MAX_SENDER_ID_LENGTH = 255
#: Deepest accepted nesting of objects and lists in an event (MongoDB's own limit is 100).
MAX_NESTING = 64
#: Longest accepted intent or action/slot name (indexed; Rasa's SQL columns are VARCHAR(255)).
MAX_NAME_LENGTH = 255


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    timestamp: float | None = None
    metadata: dict[str, Any] | None = None


class _Intent(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: str | None = None
    confidence: float | None = None


class _Entity(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    entity: str
    value: Any


class _ParseData(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    intent: _Intent | dict[str, Any] | None = None
    entities: list[_Entity] | None = None
    text: str | None = None


class UserUttered(_Event):
    event: Literal["user"]
    text: str | None = None
    parse_data: _ParseData | None = None
    input_channel: str | None = None
    message_id: str | None = None


class BotUttered(_Event):
    event: Literal["bot"]
    text: str | None = None
    data: dict[str, Any] | None = None


class ActionExecuted(_Event):
    event: Literal["action"]
    name: str | None = None
    policy: str | None = None
    confidence: float | None = None
    action_text: str | None = None
    hide_rule_turn: bool = False

    @model_validator(mode="after")
    def _needs_name(self) -> ActionExecuted:
        if self.name is None and self.action_text is None:
            raise ValueError("an action event needs 'name' or 'action_text'")
        return self


class SlotSet(_Event):
    event: Literal["slot"]
    name: str
    value: Any


class Restarted(_Event):
    event: Literal["restart"]


class UserUtteranceReverted(_Event):
    event: Literal["rewind"]


class ActionReverted(_Event):
    event: Literal["undo"]


class AllSlotsReset(_Event):
    event: Literal["reset_slots"]


class ReminderScheduled(_Event):
    event: Literal["reminder"]
    intent: str
    date_time: str
    entities: list[dict[str, Any]] | None = None
    name: str | None = None
    kill_on_user_msg: bool = True


class ReminderCancelled(_Event):
    event: Literal["cancel_reminder"]
    name: str | None = None
    intent: str | None = None
    entities: list[dict[str, Any]] | None = None


class StoryExported(_Event):
    event: Literal["export"]
    path: str | None = None


class FollowupAction(_Event):
    event: Literal["followup"]
    name: str


class ConversationPaused(_Event):
    event: Literal["pause"]


class ConversationResumed(_Event):
    event: Literal["resume"]


class AgentUttered(_Event):
    event: Literal["agent"]
    text: str | None = None
    data: Any = None


class ActiveLoop(_Event):
    event: Literal["active_loop"]
    name: str | None = None


class LegacyForm(_Event):
    """Rasa 1.x ``form``; replayed as ``active_loop``."""

    event: Literal["form"]
    name: str | None = None


class LoopInterrupted(_Event):
    event: Literal["loop_interrupted"]
    is_interrupted: bool = False


class LegacyFormValidation(_Event):
    """Rasa 1.x ``form_validation``; replayed as ``loop_interrupted`` (inverted)."""

    event: Literal["form_validation"]
    validate_: bool = Field(default=True, alias="validate")


class ActionExecutionRejected(_Event):
    event: Literal["action_execution_rejected"]
    name: str
    policy: str | None = None
    confidence: float | None = None


class SessionStarted(_Event):
    event: Literal["session_started"]


class DefinePrevUserUtteredFeaturization(_Event):
    event: Literal["user_featurization"]
    use_text_for_featurization: bool


class EntitiesAdded(_Event):
    event: Literal["entities"]
    entities: list[_Entity]


Event = Annotated[
    UserUttered
    | BotUttered
    | ActionExecuted
    | SlotSet
    | Restarted
    | UserUtteranceReverted
    | ActionReverted
    | AllSlotsReset
    | ReminderScheduled
    | ReminderCancelled
    | StoryExported
    | FollowupAction
    | ConversationPaused
    | ConversationResumed
    | AgentUttered
    | ActiveLoop
    | LegacyForm
    | LoopInterrupted
    | LegacyFormValidation
    | ActionExecutionRejected
    | SessionStarted
    | DefinePrevUserUtteredFeaturization
    | EntitiesAdded,
    Field(discriminator="event"),
]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)

#: Every event type name eventstore accepts (Rasa's 23 plus the two legacy form names).
EVENT_TYPES: frozenset[str] = frozenset(
    m.model_fields["event"].annotation.__args__[0]  # type: ignore[union-attr]
    for m in _Event.__subclasses__()
)


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


def validate_event(event: Any, index: int = 0, max_bytes: int = MAX_EVENT_BYTES) -> dict[str, Any]:
    """Check one event and return it as a new dict, with a missing timestamp set to now."""
    if not isinstance(event, Mapping):
        raise EventValidationError(
            f"an event must be a JSON object, got {type(event).__name__}", index=index
        )
    type_name = event.get("event")
    if type_name is None:
        raise EventValidationError("the 'event' key is missing", index=index, field="event")
    if not isinstance(type_name, str) or type_name not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise EventValidationError(
            f"unknown event type {type_name!r}; known types: {known}", index=index, field="event"
        )
    deep = _first_bad_key(event, lambda value: _nesting_exceeds(value, MAX_NESTING - 1))
    if deep is not None:
        raise EventValidationError(
            f"values may nest at most {MAX_NESTING} levels deep", index=index, field=deep
        )
    try:
        _ADAPTER.validate_python(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise EventValidationError(
            f"{first['msg']} (got {_short(first.get('input'))})",
            index=index,
            field=_field_path(tuple(first["loc"])) or None,
        ) from None
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
    if not ts:
        out["timestamp"] = time.time()
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


def validate_events(events: Any, max_bytes: int = MAX_EVENT_BYTES) -> list[dict[str, Any]]:
    """Check a list of events (or a single event) and return new dicts ready to store."""
    if isinstance(events, Mapping):
        events = [events]
    if isinstance(events, str | bytes) or not isinstance(events, Iterable):
        raise EventValidationError(
            f"events must be a list of JSON objects, got {type(events).__name__}"
        )
    return [validate_event(e, i, max_bytes) for i, e in enumerate(events)]


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
