"""Gap-free positions and subscription checkpoints for the SQL store.

``events.id`` is taken when a row is inserted, but transactions commit in another order:
a reader could see id 11 before id 10 commits, move past it, and never see 10. So every
position-ordered read stops at the *horizon*, the highest id no transaction in flight can
still fall below:

- PostgreSQL: appends hold a shared transaction advisory lock (``FEED_LOCK``) from before
  they take ids until they commit; the reader takes it exclusively for a moment and reads
  ``max(id)`` while holding it, so every id up to there is committed or rolled back.
- MySQL/MariaDB: the same with a shared/exclusive row lock on ``event_feed_gate``'s row.
- SQLite: writers hold the database's write lock from ``BEGIN IMMEDIATE`` to commit, so ids
  become visible in order already: no horizon needed.

The cost: appends take one more lock (PostgreSQL: in the statement that takes the
conversation's lock; MySQL: one more statement); a feed read waits for the appends in
flight (milliseconds) and makes new ones wait that long too. bench/README.md has figures.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select, text
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from eventstore.stores.sql.schema import event_checkpoints, event_feed_gate, events

#: (class, key) of the PostgreSQL advisory lock appends share and feed readers take alone.
FEED_LOCK = (0x66656564, 0)  # "feed"
_MYSQL = ("mysql", "mariadb")
#: MySQL/MariaDB: an appender's shared lock on the gate's row (text: no statement built
#: per append).
_GATE_SHARED = text(f"SELECT id FROM {event_feed_gate.name} WHERE id = 1 LOCK IN SHARE MODE")


def enter_feed_gate(conn: Connection) -> None:
    """An appender's shared hold on the gate, kept until its transaction ends (MySQL).

    PostgreSQL takes its shared advisory lock of ``FEED_LOCK`` in the statement that takes
    the conversation's lock instead (``locks``: no extra round trip); SQLite needs nothing.
    """
    if conn.dialect.name in _MYSQL:
        conn.execute(_GATE_SHARED)


def horizon(conn: Connection) -> int | None:
    """The highest id every reader may see: no append in flight can commit below it.

    Runs its own short transaction on ``conn`` (which must have none open). None when the
    dialect needs no horizon (SQLite: ids commit in order).
    """
    dialect = conn.dialect.name
    if dialect not in ("postgresql", *_MYSQL):
        return None
    with conn.begin():
        if dialect == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(*FEED_LOCK)))
        else:
            conn.execute(
                select(event_feed_gate.c.id).where(event_feed_gate.c.id == 1).with_for_update()
            )
        return int(conn.execute(select(func.max(events.c.id))).scalar() or 0)


def ensure_gate_row(conn: Connection) -> None:
    """Put back the gate's one row should it be missing (without it MySQL locks a gap)."""
    if conn.dialect.name not in _MYSQL:
        return
    found = conn.execute(select(event_feed_gate.c.id).where(event_feed_gate.c.id == 1)).first()
    if found is None:
        conn.execute(mysql_insert(event_feed_gate).prefix_with("IGNORE").values(id=1))


def load_checkpoint(conn: Connection, name: str) -> int | None:
    """The position subscription ``name`` has processed up to, None when it never saved one."""
    stmt = select(event_checkpoints.c.position).where(event_checkpoints.c.name == name)
    value = conn.execute(stmt).scalar()
    return None if value is None else int(value)


def save_checkpoint(conn: Connection, name: str, position: int) -> None:
    """Record ``position`` for ``name`` in ``conn``'s transaction (an upsert per dialect)."""
    values = {"name": name, "position": position, "updated_at": time.time()}
    dialect = conn.dialect.name
    changed = {"position": position, "updated_at": values["updated_at"]}
    if dialect == "postgresql":
        pg = pg_insert(event_checkpoints).values(**values)
        conn.execute(pg.on_conflict_do_update(index_elements=["name"], set_=changed))
    elif dialect in _MYSQL:
        my = mysql_insert(event_checkpoints).values(**values)
        conn.execute(my.on_duplicate_key_update(**changed))
    elif dialect == "sqlite":
        lite = sqlite_insert(event_checkpoints).values(**values)
        conn.execute(lite.on_conflict_do_update(index_elements=["name"], set_=changed))
    else:
        updated = conn.execute(
            event_checkpoints.update().where(event_checkpoints.c.name == name).values(**changed)
        )
        if not updated.rowcount:
            conn.execute(event_checkpoints.insert().values(**values))
