"""Gap-free feed: the ``event_feed_gate`` row (MySQL/MariaDB) and ``event_checkpoints``.

``event_feed_gate`` holds one row that appends lock in share mode until they commit and
feed readers lock exclusively for a moment, so a consumer resuming after a position never
misses an event whose transaction committed after a later one (docs/feed.md). It is
created on every dialect (one schema everywhere); only MySQL/MariaDB use it. PostgreSQL
uses advisory locks and SQLite serialises writers already. ``event_checkpoints`` keeps
the position each named subscription has processed. No existing row is touched.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, oracle

from eventstore.stores.sql.schema import ExactString

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: 64-bit like ``events.id`` (SQLite's and Oracle's INTEGER already are).
POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite", "oracle")
DOUBLE = (
    sa.Float(53)
    .with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")
    .with_variant(oracle.BINARY_DOUBLE(asdecimal=False), "oracle")
)


def upgrade() -> None:
    """Create ``event_feed_gate`` with its one row, and ``event_checkpoints``."""
    gate = op.create_table(
        "event_feed_gate",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_feed_gate")),
    )
    op.bulk_insert(gate, [{"id": 1}])
    op.create_table(
        "event_checkpoints",
        sa.Column("name", ExactString(255), nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("updated_at", DOUBLE, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_event_checkpoints")),
    )


def downgrade() -> None:
    """Drop both tables (subscriptions then start again from their ``after``)."""
    op.drop_table("event_checkpoints")
    op.drop_table("event_feed_gate")
