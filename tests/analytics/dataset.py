"""A small known data set for the analytics tables, and the numbers counted by hand from it.

Five conversations over two days, on two channels, with what the projection must handle:
a ``restart`` (dave), an ``undo`` (dave), a ``rewind`` (carol), two sessions in one
conversation (carol) and a conversation without any session start (erin). Every number in
``EXPECTED`` was counted from the events below, not computed by the code under test.
"""

from __future__ import annotations

from typing import Any

from tests.ui.dataset import BASE, DAY, HOUR, action, session

Event = dict[str, Any]


def user(text: str, intent: str, confidence: float, at: float, channel: str) -> Event:
    entities = [{"entity": "guests", "value": 2}] if intent == "book_table" else []
    return {
        "event": "user",
        "text": text,
        "timestamp": at,
        "input_channel": channel,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": entities},
    }


def bot(text: str, response: str, at: float) -> Event:
    return {"event": "bot", "text": text, "timestamp": at, "metadata": {"utter_action": response}}


def conversations(prefix: str = "", base: float = BASE) -> dict[str, list[Event]]:
    """``{sender_id: events}``: alice, bob and dave on day 1, carol and erin on day 2."""
    d1, d2 = base, base + DAY
    a, b, c, d, e = (d1 + 9 * HOUR, d1 + 14 * HOUR, d2 + 9 * HOUR, d1 + 18 * HOUR, d2 + 11 * HOUR)
    alice = [
        *session(a),
        user("hi there", "greet", 0.95, a + 1, "web"),
        action("utter_greet", a + 2),
        bot("Hello! How can I help?", "utter_greet", a + 2),
        user("book a table for two", "book_table", 0.88, a + 60, "web"),
        {"event": "slot", "name": "guests", "value": 2, "timestamp": a + 61},
        action("action_listen", a + 62),
    ]
    bob = [
        *session(b),
        user("hey", "greet", 0.45, b + 1, "telegram"),
        action("action_default_fallback", b + 2),
        user("asdfgh", "nlu_fallback", 0.30, b + 30, "telegram"),
        action("action_human_handoff", b + 31),
    ]
    dave = [
        *session(d),
        user("hello", "greet", 0.9, d + 1, "web"),
        action("utter_greet", d + 2),
        {"event": "restart", "timestamp": d + 3},
        *session(d + 600),
        user("bye", "goodbye", 0.9, d + 601, "web"),
        action("utter_goodbye", d + 602),
        {"event": "undo", "timestamp": d + 603},
    ]
    carol = [
        *session(c + 30 * 60),
        user("bye", "goodbye", 0.99, c + 30 * 60 + 1, "web"),
        *session(d2 + 20 * HOUR),
        user("hello again", "greet", 0.97, d2 + 20 * HOUR + 1, "web"),
        user("a table please", "book_table", 0.91, d2 + 20 * HOUR + 20, "web"),
        {"event": "rewind", "timestamp": d2 + 20 * HOUR + 21},
        user("goodbye", "goodbye", 0.92, d2 + 20 * HOUR + 40, "web"),
    ]
    erin = [  # an old conversation: no session start at all
        user("help", "nlu_fallback", 0.2, e, "telegram"),
        action("action_default_fallback", e + 1),
        user("hi", "greet", 0.8, e + 30, "telegram"),
    ]
    return {
        f"{prefix}alice": alice,
        f"{prefix}bob": bob,
        f"{prefix}dave": dave,
        f"{prefix}carol": carol,
        f"{prefix}erin": erin,
    }


DAY1, DAY2 = "2033-05-19", "2033-05-20"

#: What each query of docs/analytics.md returns on this data set, counted by hand.
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    # day 1: alice (web), bob (telegram), dave twice (web: restart, new session);
    # day 2: carol twice (web), erin once (telegram, no session start: one session)
    "sessions_per_day_and_channel": [
        (DAY1, "telegram", 1),
        (DAY1, "web", 3),
        (DAY2, "telegram", 1),
        (DAY2, "web", 2),
    ],
    # 12 user messages; carol's "a table please" was rewound and does not count
    "top_intents": [("greet", 5), ("goodbye", 3), ("nlu_fallback", 2), ("book_table", 1)],
    # day 1: 4 sessions, bob's has a fallback and a handoff; day 2: 3 sessions, erin's
    # has nlu_fallback and action_default_fallback, none a handoff
    "fallback_and_escalation_rate": [(DAY1, 4, 1, 1, 25.0, 25.0), (DAY2, 3, 1, 0, 33.3, 0.0)],
    "intent_distribution_over_time": [
        (DAY1, "greet", 3),
        (DAY1, "book_table", 1),
        (DAY1, "goodbye", 1),
        (DAY1, "nlu_fallback", 1),
        (DAY2, "goodbye", 2),
        (DAY2, "greet", 2),
        (DAY2, "nlu_fallback", 1),
    ],
    # turns: alice 2, bob 2, dave 1 + 1, carol 1 + 2 (3 less the rewound one), erin 2
    # = 11 over 7 sessions
    "average_turns_per_session": [(7, 11, 1.57)],
}

#: Rows per table on this data set.
ROW_COUNTS = {
    "analytics_senders": 5,
    "analytics_sessions": 7,
    "analytics_turns": 12,
    "analytics_user_messages": 12,
    "analytics_bot_messages": 1,
    "analytics_actions": 13,
    "analytics_slot_changes": 1,
}
