"""Per-conversation ``seq`` (numbered in id order), full-precision timestamps, query indexes.

Existing rows get ``seq`` 1, 2, 3 ... per sender in ``id`` order (ROW_NUMBER where the
database has window functions), then ``seq`` becomes NOT NULL with a unique
(sender_id, seq) index. MySQL/MariaDB columns are widened: ``timestamp`` FLOAT -> DOUBLE,
``data`` TEXT -> MEDIUMTEXT; Oracle's ``timestamp`` becomes BINARY_DOUBLE. ``id`` (the
global position) becomes BIGINT on PostgreSQL and MySQL/MariaDB (SQLite's and Oracle's
integers are 64-bit already).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 02:31:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql, oracle

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = ("mysql", "mariadb")
WIDE_IDS = ("postgresql", "mysql", "mariadb")
QUERY_INDEXES = {
    "ix_events_sender_id_type_name_seq": ["sender_id", "type_name", "seq"],
    "ix_events_type_name": ["type_name"],
    "ix_events_intent_name": ["intent_name"],
    "ix_events_action_name": ["action_name"],
    "ix_events_timestamp": ["timestamp"],
}

events = sa.table(
    "events",
    sa.column("id", sa.Integer()),
    sa.column("sender_id", sa.String(255)),
    sa.column("seq", sa.Integer()),
)


def _dialect() -> str:
    return op.get_context().dialect.name


def _number_existing_rows() -> None:
    """seq = position of the row within its sender, in id order."""
    dialect = _dialect()
    if dialect == "oracle":
        op.execute(
            "MERGE INTO events e USING (SELECT id, ROW_NUMBER() OVER "
            "(PARTITION BY sender_id ORDER BY id) AS rn FROM events) n "
            "ON (e.id = n.id) WHEN MATCHED THEN UPDATE SET e.seq = n.rn"
        )
        return
    old_sqlite = (
        dialect == "sqlite"
        and not context.is_offline_mode()
        and op.get_bind().dialect.dbapi.sqlite_version_info < (3, 33)  # type: ignore[union-attr]
    )
    if old_sqlite:  # no window functions or UPDATE ... FROM: count the earlier rows
        earlier = sa.table("events", sa.column("id"), sa.column("sender_id")).alias("earlier")
        count = (
            sa.select(sa.func.count())
            .where(earlier.c.sender_id == events.c.sender_id, earlier.c.id <= events.c.id)
            .scalar_subquery()
        )
        op.execute(sa.update(events).values(seq=count))
        return
    numbered = sa.select(
        events.c.id,
        sa.func.row_number()
        .over(partition_by=events.c.sender_id, order_by=events.c.id)
        .label("rn"),
    ).subquery("numbered")
    op.execute(sa.update(events).where(events.c.id == numbered.c.id).values(seq=numbered.c.rn))


def _serial_sequence_as(type_name: str) -> None:
    """PostgreSQL: the SERIAL sequence behind ``events.id`` counts in ``type_name``."""
    op.execute(
        "DO $$ BEGIN IF pg_get_serial_sequence('events', 'id') IS NOT NULL THEN "
        f"EXECUTE format('ALTER SEQUENCE %s AS {type_name}', "
        "pg_get_serial_sequence('events', 'id')); END IF; END $$"
    )


def upgrade() -> None:
    """Add and fill ``seq``, widen types, add the unique and query indexes."""
    dialect = _dialect()
    op.add_column("events", sa.Column("seq", sa.Integer(), nullable=True))
    _number_existing_rows()
    with op.batch_alter_table(
        "events", recreate="auto", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        if dialect in WIDE_IDS:
            batch.alter_column(
                "id",
                existing_type=sa.Integer(),
                type_=sa.BigInteger(),
                existing_nullable=False,
                **({"autoincrement": True} if dialect in MYSQL else {}),
            )
        if dialect in MYSQL:
            batch.alter_column(
                "timestamp", existing_type=sa.Float(), type_=mysql.DOUBLE(asdecimal=False)
            )
            batch.alter_column("data", existing_type=sa.Text(), type_=mysql.MEDIUMTEXT())
    if dialect == "postgresql":
        _serial_sequence_as("bigint")
    if dialect == "oracle":  # NUMBER-based FLOAT cannot be altered in place when not empty
        op.add_column("events", sa.Column("timestamp_double", oracle.BINARY_DOUBLE()))
        op.execute('UPDATE events SET timestamp_double = "TIMESTAMP"')
        op.drop_column("events", "timestamp")
        op.alter_column("events", "timestamp_double", new_column_name="timestamp")
    op.create_index("ix_events_sender_id_seq", "events", ["sender_id", "seq"], unique=True)
    for name, columns in QUERY_INDEXES.items():
        op.create_index(name, "events", columns)


def downgrade() -> None:
    """Back to Rasa's layout: drop the indexes and ``seq``, narrow the MySQL types."""
    dialect = _dialect()
    for name in QUERY_INDEXES:
        op.drop_index(name, table_name="events")
    op.drop_index("ix_events_sender_id_seq", table_name="events")
    with op.batch_alter_table("events", recreate="auto") as batch:
        batch.drop_column("seq")
        if dialect in WIDE_IDS:
            batch.alter_column(
                "id",
                existing_type=sa.BigInteger(),
                type_=sa.Integer(),
                existing_nullable=False,
                **({"autoincrement": True} if dialect in MYSQL else {}),
            )
        if dialect in MYSQL:
            batch.alter_column(
                "timestamp", existing_type=mysql.DOUBLE(asdecimal=False), type_=sa.Float()
            )
            batch.alter_column("data", existing_type=mysql.MEDIUMTEXT(), type_=sa.Text())
    if dialect == "postgresql":
        _serial_sequence_as("integer")
