"""The analytics tables (revision 0008): conversations projected for SQL reporting.

``eventstore analytics`` fills them from the feed (``eventstore.analytics``); they live in
the store's own database by default, so they are part of the schema at head, and deleting
a conversation from the SQL store (``forget``, retention) deletes its rows here in the same
transaction. docs/analytics.md describes every column.

Keys: event rows by (sender_id, seq), sessions by (sender_id, session_number), turns by
(sender_id, session_number, turn_number); numbers start at 1 per conversation. ``day``
columns are the UTC date as ``YYYY-MM-DD`` so that reports group by day with the same
SQL on every dialect. Per-conversation projection state (open session, current turn, last
seq) is kept in ``analytics_senders`` so that a run needs no replay.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, delete
from sqlalchemy.engine import Connection

from eventstore.stores.sql.schema import Double, ExactString, LongText, Position, metadata

_NAME = 255


def _sender() -> Column[str]:
    return Column("sender_id", ExactString(_NAME), primary_key=True)


def _event_columns() -> list[Column[object]]:
    """What every per-event table has: its key, position, session, turn and time."""
    return [
        Column("sender_id", ExactString(_NAME), primary_key=True),
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("position", Position, nullable=False),
        Column("session_number", Integer, nullable=False),
        Column("turn_number", Integer),
        Column("timestamp", Double, nullable=False),
        Column("day", String(10)),
    ]


#: One row per conversation, with the projection's state for it.
analytics_senders = Table(
    "analytics_senders",
    metadata,
    _sender(),
    Column("channel", ExactString(_NAME)),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("sessions", Integer, nullable=False),
    Column("user_messages", Integer, nullable=False),
    Column("events", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("last_position", Position, nullable=False),
    Column("open_session", Integer),
    Column("open_session_fresh", Boolean, nullable=False),
    Column("open_turn", Integer, nullable=False),
)

#: A session: from ``action_session_start``/``session_started`` (or the conversation's first
#: event) to the next session start or ``restart``.
analytics_sessions = Table(
    "analytics_sessions",
    metadata,
    _sender(),
    Column("session_number", Integer, primary_key=True, autoincrement=False),
    Column("channel", ExactString(_NAME)),
    Column("start_time", Double, nullable=False),
    Column("end_time", Double, nullable=False),
    Column("start_day", String(10)),
    Column("start_seq", Integer, nullable=False),
    Column("end_seq", Integer, nullable=False),
    Column("turns", Integer, nullable=False),
    Column("user_messages", Integer, nullable=False),
    Column("bot_messages", Integer, nullable=False),
    Column("actions", Integer, nullable=False),
    Column("events", Integer, nullable=False),
    Column("ended_by", String(32)),
    Index("ix_analytics_sessions_start_day", "start_day"),
)

#: A turn: a user message and everything after it up to the next one (or the session's end).
analytics_turns = Table(
    "analytics_turns",
    metadata,
    _sender(),
    Column("session_number", Integer, primary_key=True, autoincrement=False),
    Column("turn_number", Integer, primary_key=True, autoincrement=False),
    Column("start_time", Double, nullable=False),
    Column("end_time", Double, nullable=False),
    Column("start_seq", Integer, nullable=False),
    Column("end_seq", Integer, nullable=False),
    Column("intent", ExactString(_NAME)),
    Column("bot_messages", Integer, nullable=False),
    Column("actions", Integer, nullable=False),
    Column("reverted", Boolean, nullable=False),
)

analytics_user_messages = Table(
    "analytics_user_messages",
    metadata,
    *_event_columns(),
    Column("text", LongText),
    Column("intent", ExactString(_NAME)),
    Column("confidence", Double),
    Column("entities", LongText),
    Column("channel", ExactString(_NAME)),
    Column("message_id", String(_NAME)),
    Column("reverted", Boolean, nullable=False),
    Index("ix_analytics_user_messages_intent", "intent"),
    Index("ix_analytics_user_messages_day", "day"),
)

analytics_bot_messages = Table(
    "analytics_bot_messages",
    metadata,
    *_event_columns(),
    Column("text", LongText),
    Column("response", ExactString(_NAME)),
)

analytics_actions = Table(
    "analytics_actions",
    metadata,
    *_event_columns(),
    Column("name", ExactString(_NAME)),
    Column("policy", String(_NAME)),
    Column("confidence", Double),
    Column("reverted", Boolean, nullable=False),
    Index("ix_analytics_actions_name", "name"),
)

analytics_slot_changes = Table(
    "analytics_slot_changes",
    metadata,
    *_event_columns(),
    Column("name", ExactString(_NAME)),
    Column("value", LongText),
)

#: Every analytics table, children first (the order rows are deleted in).
ANALYTICS_TABLES = (
    analytics_user_messages,
    analytics_bot_messages,
    analytics_actions,
    analytics_slot_changes,
    analytics_turns,
    analytics_sessions,
    analytics_senders,
)
ANALYTICS_TABLE_NAMES = frozenset(table.name for table in ANALYTICS_TABLES)


def delete_analytics(conn: Connection, sender_id: str) -> None:
    """Delete one conversation's analytics rows in ``conn``'s transaction."""
    for table in ANALYTICS_TABLES:
        conn.execute(delete(table).where(table.c.sender_id == sender_id))
