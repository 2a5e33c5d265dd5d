"""MySQL/MariaDB: conversation ids and event names compare exactly (binary, no-pad collation).

The database's default utf8mb4 collation ignores case, accents and trailing spaces, so
'ALICE', 'alice ' and 'álice' were the same conversation as 'alice'. ``events.sender_id``,
``type_name``, ``intent_name``, ``action_name`` and ``event_outbox.sender_id`` get
``utf8mb4_nopad_bin`` (MariaDB) or ``utf8mb4_0900_bin`` (MySQL 8.0.17+; ``utf8mb4_bin``
before). Each table is altered in one statement; types, NOT NULL and indexes are kept.
Rows are never lost: values equal under the binary collation are byte for byte equal, so
they were equal under the old one too, and the unique (sender_id, seq) index cannot
collide. Other dialects compare exactly already: nothing to do there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 03:40:00
"""

from collections.abc import Sequence

from alembic import op

from eventstore.stores.sql.schema import binary_collation

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = ("mysql", "mariadb")
#: table -> (column, NOT NULL) of the VARCHAR(255) columns compared exactly from here on.
COLUMNS = {
    "events": [
        ("sender_id", True),
        ("type_name", True),
        ("intent_name", False),
        ("action_name", False),
    ],
    "event_outbox": [("sender_id", True)],
}


def _modify(collation: str | None) -> None:
    """One ALTER TABLE per table; ``None``: back to the table's default character set."""
    spec = f" CHARACTER SET utf8mb4 COLLATE {collation}" if collation else ""
    for table, columns in COLUMNS.items():
        changes = ", ".join(
            f"MODIFY {name} VARCHAR(255){spec} {'NOT NULL' if not_null else 'NULL'}"
            for name, not_null in columns
        )
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    """MySQL/MariaDB: the name columns get the binary no-pad collation."""
    dialect = op.get_context().dialect
    if dialect.name in MYSQL:
        _modify(binary_collation(dialect))


def downgrade() -> None:
    """MySQL/MariaDB: back to the table's default (case-insensitive) collation.

    Fails, changing nothing, when two conversations that differ only in case, accents or
    trailing spaces both exist (the unique (sender_id, seq) index would merge them).
    """
    if op.get_context().dialect.name in MYSQL:
        _modify(None)
