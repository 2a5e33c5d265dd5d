"""Contract tests for Rasa Pro's event types and the ``unknown_events`` option.

Mixed into ``eventstore.testing.TrackerStoreContract``, so every backend runs them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from eventstore.errors import EventValidationError
from eventstore.events import PRO_EVENT_TYPES
from eventstore.stores.base import TrackerStore

_FRAME = {"frame_id": "F1", "flow_id": "transfer_money", "step_id": "START", "type": "flow"}

#: One event of every Rasa Pro type with its fields, as Rasa Pro 3.x serialises them.
PRO_EVENTS: list[dict[str, Any]] = [
    {"event": "flow_started", "timestamp": 1.0, "flow_id": "transfer_money"},
    {
        "event": "stack",
        "timestamp": 2.0,
        "update": json.dumps([{"op": "add", "path": "/0", "value": _FRAME}]),
    },
    {"event": "flow_interrupted", "timestamp": 3.0, "flow_id": "transfer_money", "step_id": "a"},
    {"event": "flow_resumed", "timestamp": 4.0, "flow_id": "transfer_money", "step_id": "a"},
    {"event": "flow_completed", "timestamp": 5.0, "flow_id": "check_balance", "step_id": "END"},
    {"event": "flow_cancelled", "timestamp": 6.0, "flow_id": "old", "step_id": "ask"},
    {
        "event": "stack",
        "timestamp": 7.0,
        "update": json.dumps([{"op": "replace", "path": "/0/step_id", "value": "ask_amount"}]),
    },
    {"event": "routing_session_ended", "timestamp": 8.0},
    {
        "event": "agent_started",
        "timestamp": 9.0,
        "agent_id": "a1",
        "flow_id": "f",
        "context_id": "c",
    },
    {
        "event": "agent_completed",
        "timestamp": 10.0,
        "agent_id": "a1",
        "flow_id": "f",
        "status": "ok",
    },
    {"event": "agent_interrupted", "timestamp": 11.0, "agent_id": "a1", "flow_id": "f"},
    {"event": "agent_resumed", "timestamp": 12.0, "agent_id": "a1", "flow_id": "f"},
    {
        "event": "agent_cancelled",
        "timestamp": 13.0,
        "agent_id": "a1",
        "flow_id": "f",
        "reason": "x",
    },
    {"event": "error", "timestamp": 14.0, "metadata": {"error_type": "rasa_internal_error"}},
    {"event": "session_ended", "timestamp": 15.0, "metadata": {"_reason": "user_disconnected"}},
]
#: The stack and active flow Rasa Pro's tracker shows after ``PRO_EVENTS`` (until
#: ``session_ended``, which changes neither).
PRO_STACK = [{**_FRAME, "step_id": "ask_amount"}]


class ProEventsContract:
    """Rasa Pro events round-trip and replay; unknown types are refused or kept."""

    def test_every_rasa_pro_event_type_round_trips(self, store: TrackerStore) -> None:
        assert {e["event"] for e in PRO_EVENTS} == PRO_EVENT_TYPES
        sid = f"pro-{uuid.uuid4().hex[:8]}"
        assert store.append(sid, PRO_EVENTS) == len(PRO_EVENTS)
        assert store.read(sid) == PRO_EVENTS
        tracker = store.retrieve_full_tracker(sid)
        assert tracker is not None and tracker.events == PRO_EVENTS
        state = tracker.current_state()
        assert state["stack"] == PRO_STACK and tracker.active_flow == "transfer_money"

    def test_unknown_event_types_are_refused_or_kept_as_the_store_says(
        self, store: TrackerStore
    ) -> None:
        sid = f"new-{uuid.uuid4().hex[:8]}"
        newer = {"event": "future_thing", "timestamp": 1.5, "payload": {"a": [1, "b"]}}
        assert store.unknown_events == "refuse"
        with pytest.raises(EventValidationError, match="unknown event type 'future_thing'"):
            store.append(sid, [{"event": "action", "name": "a", "timestamp": 1.0}, newer])
        assert store.read(sid) == []  # nothing of that append stored
        store.unknown_events = "keep"
        try:
            assert store.append(sid, [newer, {"event": "action", "name": "a"}]) == 2
            assert store.read(sid)[0] == newer
            tracker = store.retrieve(sid)
            assert tracker is not None and tracker.latest_action_name == "a"
        finally:
            store.unknown_events = "refuse"
