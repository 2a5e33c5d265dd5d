"""Rows inserted without ``seq`` (Rasa's SQLTrackerStore) get their conversation's next seq.

Lets pods still running Rasa 3.6's SQLTrackerStore keep writing during a rolling upgrade:
the database numbers their rows under the per-conversation lock eventstore's appends take
(see ``eventstore.stores.sql.triggers``). PostgreSQL, MySQL/MariaDB and Oracle get a
BEFORE INSERT trigger (MySQL/MariaDB also the ``event_locks`` table); SQLite gets
``seq DEFAULT 0`` (the table is rebuilt) and an AFTER INSERT trigger. Downgrading removes
them; no row changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 09:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eventstore.stores.sql.schema import binary_collation
from eventstore.stores.sql.triggers import create_statements, drop_statements

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _seq_default(default: str | None) -> None:
    """SQLite: rebuild ``events`` with ``seq``'s default set to ``default`` (or none)."""
    with op.batch_alter_table(
        "events", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.alter_column(
            "seq", existing_type=sa.Integer(), existing_nullable=False, server_default=default
        )


def _literal(statement: str) -> sa.TextClause:
    """DDL as text with every colon kept (``:NEW.seq``, ``:=`` are not bind parameters)."""
    return sa.text(statement.replace(":", "\\:"))


def upgrade() -> None:
    """Install the trigger (and what it needs) for this dialect."""
    dialect = op.get_context().dialect
    if dialect.name == "sqlite":
        _seq_default("0")
    for statement in create_statements(dialect.name, binary_collation(dialect)):
        op.execute(_literal(statement))


def downgrade() -> None:
    """Remove the trigger; Rasa's SQLTrackerStore cannot write here any more."""
    dialect = op.get_context().dialect
    for statement in drop_statements(dialect.name):
        op.execute(_literal(statement))
    if dialect.name == "sqlite":
        _seq_default(None)
