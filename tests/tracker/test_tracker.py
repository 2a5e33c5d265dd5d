"""Tracker replay: the effect of each event on the state and the tracker JSON.

Expected values are written from rasa-compat.md §1 ("effect on state"), §2 and §8.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from eventstore.errors import EventValidationError
from eventstore.tracker import EventVerbosity, Tracker

EMPTY_MESSAGE = {"intent": {}, "entities": [], "text": None, "message_id": None, "metadata": {}}


def user(text: str, ts: float, *, channel: str = "rest", **parse: Any) -> dict[str, Any]:
    """A complete Rasa user event (parse_data carries intent and entities)."""
    return {
        "event": "user",
        "timestamp": ts,
        "text": text,
        "parse_data": {
            "intent": {"name": parse.pop("intent", "greet"), "confidence": 0.9},
            "entities": parse.pop("entities", []),
            "text": text,
            "message_id": f"m-{ts}",
            "metadata": {},
            **parse,
        },
        "input_channel": channel,
        "message_id": f"m-{ts}",
        "metadata": {},
    }


def action(name: str, ts: float) -> dict[str, Any]:
    return {"event": "action", "timestamp": ts, "name": name, "policy": "p", "confidence": 1.0}


def slot(name: str, value: Any, ts: float) -> dict[str, Any]:
    return {"event": "slot", "timestamp": ts, "name": name, "value": value}


def bot(text: str, ts: float) -> dict[str, Any]:
    return {"event": "bot", "timestamp": ts, "text": text, "data": {}, "metadata": {}}


def ev(kind: str, ts: float, **keys: Any) -> dict[str, Any]:
    return {"event": kind, "timestamp": ts, **keys}


def state(events: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return Tracker.from_events("u1", events, slots={}).current_state(**kwargs)


# -- the fresh tracker -----------------------------------------------------------------
def test_fresh_tracker_json_is_exactly_rasas() -> None:
    assert Tracker("u1", slots={}).current_state() == {
        "sender_id": "u1",
        "slots": {},
        "latest_message": EMPTY_MESSAGE,
        "latest_event_time": None,
        "followup_action": "action_listen",
        "paused": False,
        "events": [],
        "latest_input_channel": None,
        "active_loop": {},
        "latest_action": {},
        "latest_action_name": None,
    }


def test_default_slots_carry_session_started_metadata_like_rasa_stores() -> None:
    fresh = Tracker("u1").current_state()
    assert fresh["slots"] == {"session_started_metadata": None}
    assert list(fresh) == [
        "sender_id",
        "slots",
        "latest_message",
        "latest_event_time",
        "followup_action",
        "paused",
        "events",
        "latest_input_channel",
        "active_loop",
        "latest_action",
        "latest_action_name",
    ]


def test_domain_slots_keep_their_initial_values_through_resets() -> None:
    tracker = Tracker.from_events(
        "u1",
        [slot("size", "XL", 1), slot("extra", 1, 2), ev("reset_slots", 3)],
        slots={"size": "M"},
    )
    assert tracker.slots == {"size": "M", "extra": None}


# -- user / action / bot -----------------------------------------------------------------
def test_user_event_from_the_reference_becomes_latest_message() -> None:
    event = {
        "event": "user",
        "timestamp": 1700000001.5,
        "text": "hi there",
        "parse_data": {
            "intent": {"name": "greet", "confidence": 0.98},
            "entities": [{"entity": "city", "value": "Berlin", "start": 0, "end": 2}],
            "text": "hi there",
            "message_id": "m1",
            "metadata": {},
        },
        "input_channel": "rest",
        "message_id": "m1",
        "metadata": {},
    }
    result = state([action("action_listen", 1700000000.0), event])
    assert result["latest_message"] == {
        "intent": {"name": "greet", "confidence": 0.98},
        "entities": [{"entity": "city", "value": "Berlin", "start": 0, "end": 2}],
        "text": "hi there",
        "message_id": "m1",
        "metadata": {},
    }
    assert result["followup_action"] is None
    assert result["latest_input_channel"] == "rest"
    assert result["latest_event_time"] == 1700000001.5
    assert result["latest_action_name"] == "action_listen"


def test_latest_message_is_normalised_from_the_user_event() -> None:
    event = {
        "event": "user",
        "timestamp": 5.0,
        "text": "hello",
        "parse_data": {"intent": {"name": "greet"}, "intent_ranking": [{"name": "greet"}]},
        "message_id": "mid",
        "metadata": {"source": "web"},
    }
    assert state([event])["latest_message"] == {
        "intent": {"name": "greet"},
        "entities": [],
        "text": "hello",
        "message_id": "mid",
        "metadata": {"source": "web"},
        "intent_ranking": [{"name": "greet"}],
    }


def test_user_event_without_parse_data_has_an_empty_intent() -> None:
    result = state([{"event": "user", "timestamp": 1.0, "text": "hey"}])
    assert result["latest_message"] == {
        "intent": {},
        "entities": [],
        "text": "hey",
        "message_id": None,
        "metadata": {},
    }
    assert result["latest_input_channel"] is None


def test_action_sets_latest_action_and_clears_followup() -> None:
    result = state([ev("followup", 1, name="utter_x"), action("utter_greet", 2)])
    assert result["latest_action"] == {"action_name": "utter_greet"}
    assert result["latest_action_name"] == "utter_greet"
    assert result["followup_action"] is None


def test_end_to_end_action_is_named_by_its_text() -> None:
    result = state([{"event": "action", "timestamp": 1, "name": None, "action_text": "Hi!"}])
    assert result["latest_action"] == {"action_text": "Hi!"}
    assert result["latest_action_name"] == "Hi!"


def test_bot_event_is_latest_bot_utterance_and_changes_no_state_key() -> None:
    before = state([action("utter_greet", 1)])
    tracker = Tracker.from_events("u1", [action("utter_greet", 1), bot("Hello!", 2)], slots={})
    assert tracker.latest_bot_utterance == bot("Hello!", 2)
    after = tracker.current_state()
    assert {k: v for k, v in after.items() if k not in ("events", "latest_event_time")} == {
        k: v for k, v in before.items() if k not in ("events", "latest_event_time")
    }
    assert after["latest_event_time"] == 2


def test_followup_and_user_clears_it() -> None:
    assert state([ev("followup", 1, name="action_x")])["followup_action"] == "action_x"
    assert state([ev("followup", 1, name="action_x"), user("a", 2)])["followup_action"] is None


def test_pause_and_resume() -> None:
    assert state([ev("pause", 1)])["paused"] is True
    assert state([ev("pause", 1), ev("resume", 2)])["paused"] is False


def test_events_without_effect_change_only_the_event_time() -> None:
    base = [user("hi", 1), action("utter_greet", 2)]
    quiet = [
        ev("reminder", 3, intent="remind", date_time="2024-01-01T00:00:00", name="r"),
        ev("cancel_reminder", 4),
        ev("export", 5),
        ev("agent", 6, text="t", data=None),
        ev("some_future_type", 7),
    ]
    before, after = state(base), state(base + quiet)
    assert after["latest_event_time"] == 7
    for key in ("slots", "latest_message", "followup_action", "paused", "active_loop"):
        assert after[key] == before[key]
    assert after["latest_action"] == {"action_name": "utter_greet"}


# -- slots -------------------------------------------------------------------------------
def test_slots_without_domain_keep_every_name_ever_set() -> None:
    events = [slot("city", "Berlin", 1), slot("n", 3, 2), slot("city", "Paris", 3)]
    assert state(events)["slots"] == {"city": "Paris", "n": 3}
    assert state([*events, ev("reset_slots", 4)])["slots"] == {"city": None, "n": None}


def test_restart_resets_everything_and_asks_for_session_start() -> None:
    events = [
        user("hi", 1, channel="telegram"),
        action("utter_greet", 2),
        slot("city", "Berlin", 3),
        ev("pause", 4),
        ev("active_loop", 5, name="my_form"),
        ev("restart", 6),
    ]
    assert state(events, include_events="APPLIED") == {
        "sender_id": "u1",
        "slots": {"city": None},
        "latest_message": EMPTY_MESSAGE,
        "latest_event_time": 6,
        "followup_action": "action_session_start",
        "paused": False,
        "events": [],
        "latest_input_channel": "telegram",
        "active_loop": {},
        "latest_action": {},
        "latest_action_name": None,
    }


def test_session_started_resets_with_followup_action_listen() -> None:
    result = state([user("hi", 1), slot("city", "Berlin", 2), ev("session_started", 3)])
    assert result["followup_action"] == "action_listen"
    assert result["slots"] == {"city": None}
    assert result["latest_message"] == EMPTY_MESSAGE
    assert result["latest_input_channel"] == "rest"


# -- rewind / undo -----------------------------------------------------------------------
def test_rewind_after_a_bad_user_message_restores_the_previous_turn() -> None:
    events = [
        action("action_listen", 1),
        user("hi", 2),
        action("utter_greet", 3),
        slot("city", "Berlin", 4),
        bot("Hello!", 5),
        action("action_listen", 6),
        user("bad", 7, channel="web"),
        slot("city", "Nowhere", 8),
        ev("rewind", 9),
    ]
    tracker = Tracker.from_events("u1", events, slots={})
    result = tracker.current_state("applied")
    assert result["events"] == events[:5]
    assert result["latest_action_name"] == "utter_greet"
    assert result["latest_action"] == {"action_name": "utter_greet"}
    assert result["slots"] == {"city": "Berlin"}
    assert result["latest_message"]["text"] == "hi"
    assert result["followup_action"] is None
    assert result["latest_input_channel"] == "web"  # from all events, the reverted one too
    assert result["latest_event_time"] == 9
    assert tracker.latest_bot_utterance == events[4]
    assert tracker.current_state()["events"] == events  # AFTER_RESTART keeps reverted events


def test_rewind_keeps_the_key_of_a_slot_only_the_reverted_turn_set() -> None:
    events = [action("action_listen", 1), user("x", 2), slot("new", 1, 3), ev("rewind", 4)]
    assert state(events)["slots"] == {"new": None}


def test_undo_reverts_the_last_action_and_what_followed() -> None:
    events = [
        action("action_listen", 1),
        user("hi", 2),
        action("utter_greet", 3),
        action("action_ask", 4),
        slot("city", "Berlin", 5),
        ev("undo", 6),
    ]
    result = state(events, include_events="APPLIED")
    assert result["events"] == events[:3]
    assert result["latest_action_name"] == "utter_greet"
    assert result["slots"] == {"city": None}


def test_undo_twice_and_rewind_on_empty_history() -> None:
    events = [action("a", 1), action("b", 2), ev("undo", 3), ev("undo", 4)]
    assert state(events, include_events="applied")["events"] == []
    assert state(events)["latest_action"] == {}
    only = state([ev("rewind", 1)], include_events="applied")
    assert only["events"] == []
    assert only["followup_action"] == "action_listen"


def test_rewind_after_restart_forgets_the_restart_followup() -> None:
    # Applied events are empty after a restart, so the replay starts fresh.
    result = state([user("a", 1), ev("restart", 2), user("b", 3), ev("rewind", 4)])
    assert result["followup_action"] == "action_listen"
    assert result["latest_message"] == EMPTY_MESSAGE


def test_after_restart_applied_is_empty_but_the_input_channel_stays() -> None:
    events = [user("hi", 1, channel="slack"), action("utter_greet", 2), ev("restart", 3)]
    tracker = Tracker.from_events("u1", events)
    assert tracker.applied_events() == []
    assert tracker.events_after_latest_restart() == []
    assert tracker.latest_input_channel == "slack"


# -- verbosity ---------------------------------------------------------------------------
VERBOSITY_LOG = [
    user("a", 1),
    action("x", 2),
    ev("restart", 3),
    user("b", 4),
    ev("session_started", 5),
    action("y", 6),
]


@pytest.mark.parametrize(
    ("verbosity", "expected"),
    [
        (EventVerbosity.ALL, VERBOSITY_LOG),
        (EventVerbosity.AFTER_RESTART, VERBOSITY_LOG[3:]),
        (EventVerbosity.APPLIED, VERBOSITY_LOG[5:]),
        (EventVerbosity.NONE, None),
        ("all", VERBOSITY_LOG),
        ("After_Restart", VERBOSITY_LOG[3:]),
        ("applied", VERBOSITY_LOG[5:]),
        ("none", None),
    ],
)
def test_include_events_verbosity(verbosity: Any, expected: Any) -> None:
    assert state(VERBOSITY_LOG, include_events=verbosity)["events"] == expected


def test_default_verbosity_is_after_restart_and_as_dict_is_an_alias() -> None:
    tracker = Tracker.from_events("u1", VERBOSITY_LOG)
    assert tracker.current_state()["events"] == VERBOSITY_LOG[3:]
    assert tracker.as_dict("ALL") == tracker.current_state("ALL")


@pytest.mark.parametrize("bad", ["everything", "", "AFTER RESTART", 3])
def test_unknown_verbosity_is_refused_naming_the_field(bad: Any) -> None:
    with pytest.raises(EventValidationError) as info:
        Tracker("u1").current_state(bad)
    assert info.value.field == "include_events"
    assert "AFTER_RESTART" in str(info.value)


# -- entities / featurization -----------------------------------------------------------
def test_entities_event_merges_into_latest_message_without_duplicates() -> None:
    berlin = {"entity": "city", "value": "Berlin"}
    paris = {"entity": "city", "value": "Paris"}
    events = [
        action("action_listen", 1),
        user("to berlin", 2, entities=[berlin]),
        ev("entities", 3, entities=[berlin, paris]),
    ]
    tracker = Tracker.from_events("u1", events)
    assert tracker.current_state()["latest_message"]["entities"] == [berlin, paris]
    assert events[1]["parse_data"]["entities"] == [berlin]  # the stored event is unchanged


def test_entities_event_is_ignored_unless_the_latest_action_is_listen() -> None:
    events = [
        action("action_listen", 1),
        user("hi", 2),
        action("utter_greet", 3),
        ev("entities", 4, entities=[{"entity": "x", "value": 1}]),
    ]
    assert state(events)["latest_message"]["entities"] == []


def test_user_featurization_flags_the_latest_message_after_listen_only() -> None:
    flag = {"use_text_for_featurization": True}
    events = [action("action_listen", 1), user("hi", 2), ev("user_featurization", 3, **flag)]
    tracker = Tracker.from_events("u1", events)
    assert tracker.use_text_for_featurization is True
    assert "use_text_for_featurization" not in tracker.current_state()["latest_message"]
    late = [*events[:2], action("utter", 3), ev("user_featurization", 4, **flag)]
    assert Tracker.from_events("u1", late).use_text_for_featurization is None


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [("hi", None, True), (None, "greet", False), ("hi", "greet", None), (None, None, None)],
)
def test_featurization_defaults_to_what_the_user_message_has(
    text: str | None, intent: str | None, expected: bool | None
) -> None:
    event = {"event": "user", "timestamp": 1, "text": text, "parse_data": {"intent": {}}}
    if intent:
        event["parse_data"] = {"intent": {"name": intent}}
    assert Tracker.from_events("u1", [event]).use_text_for_featurization is expected


# -- legacy events -----------------------------------------------------------------------
def test_legacy_form_event_activates_a_loop() -> None:
    events = [user("order", 1), ev("form", 2, name="order_form")]
    result = state(events)
    assert result["active_loop"]["name"] == "order_form"
    assert result["active_loop"]["is_interrupted"] is False
    assert state([*events, ev("form", 3, name=None)])["active_loop"] == {}
    assert result["events"][1]["event"] == "form"  # stored as given


@pytest.mark.parametrize(("validate", "interrupted"), [(False, True), (True, False)])
def test_legacy_form_validation_is_an_inverted_loop_interrupted(
    validate: bool, interrupted: bool
) -> None:
    events = [ev("form", 1, name="f"), ev("form_validation", 2, validate=validate)]
    assert state(events)["active_loop"]["is_interrupted"] is interrupted


# -- events as values, round trips, saving ---------------------------------------------
def test_replay_never_mutates_the_given_events() -> None:
    berlin = {"entity": "city", "value": "Berlin"}
    events = [
        action("action_listen", 1),
        user("hi", 2, entities=[berlin]),
        ev("entities", 3, entities=[{"entity": "x", "value": 1}]),
        ev("active_loop", 4, name="f"),
        ev("loop_interrupted", 5, is_interrupted=True),
        action("f", 6),
        ev("undo", 7),
        action("action_listen", 8),
        user("more", 9),
        ev("rewind", 10),
        ev("restart", 11),
    ]
    snapshot = copy.deepcopy(events)
    tracker = Tracker.from_events("u1", events)
    out = tracker.current_state("ALL")
    out["latest_message"]["entities"].append("junk")
    out["slots"]["junk"] = 1
    tracker.active_loop["name"] = "junk"
    assert events == snapshot
    assert tracker.current_state("ALL")["latest_message"] == state(events)["latest_message"]
    assert "junk" not in tracker.slots


def test_round_trip_keeps_the_events_as_given() -> None:
    events = [
        user("hi", 1),
        {"event": "action", "timestamp": 2, "name": "a"},  # no policy: not filled in
        ev("form", 3, name="f", custom={"kept": True}),
        ev("cancel_reminder", 4),
    ]
    assert Tracker.from_events("u1", events).events == events
    assert Tracker.from_events("u1", events).current_state("ALL")["events"] == events


def test_from_events_counts_as_stored_and_update_is_unsaved() -> None:
    tracker = Tracker.from_events("u1", [user("hi", 1)], version=7)
    assert tracker.version == 7
    assert tracker.unsaved_events == []
    given = {"event": "action", "name": "utter_greet"}
    before = time.time()
    tracker.update(given)
    tracker.update_with_events([{"event": "slot", "name": "a", "value": 1, "timestamp": 0}])
    unsaved = tracker.unsaved_events
    assert [e["event"] for e in unsaved] == ["action", "slot"]
    assert all(before <= e["timestamp"] <= time.time() for e in unsaved)
    assert given == {"event": "action", "name": "utter_greet"}  # the caller's dict untouched
    assert tracker.latest_action_name == "utter_greet"
    tracker.mark_saved(9)
    assert tracker.unsaved_events == []
    assert tracker.version == 9
    assert len(tracker) == 3


def test_update_keeps_a_given_timestamp() -> None:
    tracker = Tracker("u1")
    tracker.update(action("a", 1234.5))
    assert tracker.events[0]["timestamp"] == 1234.5
    assert tracker.latest_event_time == 1234.5


def test_update_refuses_what_is_not_an_event_object() -> None:
    with pytest.raises(EventValidationError, match="JSON object"):
        Tracker("u1").update(["event", "user"])  # type: ignore[arg-type]


def test_copy_is_independent() -> None:
    tracker = Tracker.from_events("u1", [user("hi", 1), slot("a", 1, 2)])
    twin = tracker.copy()
    twin.update(slot("a", 2, 3))
    twin.update(ev("active_loop", 4, name="f"))
    assert tracker.slots["a"] == 1
    assert tracker.active_loop == {}
    assert len(tracker) == 2
    assert twin.current_state("ALL")["events"][:2] == tracker.current_state("ALL")["events"]
    assert twin.slots["a"] == 2


def test_latest_event_time_is_the_last_event_of_any_type() -> None:
    events = [user("hi", 10), ev("pause", 20), ev("reminder", 15, intent="i", date_time="d")]
    assert state(events)["latest_event_time"] == 15
