"""Analytics tables: senders, sessions, turns, user and bot messages, actions, slot changes.

Filled by ``eventstore analytics`` from the feed (docs/analytics.md), which keeps its
checkpoint in ``event_checkpoints`` (name ``analytics``) in the same transaction as the rows.
New tables only: no existing row is touched; dropping them loses nothing the log does not
hold (``eventstore analytics --rebuild`` fills them again).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, oracle

from eventstore.stores.sql.schema import ExactString, LongText

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite", "oracle")
DOUBLE = (
    sa.Float(53)
    .with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")
    .with_variant(oracle.BINARY_DOUBLE(asdecimal=False), "oracle")
)
EVENT_TABLES = {
    "analytics_user_messages": [
        ("text", LongText),
        ("intent", ExactString(255)),
        ("confidence", DOUBLE),
        ("entities", LongText),
        ("channel", ExactString(255)),
        ("message_id", sa.String(255)),
    ],
    "analytics_bot_messages": [("text", LongText), ("response", ExactString(255))],
    "analytics_actions": [
        ("name", ExactString(255)),
        ("policy", sa.String(255)),
        ("confidence", DOUBLE),
    ],
    "analytics_slot_changes": [("name", ExactString(255)), ("value", LongText)],
}
REVERTIBLE = ("analytics_user_messages", "analytics_actions")


def _int(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), autoincrement=False, nullable=nullable)


def _counts(*names: str) -> list[sa.Column[int]]:
    return [_int(name) for name in names]


def upgrade() -> None:
    """Create the seven ``analytics_*`` tables and their indexes."""
    op.create_table(
        "analytics_senders",
        sa.Column("sender_id", ExactString(255), nullable=False),
        sa.Column("channel", ExactString(255), nullable=True),
        sa.Column("first_seen", DOUBLE, nullable=False),
        sa.Column("last_seen", DOUBLE, nullable=False),
        *_counts("sessions", "user_messages", "events", "last_seq"),
        sa.Column("last_position", POSITION, nullable=False),
        _int("open_session", nullable=True),
        sa.Column("open_session_fresh", sa.Boolean(), nullable=False),
        _int("open_turn"),
        sa.PrimaryKeyConstraint("sender_id", name=op.f("pk_analytics_senders")),
    )
    op.create_table(
        "analytics_sessions",
        sa.Column("sender_id", ExactString(255), nullable=False),
        _int("session_number"),
        sa.Column("channel", ExactString(255), nullable=True),
        sa.Column("start_time", DOUBLE, nullable=False),
        sa.Column("end_time", DOUBLE, nullable=False),
        sa.Column("start_day", sa.String(10), nullable=True),
        *_counts("start_seq", "end_seq", "turns", "user_messages", "bot_messages"),
        *_counts("actions", "events"),
        sa.Column("ended_by", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("sender_id", "session_number", name=op.f("pk_analytics_sessions")),
    )
    op.create_index("ix_analytics_sessions_start_day", "analytics_sessions", ["start_day"])
    op.create_table(
        "analytics_turns",
        sa.Column("sender_id", ExactString(255), nullable=False),
        *_counts("session_number", "turn_number"),
        sa.Column("start_time", DOUBLE, nullable=False),
        sa.Column("end_time", DOUBLE, nullable=False),
        *_counts("start_seq", "end_seq"),
        sa.Column("intent", ExactString(255), nullable=True),
        *_counts("bot_messages", "actions"),
        sa.Column("reverted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "sender_id", "session_number", "turn_number", name=op.f("pk_analytics_turns")
        ),
    )
    for name, columns in EVENT_TABLES.items():
        op.create_table(
            name,
            sa.Column("sender_id", ExactString(255), nullable=False),
            _int("seq"),
            sa.Column("position", POSITION, nullable=False),
            _int("session_number"),
            _int("turn_number", nullable=True),
            sa.Column("timestamp", DOUBLE, nullable=False),
            sa.Column("day", sa.String(10), nullable=True),
            *[sa.Column(column, type_, nullable=True) for column, type_ in columns],
            *([sa.Column("reverted", sa.Boolean(), nullable=False)] if name in REVERTIBLE else []),
            sa.PrimaryKeyConstraint("sender_id", "seq", name=op.f(f"pk_{name}")),
        )
    op.create_index("ix_analytics_user_messages_intent", "analytics_user_messages", ["intent"])
    op.create_index("ix_analytics_user_messages_day", "analytics_user_messages", ["day"])
    op.create_index("ix_analytics_actions_name", "analytics_actions", ["name"])


def downgrade() -> None:
    """Drop the analytics tables and the ``analytics`` checkpoint (a rebuild starts over)."""
    for name in (*EVENT_TABLES, "analytics_turns", "analytics_sessions", "analytics_senders"):
        op.drop_table(name)
    op.execute(sa.text("DELETE FROM event_checkpoints WHERE name = 'analytics'"))
