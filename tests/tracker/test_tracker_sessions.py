"""Sessions (start sequence, expiry) and ``until`` (travel back in time), rasa-compat.md §2."""

from __future__ import annotations

from typing import Any

import pytest

from eventstore.errors import EventValidationError
from eventstore.tracker import Tracker, session_start_events
from tests.tracker.test_tracker import action, bot, ev, slot, user

T = 1_700_000_000.0
MINUTE = 60.0

SESSION_START = {
    "event": "action",
    "timestamp": T,
    "name": "action_session_start",
    "policy": None,
    "confidence": 1.0,
    "action_text": None,
    "hide_rule_turn": False,
}
LISTEN = {
    "event": "action",
    "timestamp": T,
    "name": "action_listen",
    "policy": None,
    "confidence": None,
    "action_text": None,
    "hide_rule_turn": False,
}


def test_session_start_sequence_for_a_new_conversation() -> None:
    assert session_start_events(timestamp=T) == [
        SESSION_START,
        {"event": "session_started", "timestamp": T},
        LISTEN,
    ]


def test_metadata_slot_comes_first_and_is_carried_over() -> None:
    meta_slot = {
        "event": "slot",
        "timestamp": T,
        "name": "session_started_metadata",
        "value": {"locale": "de"},
    }
    assert session_start_events(metadata={"locale": "de"}, timestamp=T) == [
        meta_slot,
        SESSION_START,
        {"event": "session_started", "timestamp": T},
        meta_slot,
        LISTEN,
    ]


def test_applied_slots_are_carried_over_in_order_with_their_metadata() -> None:
    events = [
        slot("city", "Berlin", 1),
        {**slot("city", "Paris", 2), "metadata": {"by": "form"}},
        slot("n", 1, 3),
        action("action_listen", 4),
        user("x", 5),
        slot("gone", True, 6),
        ev("rewind", 7),  # the reverted slot is not carried over
    ]
    tracker = Tracker.from_events("u1", events)
    started = session_start_events(tracker, timestamp=T)
    assert started == [
        SESSION_START,
        {"event": "session_started", "timestamp": T},
        {"event": "slot", "timestamp": T, "name": "city", "value": "Berlin"},
        {
            "event": "slot",
            "timestamp": T,
            "name": "city",
            "value": "Paris",
            "metadata": {"by": "form"},
        },
        {"event": "slot", "timestamp": T, "name": "n", "value": 1},
        LISTEN,
    ]
    without = session_start_events(tracker, carry_over_slots=False, timestamp=T)
    assert [e["event"] for e in without] == ["action", "session_started", "action"]


def test_start_session_updates_the_tracker() -> None:
    tracker = Tracker.from_events(
        "u1", [user("hi", 1), slot("city", "Berlin", 2), ev("pause", 3)], slots={}
    )
    added = tracker.start_session(timestamp=T)
    assert tracker.unsaved_events == added
    state = tracker.current_state("APPLIED")
    assert state["events"] == added[2:]  # after session_started: carried slot and listen
    assert state["slots"] == {"city": "Berlin"}
    assert state["paused"] is False
    assert state["latest_action_name"] == "action_listen"
    assert state["followup_action"] is None
    assert state["latest_message"]["text"] is None
    assert state["latest_input_channel"] == "rest"


def test_session_start_refuses_a_non_finite_timestamp() -> None:
    with pytest.raises(EventValidationError):
        session_start_events(timestamp=float("nan"))


def test_a_fresh_or_restarted_tracker_needs_a_session_start() -> None:
    fresh = Tracker("u1")
    assert fresh.needs_session_start(now=T)
    assert not fresh.has_session_started()
    fresh.start_session(timestamp=T)
    assert fresh.has_session_started()
    assert not fresh.needs_session_start(now=T + MINUTE)
    fresh.update(ev("restart", T + 2 * MINUTE))
    assert not fresh.has_session_started()
    assert fresh.needs_session_start(now=T + 2 * MINUTE)
    assert fresh.followup_action == "action_session_start"


def test_a_legacy_log_without_session_events_does_not_need_one() -> None:
    tracker = Tracker.from_events("u1", [action("action_listen", T), user("hi", T)])
    assert not tracker.has_session_started()
    assert not tracker.needs_session_start(now=T + 1)


@pytest.mark.parametrize(
    ("minutes_later", "expiration", "expired"),
    [(59, 60, False), (61, 60, True), (6, 5, True), (600, 0, False), (600, -1, False)],
)
def test_session_expires_after_the_last_user_message(
    minutes_later: float, expiration: float, expired: bool
) -> None:
    tracker = Tracker.from_events(
        "u1", [*session_start_events(timestamp=T), user("hi", T), bot("hey", T + 1)]
    )
    now = T + minutes_later * MINUTE
    assert tracker.session_expired(now, expiration_minutes=expiration) is expired
    assert tracker.needs_session_start(now, expiration_minutes=expiration) is expired


def test_expiry_counts_only_applied_user_messages() -> None:
    events = [
        *session_start_events(timestamp=T),
        user("old", T),
        action("action_listen", T + 1),
        user("reverted", T + 50 * MINUTE),
        ev("rewind", T + 50 * MINUTE),
    ]
    tracker = Tracker.from_events("u1", events)
    assert tracker.session_expired(T + 70 * MINUTE)  # 70 minutes after "old"
    no_user = Tracker.from_events("u1", session_start_events(timestamp=T))
    assert not no_user.session_expired(T + 10_000 * MINUTE)


def test_session_expired_defaults_to_the_clock() -> None:
    tracker = Tracker.from_events("u1", [user("hi", 1.0)])
    assert tracker.session_expired()
    tracker.update(user("now", 0))  # stamped now
    assert not tracker.session_expired()


# -- until ---------------------------------------------------------------------------------
def log() -> list[dict[str, Any]]:
    return [
        user("hi", 10),
        action("utter_greet", 20),
        slot("city", "Berlin", 30),
        action("action_listen", 40),
        user("bye", 50),
    ]


def test_travel_back_keeps_events_up_to_and_including_the_time() -> None:
    events = log()
    tracker = Tracker.from_events("u1", events)
    past = tracker.travel_back_in_time(30)
    assert past.events == events[:3]
    assert past.current_state("ALL") == Tracker.from_events("u1", events[:3]).current_state("ALL")
    assert past.slots["city"] == "Berlin"
    assert past.latest_action_name == "utter_greet"
    assert past.version == 3
    assert past.unsaved_events == []
    assert tracker.travel_back_in_time(29.999).events == events[:2]
    assert tracker.travel_back_in_time(float("inf")).events == events
    assert tracker.travel_back_in_time(0).current_state() == Tracker("u1").current_state()
    assert len(tracker) == 5  # the original is untouched


def test_travel_back_stops_at_the_first_later_event() -> None:
    events = [*log(), slot("late_import", 1, 5)]  # out of order: after ts 50, stamped 5
    tracker = Tracker.from_events("u1", events)
    assert tracker.travel_back_in_time(45).events == events[:4]


def test_travel_back_keeps_version_and_unsaved_events_consistent() -> None:
    tracker = Tracker.from_events("u1", log(), version=105)  # loaded from seq 101 on
    tracker.update(action("utter_bye", 60))
    tracker.update(action("action_listen", 70))
    past = tracker.travel_back_in_time(60)
    assert past.version == 105
    assert [e["name"] for e in past.unsaved_events] == ["utter_bye"]
    earlier = tracker.travel_back_in_time(20)
    assert earlier.version == 102
    assert earlier.unsaved_events == []


def test_travel_back_keeps_the_initial_slots() -> None:
    tracker = Tracker.from_events("u1", log(), slots={"size": "M"})
    assert tracker.travel_back_in_time(15).slots == {"size": "M"}
