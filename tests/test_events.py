"""Event validation: Rasa JSON in, the same JSON out; bad events named by index and field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventstore.errors import EventValidationError
from eventstore.events import EVENT_TYPES, PRO_EVENT_TYPES, validate_event, validate_events

RASA_EXAMPLES = [
    '{"event":"user","timestamp":1700000001.5,"text":"hi there","parse_data":{"intent":'
    '{"name":"greet","confidence":0.98},"entities":[{"entity":"city","value":"Berlin",'
    '"start":0,"end":2}],"text":"hi there","message_id":"m1","metadata":{}},'
    '"input_channel":"rest","message_id":"m1","metadata":{}}',
    '{"event":"bot","timestamp":1700000002.0,"metadata":{"utter_action":"utter_greet"},'
    '"text":"Hello!","data":{"buttons":[{"title":"a","payload":"/a"}]}}',
    '{"event":"action","timestamp":1700000003.0,"name":"utter_greet","policy":"RulePolicy",'
    '"confidence":1.0,"action_text":null,"hide_rule_turn":false}',
    '{"event":"slot","timestamp":1700000004.0,"name":"city","value":"Berlin"}',
    '{"event":"session_started","timestamp":1700000005.0}',
]

ONE_OF_EACH: list[dict[str, Any]] = [
    {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet"}}},
    {"event": "bot", "text": "hello"},
    {"event": "action", "name": "action_listen"},
    {"event": "action", "action_text": "end-to-end"},
    {"event": "slot", "name": "s", "value": {"any": ["json"]}},
    {"event": "restart"},
    {"event": "rewind"},
    {"event": "undo"},
    {"event": "reset_slots"},
    {"event": "reminder", "intent": "remind", "date_time": "2026-01-01T00:00:00"},
    {"event": "cancel_reminder", "name": "r", "intent": "remind", "entities": []},
    {"event": "export", "path": "story.yml"},
    {"event": "followup", "name": "action_x"},
    {"event": "pause"},
    {"event": "resume"},
    {"event": "agent", "text": "a", "data": None},
    {"event": "active_loop", "name": "form_x"},
    {"event": "form", "name": "legacy_form"},
    {"event": "loop_interrupted", "is_interrupted": True},
    {"event": "form_validation", "validate": False},
    {"event": "action_execution_rejected", "name": "form_x"},
    {"event": "session_started"},
    {"event": "user_featurization", "use_text_for_featurization": False},
    {"event": "entities", "entities": [{"entity": "e", "value": 1}]},
]


def test_every_type_is_covered_here() -> None:
    assert {e["event"] for e in ONE_OF_EACH} | PRO_EVENT_TYPES == EVENT_TYPES


@pytest.mark.parametrize("text", RASA_EXAMPLES)
def test_rasa_json_round_trips_unchanged(text: str) -> None:
    event = json.loads(text)
    assert validate_event(event) == event


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: e["event"])
def test_every_type_keeps_every_key_and_gets_a_timestamp(event: dict[str, Any]) -> None:
    checked = validate_event({**event, "extra_key": [1, {"x": None}]})
    assert checked["extra_key"] == [1, {"x": None}]
    assert {k: v for k, v in checked.items() if k not in ("timestamp", "extra_key")} == event
    assert isinstance(checked["timestamp"], float)


def test_the_input_is_not_mutated() -> None:
    event = {"event": "pause"}
    validate_event(event)
    assert event == {"event": "pause"}


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        ({"event": "slot", "value": 1}, "name", "Field required"),
        (
            {"event": "user", "parse_data": {"entities": [{"value": 1}]}},
            "parse_data.entities.0.entity",
            "Field required",
        ),
        ({"event": "user", "text": 5}, "text", "valid string"),
        (
            {"event": "action", "hide_rule_turn": "yes", "name": "a"},
            "hide_rule_turn",
            "valid boolean",
        ),
        ({"event": "reminder", "intent": "x"}, "date_time", "Field required"),
        ({"event": "followup"}, "name", "Field required"),
        ({"event": "user", "metadata": []}, "metadata", "valid dictionary"),
        ({"event": 7}, "event", "unknown event type 7"),
        ({"event": "pause", "timestamp": float("nan")}, "timestamp", "finite"),
        ({"event": "action", "name": "a\x00b"}, "name", "without NUL"),
        ({"event": "action", "name": "a\ud800b"}, "name", "lone surrogates"),
        ({"event": "slot", "name": "s" * 256, "value": 1}, "name", "at most 255"),
        (
            {"event": "user", "parse_data": {"intent": {"name": "i" * 300}}},
            "parse_data.intent.name",
            "at most 255",
        ),
    ],
)
def test_bad_fields_are_named(event: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(EventValidationError) as info:
        validate_events([{"event": "pause"}, event])
    assert info.value.index == 1
    assert info.value.field == field
    assert message in str(info.value)
    assert f"event 1, field '{field}'" in str(info.value)


def test_non_json_values_are_refused() -> None:
    with pytest.raises(EventValidationError, match="JSON cannot hold it"):
        validate_event({"event": "slot", "name": "s", "value": object()})
    with pytest.raises(EventValidationError, match=r"field 'value\.a': the number inf"):
        validate_event({"event": "slot", "name": "s", "value": {"a": float("inf")}})


def test_deeply_nested_json_is_refused_cleanly() -> None:
    value: Any = "leaf"
    for _ in range(100_000):
        value = [value]
    with pytest.raises(EventValidationError):
        validate_event({"event": "slot", "name": "s", "value": value})


def test_a_single_event_dict_is_accepted_as_a_list() -> None:
    assert len(validate_events({"event": "pause"})) == 1


def test_nesting_is_limited_and_the_field_named() -> None:
    value: Any = "leaf"
    for _ in range(63):
        value = {"k": value}
    assert validate_event({"event": "slot", "name": "s", "value": value})["value"] == value
    with pytest.raises(EventValidationError, match="nest at most 64 levels") as info:
        validate_event({"event": "slot", "name": "s", "value": [value]})
    assert info.value.field == "value"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"event": "user", "text": "half a pair \ud800"}, "text"),
        ({"event": "bot", "text": "ok", "data": {"key \udc00": 1}}, "data"),
        ({"event": "bot", "text": "ok", "metadata": {"list": ["\ud83d"]}}, "metadata"),
    ],
)
def test_lone_surrogates_are_refused(event: dict[str, Any], field: str) -> None:
    # they cannot be written as UTF-8: storing them would poison every later read
    with pytest.raises(EventValidationError, match="lone surrogate") as info:
        validate_event(event)
    assert info.value.field == field


def test_size_is_counted_in_utf8_bytes() -> None:
    text = "é" * 100
    validate_event({"event": "bot", "text": text}, max_bytes=300)
    with pytest.raises(EventValidationError, match="bytes of JSON"):
        validate_event({"event": "bot", "text": text}, max_bytes=200)


@pytest.mark.parametrize(
    ("event", "field", "what"),
    [
        ({"event": "slot", "name": "a", "value": {1: "a"}}, "value", "a key 1 of type int"),
        ({"event": "slot", "name": "a", "value": (1, 2)}, "value", "a value of type tuple"),
        ({"event": "slot", "name": "a", "value": [1, {2, 3}]}, "value.1", "of type set"),
        ({"event": "bot", "text": "x", "data": {"b": b"raw"}}, "data.b", "of type bytes"),
        (
            {"event": "user", "text": "x", "parse_data": {"entities": [{"value": object()}]}},
            "parse_data.entities.0.value",
            "a value of type object",
        ),
        ({"event": "bot", "text": "x", ("k",): 1}, "(event)", "a key ('k',) of type tuple"),
    ],
)
def test_values_json_would_change_are_refused_naming_the_field(
    event: dict[Any, Any], field: str, what: str
) -> None:
    """Stored events read back exactly as given, or are refused: never silently converted."""
    from eventstore import create_tracker_store

    with pytest.raises(EventValidationError) as err:
        validate_event(event)
    assert err.value.field == field and what in str(err.value)
    with create_tracker_store(None) as store:
        with pytest.raises(EventValidationError, match="JSON cannot hold it"):
            store.append("sender", [{"event": "pause"}, event])
        assert store.version("sender") == 0


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"event": "future_type", "timestamp": "yesterday"}, "timestamp"),
        ({"event": "future_type", "timestamp": True}, "timestamp"),
        ({"event": "future\x00type"}, "event"),
    ],
)
def test_a_kept_unknown_type_still_gets_the_checks_every_store_relies_on(
    event: dict[str, Any], field: str
) -> None:
    """``unknown_events: keep`` skips the type's model, not the timestamp and name checks
    (a string timestamp was a TypeError, a NUL reached the SQL type_name column)."""
    with pytest.raises(EventValidationError) as info:
        validate_event(event, unknown="keep")
    assert info.value.field == field
    kept = validate_event({"event": "future_type", "timestamp": 2.5, "x": 1}, unknown="keep")
    assert kept == {"event": "future_type", "timestamp": 2.5, "x": 1}
