"""A small known data set: three conversations over two days, and what the pages must show.

Every number in ``EXPECTED`` was counted by hand from the events below (not computed by
the code under test). ``base`` is midnight UTC of day 1; ``prefix`` keeps the ids apart
from other tests sharing a database.
"""

from __future__ import annotations

from typing import Any

DAY = 86_400
HOUR = 3_600
#: 2033-05-19 00:00 UTC: no other test stamps events in this range.
BASE = 2_000_073_600


def user(text: str, intent: str, confidence: float, at: float) -> dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "timestamp": at,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": []},
    }


def action(name: str, at: float) -> dict[str, Any]:
    return {"event": "action", "name": name, "timestamp": at}


def session(at: float) -> list[dict[str, Any]]:
    return [action("action_session_start", at), {"event": "session_started", "timestamp": at}]


def conversations(prefix: str = "", base: float = BASE) -> dict[str, list[dict[str, Any]]]:
    """``{sender_id: events}``: alice and bob on day 1, carol (two sessions) on day 2."""
    d1, d2 = base, base + DAY
    alice = [
        *session(d1 + 9 * HOUR),
        user("hi there", "greet", 0.95, d1 + 9 * HOUR + 1),
        action("utter_greet", d1 + 9 * HOUR + 2),
        {"event": "bot", "text": "Hello! How can I help?", "timestamp": d1 + 9 * HOUR + 2},
        user("book a table for two", "book_table", 0.88, d1 + 9 * HOUR + 60),
        {"event": "slot", "name": "guests", "value": 2, "timestamp": d1 + 9 * HOUR + 61},
        action("action_listen", d1 + 9 * HOUR + 62),
    ]
    bob = [
        *session(d1 + 14 * HOUR),
        user("hey", "greet", 0.45, d1 + 14 * HOUR + 1),
        action("action_default_fallback", d1 + 14 * HOUR + 2),
        user("asdfgh", "nlu_fallback", 0.30, d1 + 14 * HOUR + 30),
        action("action_human_handoff", d1 + 14 * HOUR + 31),
    ]
    carol = [
        *session(d2 + 9 * HOUR + 30 * 60),
        user("bye", "goodbye", 0.99, d2 + 9 * HOUR + 30 * 60 + 1),
        *session(d2 + 20 * HOUR),
        user("hello again", "greet", 0.97, d2 + 20 * HOUR + 1),
        user("a table please", "book_table", 0.91, d2 + 20 * HOUR + 20),
        {"event": "rewind", "timestamp": d2 + 20 * HOUR + 21},
        user("goodbye", "goodbye", 0.92, d2 + 20 * HOUR + 40),
    ]
    return {f"{prefix}alice": alice, f"{prefix}bob": bob, f"{prefix}carol": carol}


#: What the dashboard shows for days 1-2.
EXPECTED: dict[str, Any] = {
    "conversations_per_day": [2, 1],
    "sessions_per_day": [2, 2],
    "top_intents": {
        "labels": ["greet", "book_table", "goodbye", "nlu_fallback"],
        "counts": [3, 2, 2, 1],
    },
    # 0.95 0.88 0.45 0.30 0.99 0.97 0.91 0.92
    "confidence": [0, 0, 0, 1, 1, 0, 0, 0, 1, 5],
    # 4 user messages a day; day 1: one fallback action, one handoff
    "fallback_rate": [25.0, 0.0],
    "escalation_rate": [25.0, 0.0],
    # alice 2, bob 2, carol 1 then 3
    "turns_per_session": [0, 1, 2, 1, 0, 0, 0, 0, 0, 0, 0],
    "busiest_hours": {9: 3, 14: 2, 20: 3},
    "totals": {"conversations": 3, "sessions": 4, "turns": 8, "events": 23},
}
#: Newest activity first.
LIST_ORDER = ["carol", "bob", "alice"]
