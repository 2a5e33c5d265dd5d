"""The SQL schema at head: Rasa's ``events`` table plus ``seq`` and indexes, and the outbox.

``migrations/`` builds exactly this (``alembic check`` reports no drift); the store and
``migrations/env.py`` both take their metadata from here.

Types that matter per dialect: ``timestamp`` is a full double everywhere (MySQL DOUBLE,
Oracle BINARY_DOUBLE; Rasa's MySQL FLOAT was single precision), ``data`` holds an event
of ``eventstore.events.MAX_EVENT_BYTES`` (MySQL MEDIUMTEXT, Oracle CLOB), and the name
columns compare exactly on MySQL/MariaDB too (``ExactString``: a binary, no-pad collation).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects import mysql, oracle
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

#: Names for constraints and indexes, so migrations and ``alembic check`` agree everywhere.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: A float that keeps all 53 bits of a double on every dialect.
Double = (
    Float(53)
    .with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")
    .with_variant(oracle.BINARY_DOUBLE(asdecimal=False), "oracle")
)
#: 64-bit ids: the global position must not run out at 2**31 events. SQLite's INTEGER
#: PRIMARY KEY is 64-bit already (and must be spelled INTEGER); Oracle's INTEGER is NUMBER(38).
Position = BigInteger().with_variant(Integer, "sqlite", "oracle")
#: Text large enough for the biggest accepted event on every dialect (Oracle Text is CLOB).
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def binary_collation(dialect: Dialect) -> str:
    """The MySQL/MariaDB collation that compares strings byte for byte, trailing spaces too.

    The default utf8mb4 collations ignore case, accents and trailing spaces, and even
    ``utf8mb4_bin`` pads (``'a' = 'a '``). MariaDB has ``utf8mb4_nopad_bin`` (10.2+), MySQL
    ``utf8mb4_0900_bin`` (8.0.17+; older MySQL only has the padding ``utf8mb4_bin``).
    """
    if getattr(dialect, "is_mariadb", False) or dialect.name == "mariadb":
        return "utf8mb4_nopad_bin"
    version = getattr(dialect, "server_version_info", None)
    if version is not None and tuple(version) < (8, 0, 17):
        return "utf8mb4_bin"
    return "utf8mb4_0900_bin"


class ExactString(TypeDecorator[str]):
    """String(length) compared exactly: ``'alice'``, ``'ALICE'``, ``'alice '``, ``'álice'`` differ.

    PostgreSQL, SQLite and Oracle compare VARCHARs exactly already; MySQL/MariaDB get the
    binary no-pad collation of ``binary_collation`` (picked per server, so not a variant).
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            collation = binary_collation(dialect)
            return dialect.type_descriptor(mysql.VARCHAR(self.length, collation=collation))
        return dialect.type_descriptor(String(self.length))


#: The head revision of ``migrations/versions`` this schema corresponds to.
HEAD_REVISION = "0008"
#: Revision 1 is Rasa's own table, exactly as its SQLTrackerStore creates it.
RASA_REVISION = "0001"

events = Table(
    "events",
    metadata,
    Column("id", Position, Sequence("events_seq", optional=True), primary_key=True),
    Column("sender_id", ExactString(255), nullable=False),
    Column("type_name", ExactString(255), nullable=False),
    Column("timestamp", Double),
    Column("intent_name", ExactString(255)),
    Column("action_name", ExactString(255)),
    Column("data", LongText),
    Column("seq", Integer, nullable=False),
    Index("ix_events_sender_id", "sender_id"),
    Index("ix_events_sender_id_seq", "sender_id", "seq", unique=True),
    Index("ix_events_sender_id_type_name_seq", "sender_id", "type_name", "seq"),
    Index("ix_events_type_name", "type_name"),
    Index("ix_events_intent_name", "intent_name"),
    Index("ix_events_action_name", "action_name"),
    Index("ix_events_timestamp", "timestamp"),
    sqlite_autoincrement=True,
)

#: Stored events the broker has not confirmed yet; rows are written with the events.
event_outbox = Table(
    "event_outbox",
    metadata,
    Column("id", Position, Sequence("event_outbox_seq", optional=True), primary_key=True),
    Column("event_id", Position, nullable=False),
    Column("sender_id", ExactString(255), nullable=False),
    Column("seq", Integer, nullable=False),
    Index("ix_event_outbox_event_id", "event_id", unique=True),
    sqlite_autoincrement=True,
)

#: One tracker snapshot per conversation (``eventstore/snapshots.py``): a cache of the log,
#: written after appends, removed with the conversation's events.
tracker_snapshots = Table(
    "tracker_snapshots",
    metadata,
    Column("sender_id", ExactString(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("data", LongText, nullable=False),
)

#: One row (id 1). On MySQL/MariaDB every append holds a shared lock on it until it commits
#: and a feed reader takes it exclusively for a moment: the ids it sees then are final, so
#: a consumer resuming after a position never misses an event committed late (docs/feed.md).
event_feed_gate = Table(
    "event_feed_gate",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
)

#: The position each named subscription has processed up to (``eventstore.feed``).
event_checkpoints = Table(
    "event_checkpoints",
    metadata,
    Column("name", ExactString(255), primary_key=True),
    Column("position", Position, nullable=False),
    Column("updated_at", Double, nullable=False),
)

#: The tables this project owns besides the analytics ones (``analytics_schema``);
#: migrations and ``alembic check`` ignore any other table.
TABLE_NAMES = frozenset(
    {"events", "event_outbox", "tracker_snapshots", "event_feed_gate", "event_checkpoints"}
)
#: Columns that identify a table as Rasa's tracker ``events`` table.
RASA_COLUMNS = frozenset(
    {"id", "sender_id", "type_name", "timestamp", "intent_name", "action_name", "data"}
)
