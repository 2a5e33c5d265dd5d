"""Active loops: activation, interruption, rejection, and loop pruning in APPLIED (§1, §2, §8)."""

from __future__ import annotations

from typing import Any

from eventstore.tracker import Tracker
from tests.tracker.test_tracker import action, ev, user


def applied(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return Tracker.from_events("u1", events).applied_events()


def loop_state(events: list[dict[str, Any]]) -> dict[str, Any]:
    return Tracker.from_events("u1", events).current_state()["active_loop"]


def test_active_loop_records_its_trigger_message() -> None:
    order = user("I want pizza", 2, intent="order")
    events = [action("action_listen", 1), order, action("pizza_form", 3)]
    events.append(ev("active_loop", 4, name="pizza_form"))
    assert loop_state(events) == {
        "name": "pizza_form",
        "is_interrupted": False,
        "rejected": False,
        "trigger_message": {
            "intent": {"name": "order", "confidence": 0.9},
            "entities": [],
            "text": "I want pizza",
            "message_id": "m-2",
            "metadata": {},
        },
    }
    tracker = Tracker.from_events("u1", events)
    assert tracker.active_loop_name == "pizza_form"
    assert loop_state([*events, ev("active_loop", 5, name=None)]) == {}


def test_loop_activated_before_any_user_message_has_the_empty_trigger() -> None:
    assert loop_state([ev("active_loop", 1, name="f")])["trigger_message"] == {
        "intent": {},
        "entities": [],
        "text": None,
        "message_id": None,
        "metadata": {},
    }


def test_interruption_is_set_by_loop_interrupted_and_cleared_by_any_action() -> None:
    start = [ev("active_loop", 1, name="f"), ev("loop_interrupted", 2, is_interrupted=True)]
    assert loop_state(start)["is_interrupted"] is True
    assert loop_state([*start, action("utter_other", 3)])["is_interrupted"] is False


def test_loop_interrupted_without_a_loop_does_nothing() -> None:
    assert loop_state([ev("loop_interrupted", 1, is_interrupted=True)]) == {}


def test_rejection_counts_only_for_the_active_loop_and_rerun_clears_it() -> None:
    start = [ev("active_loop", 1, name="f")]
    other = [*start, ev("action_execution_rejected", 2, name="g")]
    assert loop_state(other)["rejected"] is False
    rejected = [*start, ev("action_execution_rejected", 2, name="f")]
    assert loop_state(rejected)["rejected"] is True
    assert loop_state([*rejected, action("utter_help", 3)])["rejected"] is True
    assert loop_state([*rejected, action("f", 3)])["rejected"] is False


# -- pruning -------------------------------------------------------------------------------
HAPPY = [
    action("action_listen", 1),
    user("order", 2),
    action("f", 3),
    ev("active_loop", 4, name="f"),
    ev("slot", 5, name="requested_slot", value="size"),
    action("action_listen", 6),
    user("large", 7),
    ev("user_featurization", 8, use_text_for_featurization=False),
    ev("slot", 9, name="size", value="large"),
    action("f", 10),
]


def test_a_loop_run_on_the_happy_path_prunes_the_turn_since_its_previous_run() -> None:
    # Dropped: action_listen, user "large", its featurization and the repeated run itself;
    # the slot events stay.
    assert applied(HAPPY) == [HAPPY[i] for i in (0, 1, 2, 3, 4, 8)]
    # The state still saw every event.
    tracker = Tracker.from_events("u1", HAPPY)
    assert tracker.latest_action_name == "f"
    assert tracker.latest_message["text"] == "large"


def test_rewind_and_undo_replay_the_pruned_applied_events() -> None:
    tracker = Tracker.from_events("u1", [*HAPPY, ev("undo", 11)])
    # Undo pops through the last *applied* action: the first run of f.
    assert tracker.applied_events() == [HAPPY[0], HAPPY[1]]
    assert tracker.latest_action_name == "action_listen"
    assert tracker.active_loop == {}
    assert tracker.slots["size"] is None
    assert tracker.latest_message["text"] == "order"


def test_a_rejected_loop_is_on_an_unhappy_path_and_is_not_pruned() -> None:
    events = [
        *HAPPY[:7],
        ev("action_execution_rejected", 8, name="f"),
        action("utter_explain", 9),
        action("f", 10),
    ]
    assert applied(events) == events


def test_another_action_answering_the_user_is_an_unhappy_path() -> None:
    events = [*HAPPY[:7], action("utter_chitchat", 8), action("f", 9)]
    assert applied(events) == events


def test_a_deactivated_loop_runs_again_as_a_first_run() -> None:
    events = [
        *HAPPY[:4],
        ev("active_loop", 5, name=None),
        action("action_listen", 6),
        user("again", 7),
        action("f", 8),
    ]
    assert applied(events) == events
    legacy = [*HAPPY[:4], ev("form", 5, name=None), *events[5:]]
    assert applied(legacy) == legacy


def test_legacy_form_events_name_loops_for_pruning() -> None:
    events = [ev("form", 4, name="f") if e["event"] == "active_loop" else e for e in HAPPY]
    assert applied(events) == [events[i] for i in (0, 1, 2, 3, 4, 8)]


def test_a_loop_named_only_later_in_the_log_still_prunes_earlier_runs() -> None:
    # Rasa collects loop names from the whole log, so the active_loop event at the end
    # turns the second run of f into a repeated run.
    events = [
        action("action_listen", 1),
        user("a", 2),
        action("f", 3),
        action("action_listen", 4),
        user("b", 5),
        action("f", 6),
    ]
    assert applied(events) == events
    named = [*events, ev("active_loop", 7, name="f")]
    assert applied(named) == [*events[:3], named[-1]]
    # The same through update, one event at a time, and a rewind that uses the result.
    tracker = Tracker("u1")
    for event in [*named, ev("rewind", 8)]:
        tracker.update(event)
    assert tracker.applied_events() == []
    assert tracker.latest_action == {}


def test_only_names_from_active_loop_events_are_loops() -> None:
    repeated = [action("action_listen", 1), user("a", 2), action("g", 3), action("g", 4)]
    assert applied(repeated) == repeated
