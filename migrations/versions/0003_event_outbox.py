"""The ``event_outbox`` table: stored events the event broker has not confirmed yet.

Rows are inserted in the same transaction as their events and deleted once the broker
confirms them, so a broker outage loses nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 02:32:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: 64-bit like ``events.id`` (SQLite's and Oracle's INTEGER already are).
POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite", "oracle")


def upgrade() -> None:
    """Create ``event_outbox`` (id, event_id -> events.id, sender_id, seq)."""
    op.create_table(
        "event_outbox",
        sa.Column("id", POSITION, sa.Sequence("event_outbox_seq", optional=True), nullable=False),
        sa.Column("event_id", POSITION, nullable=False),
        sa.Column("sender_id", sa.String(255), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_outbox_event_id", "event_outbox", ["event_id"], unique=True)
    if op.get_context().dialect.name == "oracle":
        op.execute(sa.schema.CreateSequence(sa.Sequence("event_outbox_seq")))


def downgrade() -> None:
    """Drop ``event_outbox`` (unpublished events are then no longer tracked)."""
    op.drop_index("ix_event_outbox_event_id", table_name="event_outbox")
    op.drop_table("event_outbox")
    if op.get_context().dialect.name == "oracle":
        op.execute(sa.schema.DropSequence(sa.Sequence("event_outbox_seq")))
