"""Event builders for tests: fresh ids, user and bot turns, session starts, Rasa-shaped."""

from __future__ import annotations

import uuid
from typing import Any

from eventstore.stores.base import EventQuery, TrackerStore


def new_id(prefix: str = "c") -> str:
    """A conversation id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def user(text: str, intent: str = "greet", ts: float | None = None, **extra: Any) -> dict[str, Any]:
    """A Rasa ``user`` event."""
    event: dict[str, Any] = {
        "event": "user",
        "text": text,
        "parse_data": {
            "intent": {"name": intent, "confidence": 0.9},
            "entities": [],
            "text": text,
        },
        "input_channel": "rest",
        "message_id": uuid.uuid4().hex,
        "metadata": {},
        **extra,
    }
    if ts is not None:
        event["timestamp"] = ts
    return event


def action(name: str, ts: float | None = None) -> dict[str, Any]:
    """A Rasa ``action`` event."""
    event: dict[str, Any] = {"event": "action", "name": name, "policy": "p", "confidence": 1.0}
    if ts is not None:
        event["timestamp"] = ts
    return event


def bot(text: str) -> dict[str, Any]:
    """A Rasa ``bot`` event."""
    return {"event": "bot", "text": text, "data": {}, "metadata": {}}


def session_start(ts: float | None = None) -> list[dict[str, Any]]:
    """The events Rasa logs when a session starts."""
    stamp = {"timestamp": ts} if ts is not None else {}
    return [
        {"event": "action", "name": "action_session_start", **stamp},
        {"event": "session_started", **stamp},
        {"event": "action", "name": "action_listen", **stamp},
    ]


def turn(i: int) -> list[dict[str, Any]]:
    """One bot turn: user message, action, bot utterance, listen."""
    return [user(f"message {i}"), action("utter_greet"), bot(f"reply {i}"), action("action_listen")]


def seqs(store: TrackerStore, sender_id: str) -> list[int]:
    """The stored seqs of a conversation, in order."""
    return [e.seq for e in store.query(EventQuery(sender_id=sender_id))]
