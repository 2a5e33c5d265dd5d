"""The ``tracker_snapshots`` table: one stored tracker state per conversation, at a version.

A cache of the log (``eventstore/snapshots.py``): written after appends by a background
thread, removed with the conversation's events, ignored when it does not match the log.
Dropping it loses nothing but speed; an upgraded database starts without snapshots and
gets them as conversations are used.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eventstore.stores.sql.schema import ExactString, LongText

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``tracker_snapshots`` (sender_id primary key, version, data)."""
    op.create_table(
        "tracker_snapshots",
        sa.Column("sender_id", ExactString(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", LongText, nullable=False),
        sa.PrimaryKeyConstraint("sender_id", name=op.f("pk_tracker_snapshots")),
    )


def downgrade() -> None:
    """Drop ``tracker_snapshots`` (every conversation is then replayed from its log)."""
    op.drop_table("tracker_snapshots")
