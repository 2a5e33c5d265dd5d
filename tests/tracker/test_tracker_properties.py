"""Property tests of the replay over random event logs (hypothesis).

- replaying a whole log at once equals updating one event at a time;
- the incrementally kept applied events equal a from-scratch computation written here
  straight from rasa-compat.md §2/§8 (loop names taken from the whole log);
- right after a rewind/undo, the state equals a fresh replay of the applied events;
- copies, ``travel_back_in_time(inf)`` and round trips agree, and no event is mutated.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.tracker import EventVerbosity, Tracker

ENTITIES = [{"entity": "city", "value": "Berlin"}, {"entity": "n", "value": 2}]
LOOPS = ["f", "g"]
ACTIONS = ["action_listen", "utter_a", *LOOPS]

_entities = st.lists(st.sampled_from(ENTITIES), max_size=2)
_user = st.builds(
    lambda text, intent, entities, channel: {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent}, "entities": entities, "text": text},
        "input_channel": channel,
        "metadata": {},
    },
    st.sampled_from(["hi", "bye"]),
    st.sampled_from(["greet", "order"]),
    _entities,
    st.sampled_from(["rest", "web", None]),
)
_action = st.one_of(
    st.sampled_from(ACTIONS).map(lambda n: {"event": "action", "name": n}),
    st.just({"event": "action", "name": None, "action_text": "free text"}),
)
_simple = st.sampled_from(
    [
        {"event": kind}
        for kind in (
            "restart",
            "session_started",
            "rewind",
            "undo",
            "reset_slots",
            "pause",
            "resume",
            "cancel_reminder",
            "some_unknown_type",
        )
    ]
    + [{"event": "bot", "text": "ok", "data": {}, "metadata": {}}]
)
EVENT = st.one_of(
    _user,
    _action,
    _action,
    _simple,
    st.builds(
        lambda n, v: {"event": "slot", "name": n, "value": v},
        st.sampled_from(["a", "b"]),
        st.sampled_from([1, "x", None, {"deep": [1]}]),
    ),
    st.sampled_from(["utter_a", "f"]).map(lambda n: {"event": "followup", "name": n}),
    st.sampled_from([*LOOPS, None]).map(lambda n: {"event": "active_loop", "name": n}),
    st.sampled_from(["f", None]).map(lambda n: {"event": "form", "name": n}),
    st.booleans().map(lambda b: {"event": "loop_interrupted", "is_interrupted": b}),
    st.booleans().map(lambda b: {"event": "form_validation", "validate": b}),
    st.sampled_from(LOOPS).map(lambda n: {"event": "action_execution_rejected", "name": n}),
    st.booleans().map(lambda b: {"event": "user_featurization", "use_text_for_featurization": b}),
    _entities.map(lambda e: {"event": "entities", "entities": e}),
)
#: Few types, so that loops run, repeat, get named late, rejected and rewound often.
LOOP_EVENT = st.sampled_from(
    [
        {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet"}}},
        {"event": "user", "text": "no", "parse_data": {"intent": {"name": "deny"}}},
        {"event": "action", "name": "action_listen"},
        {"event": "action", "name": "f"},
        {"event": "action", "name": "f"},
        {"event": "action", "name": "utter_a"},
        {"event": "active_loop", "name": "f"},
        {"event": "active_loop", "name": None},
        {"event": "action_execution_rejected", "name": "f"},
        {"event": "rewind"},
        {"event": "undo"},
        {"event": "slot", "name": "a", "value": 1},
        {"event": "user_featurization", "use_text_for_featurization": True},
    ]
)
_loop_logs = st.lists(LOOP_EVENT, min_size=12, max_size=40)
LOGS = st.one_of(st.lists(EVENT, max_size=40), _loop_logs, _loop_logs).map(
    lambda events: [{**e, "timestamp": float(i + 1)} for i, e in enumerate(events)]
)
PROPERTY = settings(max_examples=100, deadline=None)


# -- an independent, quadratic statement of Rasa's applied events ---------------------------
def reference_applied(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    loops = {e["name"] for e in log if e["event"] in ("active_loop", "form") and e.get("name")}
    kept: list[dict[str, Any]] = []

    def drop_through(kind: str) -> None:
        while kept and kept.pop()["event"] != kind:
            pass

    def repeated_happy_run(name: str) -> bool:
        later_action = None
        for e in kept[::-1]:
            if e["event"] in ("active_loop", "form") and e.get("name") is None:
                return False
            if e["event"] == "action_execution_rejected" and e.get("name") == name:
                return False
            if e["event"] == "user" and later_action not in (None, name):
                return False
            if e["event"] == "action":
                if e.get("name") == name:
                    return True
                later_action = e.get("name")
        return False

    for e in log:
        kind = e["event"]
        if kind in ("restart", "session_started"):
            kept = []
        elif kind == "undo":
            drop_through("action")
        elif kind == "rewind":
            drop_through("user")
            drop_through("action")
        elif kind == "action" and e.get("name") in loops and repeated_happy_run(e["name"]):
            last_run = max(
                i for i, x in enumerate(kept) if x["event"] == "action" and x["name"] == e["name"]
            )
            tail = kept[last_run + 1 :]
            kept[last_run + 1 :] = [
                x for x in tail if x["event"] not in ("action", "user", "user_featurization")
            ]
        else:
            kept.append(e)
    return kept


STATE_KEYS = ("latest_message", "followup_action", "paused", "active_loop", "latest_action")


@PROPERTY
@given(LOGS)
def test_replaying_at_once_equals_updating_one_by_one(log: list[dict[str, Any]]) -> None:
    at_once = Tracker.from_events("u1", log)
    one_by_one = Tracker("u1")
    for event in log:
        one_by_one.update(event)
    for verbosity in EventVerbosity:
        assert at_once.current_state(verbosity) == one_by_one.current_state(verbosity)
    assert at_once.latest_bot_utterance == one_by_one.latest_bot_utterance
    assert at_once.use_text_for_featurization == one_by_one.use_text_for_featurization


@PROPERTY
@given(LOGS)
def test_applied_events_match_the_reference_after_every_event(log: list[dict[str, Any]]) -> None:
    tracker = Tracker("u1")
    for i, event in enumerate(log):
        tracker.update(event)
        assert tracker.applied_events() == reference_applied(log[: i + 1])


@PROPERTY
@given(LOGS)
def test_rewind_and_undo_leave_the_state_of_a_fresh_replay(log: list[dict[str, Any]]) -> None:
    tracker = Tracker("u1", slots={})
    for event in log:
        tracker.update(event)
        if event["event"] not in ("rewind", "undo"):
            continue
        fresh = Tracker.from_events("u1", tracker.applied_events(), slots={})
        now, expected = tracker.current_state(), fresh.current_state()
        for key in STATE_KEYS:
            assert now[key] == expected[key], key
        assert set(expected["slots"]) <= set(now["slots"])
        assert now["slots"] == {**dict.fromkeys(now["slots"]), **expected["slots"]}
        assert tracker.latest_bot_utterance == fresh.latest_bot_utterance


@PROPERTY
@given(LOGS)
def test_copies_round_trips_and_immutability(log: list[dict[str, Any]]) -> None:
    snapshot = copy.deepcopy(log)
    tracker = Tracker.from_events("u1", log)
    full = tracker.current_state(EventVerbosity.ALL)
    assert tracker.events == snapshot
    assert Tracker.from_events("u1", tracker.events).current_state("ALL") == full
    assert tracker.copy().current_state("ALL") == full
    assert tracker.travel_back_in_time(float("inf")).current_state("ALL") == full
    twin = tracker.copy()
    twin.update({"event": "slot", "name": "a", "value": "changed"})
    twin.update({"event": "rewind"})
    assert tracker.current_state("ALL") == full
    assert log == snapshot


@PROPERTY
@given(LOGS, st.floats(min_value=0, max_value=45))
def test_travel_back_equals_replaying_the_prefix(log: list[dict[str, Any]], until: float) -> None:
    tracker = Tracker.from_events("u1", log)
    prefix = [e for e in log if e["timestamp"] <= until]
    past = tracker.travel_back_in_time(until)
    assert past.current_state("ALL") == Tracker.from_events("u1", prefix).current_state("ALL")
    assert past.applied_events() == reference_applied(prefix)
