"""The SQL schema at head: Rasa's ``events`` table plus ``seq`` and indexes, and the outbox.

``migrations/`` builds exactly this (``alembic check`` reports no drift); the store and
``migrations/env.py`` both take their metadata from here.

Types that matter per dialect: ``timestamp`` is a full double everywhere (MySQL DOUBLE,
Oracle BINARY_DOUBLE; Rasa's MySQL FLOAT was single precision) and ``data`` holds an event
of ``eventstore.events.MAX_EVENT_BYTES`` (MySQL MEDIUMTEXT, Oracle CLOB).
"""

from __future__ import annotations

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
)
from sqlalchemy.dialects import mysql, oracle

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

#: The head revision of ``migrations/versions`` this schema corresponds to.
HEAD_REVISION = "0003"
#: Revision 1 is Rasa's own table, exactly as its SQLTrackerStore creates it.
RASA_REVISION = "0001"

events = Table(
    "events",
    metadata,
    Column("id", Position, Sequence("events_seq", optional=True), primary_key=True),
    Column("sender_id", String(255), nullable=False),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Double),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
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
    Column("sender_id", String(255), nullable=False),
    Column("seq", Integer, nullable=False),
    Index("ix_event_outbox_event_id", "event_id", unique=True),
    sqlite_autoincrement=True,
)

#: The tables this project owns; migrations and ``alembic check`` ignore any other table.
TABLE_NAMES = frozenset({"events", "event_outbox"})
#: Columns that identify a table as Rasa's tracker ``events`` table.
RASA_COLUMNS = frozenset(
    {"id", "sender_id", "type_name", "timestamp", "intent_name", "action_name", "data"}
)
