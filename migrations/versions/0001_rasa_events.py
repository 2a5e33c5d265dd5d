"""Rasa's SQLTrackerStore ``events`` table, exactly as Rasa creates it.

A database Rasa already wrote holds this table without ``alembic_version``; ``eventstore db
upgrade`` stamps such a database at this revision. When plain ``alembic upgrade`` meets the
table, it adopts it here instead of failing, so every row is kept.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create Rasa's table (id, sender_id, type_name, timestamp, intent/action, data)."""
    if not context.is_offline_mode() and sa.inspect(op.get_bind()).has_table("events"):
        return  # written by Rasa's SQLTrackerStore: keep it as it is
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), sa.Sequence("events_seq", optional=True), nullable=False),
        sa.Column("sender_id", sa.String(255), nullable=False),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("timestamp", sa.Float()),
        sa.Column("intent_name", sa.String(255)),
        sa.Column("action_name", sa.String(255)),
        sa.Column("data", sa.Text()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_sender_id", "events", ["sender_id"])
    if op.get_context().dialect.name == "oracle":  # ids come from the sequence there
        op.execute(sa.schema.CreateSequence(sa.Sequence("events_seq")))


def downgrade() -> None:
    """Drop the table (and with it every stored event)."""
    op.drop_index("ix_events_sender_id", table_name="events")
    op.drop_table("events")
    if op.get_context().dialect.name == "oracle":
        op.execute(sa.schema.DropSequence(sa.Sequence("events_seq")))
