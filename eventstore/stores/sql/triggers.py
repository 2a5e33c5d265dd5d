"""Database-side ``seq`` for rows inserted without one (Rasa's own SQLTrackerStore).

During a rolling upgrade, pods still running Rasa's SQLTrackerStore insert rows with no
``seq``. The database gives each such row the next seq of its conversation, under the
same per-conversation lock eventstore's appends take, so the log has no gap and no
duplicate while both write. Revision 0005 installs this; the DDL lives here so that a
later revision which rebuilds ``events`` (SQLite batch mode drops triggers) can reinstall
it.

- PostgreSQL: a BEFORE INSERT trigger takes the conversation's transaction advisory lock
  (the key eventstore's appends use), reads max(seq) and takes a fresh ``id`` after the
  lock, so ids of a conversation follow its seqs.
- MySQL/MariaDB: a BEFORE INSERT trigger locks the conversation's row in ``event_locks``
  (eventstore's appends lock the same row first) and reads max(seq) with a current read.
  It also drops the id such a row brings: Rasa on MariaDB 10.3+ takes ids from its own
  ``events_seq`` sequence, which knows nothing of eventstore's AUTO_INCREMENT ids. The
  AUTO_INCREMENT id is assigned after the trigger, so ids follow the seqs too.
- SQLite: ``seq`` defaults to 0 and an AFTER INSERT trigger numbers the row; writers are
  serialised by the database's write lock.
- Oracle: a BEFORE INSERT trigger reads max(seq); concurrent writers of one conversation
  are caught by the unique (sender_id, seq) index (one of them fails, nothing is doubled).
"""

from __future__ import annotations

#: Name of the trigger (and PostgreSQL function) on every dialect.
TRIGGER = "events_assign_seq"
#: MySQL/MariaDB: one row per conversation, locked by every writer of that conversation.
LOCK_TABLE = "event_locks"
#: First key of the PostgreSQL advisory locks that serialise writers of one conversation.
PG_LOCK_CLASS = 0x65767473

_PG = [
    f"""CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({PG_LOCK_CLASS}, hashtext(NEW.sender_id));
    SELECT COALESCE(MAX(seq), 0) + 1 INTO NEW.seq FROM events WHERE sender_id = NEW.sender_id;
    NEW.id := nextval(pg_get_serial_sequence('events', 'id'));
    RETURN NEW;
END
$$""",
    f"""CREATE TRIGGER {TRIGGER} BEFORE INSERT ON events FOR EACH ROW
WHEN (NEW.seq IS NULL) EXECUTE FUNCTION {TRIGGER}()""",
]

_PG_DROP = [
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON events",
    f"DROP FUNCTION IF EXISTS {TRIGGER}()",
]


def _mysql(collation: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (
    sender_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL,
    PRIMARY KEY (sender_id)
)""",
        f"""CREATE TRIGGER {TRIGGER} BEFORE INSERT ON events FOR EACH ROW
BEGIN
    IF NEW.seq IS NULL OR NEW.seq = 0 THEN
        SET NEW.id = NULL;
        INSERT INTO {LOCK_TABLE} (sender_id) VALUES (NEW.sender_id)
            ON DUPLICATE KEY UPDATE sender_id = sender_id;
        SET NEW.seq = COALESCE(
            (SELECT MAX(e.seq) FROM events e WHERE e.sender_id = NEW.sender_id), 0) + 1;
    END IF;
END""",
    ]


_MYSQL_DROP = [f"DROP TRIGGER IF EXISTS {TRIGGER}", f"DROP TABLE IF EXISTS {LOCK_TABLE}"]

_SQLITE = [
    f"""CREATE TRIGGER {TRIGGER} AFTER INSERT ON events FOR EACH ROW WHEN NEW.seq = 0
BEGIN
    UPDATE events SET seq = (
        SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE sender_id = NEW.sender_id
    ) WHERE id = NEW.id;
END""",
]

_ORACLE = [
    f"""CREATE OR REPLACE TRIGGER {TRIGGER}
BEFORE INSERT ON events FOR EACH ROW
WHEN (NEW.seq IS NULL)
BEGIN
    SELECT NVL(MAX(seq), 0) + 1 INTO :NEW.seq FROM events WHERE sender_id = :NEW.sender_id;
END;""",
]


def create_statements(dialect: str, collation: str = "utf8mb4_nopad_bin") -> list[str]:
    """The DDL that makes ``dialect`` number rows inserted without ``seq``."""
    if dialect == "postgresql":
        return list(_PG)
    if dialect in ("mysql", "mariadb"):
        return _mysql(collation)
    if dialect == "sqlite":
        return list(_SQLITE)
    if dialect == "oracle":
        return list(_ORACLE)
    return []


def drop_statements(dialect: str) -> list[str]:
    """The DDL that removes what ``create_statements`` made."""
    if dialect == "postgresql":
        return list(_PG_DROP)
    if dialect in ("mysql", "mariadb"):
        return list(_MYSQL_DROP)
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {TRIGGER}"]
    if dialect == "oracle":
        return [f"DROP TRIGGER {TRIGGER}"]
    return []
