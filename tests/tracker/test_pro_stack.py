"""Rasa Pro's dialogue stack in replay: JSON Patch updates, resets, rewinds, bad patches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventstore.errors import EventValidationError
from eventstore.events import validate_event
from eventstore.flows import apply_patch
from eventstore.tracker import Tracker


def stack(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"event": "stack", "timestamp": 1.0, "update": json.dumps(list(ops))}


def frame(flow: str, step: str = "START") -> dict[str, Any]:
    return {"frame_id": flow.upper(), "flow_id": flow, "step_id": step, "type": "flow"}


def test_patches_build_the_stack_and_the_active_flow_is_the_top_frame() -> None:
    tracker = Tracker.from_events(
        "s",
        [
            stack({"op": "add", "path": "/0", "value": frame("a")}),
            stack({"op": "add", "path": "/1", "value": frame("b")}),
            stack({"op": "replace", "path": "/1/step_id", "value": "ask"}),
        ],
    )
    assert tracker.current_state()["stack"] == [frame("a"), frame("b", "ask")]
    assert tracker.active_flow == "b"
    tracker.update(stack({"op": "remove", "path": "/1"}))
    assert tracker.active_flow == "a"


def test_restart_and_session_started_empty_the_stack_as_rasa_resets() -> None:
    for reset in ("restart", "session_started"):
        tracker = Tracker.from_events(
            "s", [stack({"op": "add", "path": "/0", "value": frame("a")}), {"event": reset}]
        )
        assert tracker.current_state()["stack"] == [] and tracker.active_flow is None


def test_rewind_replays_only_the_stack_updates_still_applied() -> None:
    events = [
        {"event": "action", "name": "action_listen"},
        stack({"op": "add", "path": "/0", "value": frame("a")}),
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "oops", "parse_data": {}},
        stack({"op": "add", "path": "/1", "value": frame("b")}),
        {"event": "rewind"},
    ]
    assert Tracker.from_events("s", events).current_state()["stack"] == [frame("a")]


def test_a_log_without_stack_events_keeps_rasa_3_6_tracker_json() -> None:
    state = Tracker.from_events("s", [{"event": "action", "name": "a"}]).current_state()
    assert "stack" not in state


def test_every_json_patch_operation() -> None:
    start = [frame("a"), frame("b")]
    ops = [
        {"op": "copy", "from": "/0", "path": "/-"},
        {"op": "move", "from": "/0", "path": "/1"},
        {"op": "test", "path": "/0/flow_id", "value": "b"},
        {"op": "remove", "path": "/2"},
    ]
    assert apply_patch(start, json.dumps(ops)) == [frame("b"), frame("a")]
    assert start == [frame("a"), frame("b")]  # the input is never changed
    with pytest.raises(ValueError, match="test failed"):
        apply_patch(start, json.dumps([{"op": "test", "path": "/0/flow_id", "value": "z"}]))


@pytest.mark.parametrize(
    "update", ["not json", json.dumps({"op": "add"}), json.dumps([{"op": "jump", "path": "/0"}])]
)
def test_a_stack_update_that_is_not_a_json_patch_is_refused(update: str) -> None:
    with pytest.raises(EventValidationError, match="update"):
        validate_event({"event": "stack", "update": update})


def test_a_snapshot_keeps_the_dialogue_stack() -> None:
    from eventstore.snapshots import dump, restore
    from eventstore.tracker import DEFAULT_SLOTS

    events = [
        {"event": "session_started", "timestamp": 1.0},
        stack({"op": "add", "path": "/0", "value": frame("a")}),
        stack({"op": "add", "path": "/1", "value": frame("b", "ask")}),
    ]
    tracker = Tracker.from_events("s", events)
    tracker._stored = len(events)  # as retrieved from a store: every event stored
    data = dump(tracker)
    assert data is not None
    load = lambda after, count: events[after : after + count]  # noqa: E731
    restored = restore("s", data, load, DEFAULT_SLOTS)
    assert restored.current_state()["stack"] == [frame("a"), frame("b", "ask")]
    assert restored.active_flow == "b"
    assert restored.current_state() == tracker.current_state()
