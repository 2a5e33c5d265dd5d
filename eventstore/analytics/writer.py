"""One batch of the feed into the analytics tables, in the caller's transaction.

``project_batch`` loads the stored state of the batch's conversations, runs the
``Projection`` and writes its ``Changes``: inserts with one executemany per table, updates
of sessions, turns and senders by primary key. When the tables share the store's
database, each conversation's last event in the batch is locked first (shared), so a
conversation deleted meanwhile (``forget``) is skipped, and one deleted after is deleted
with its rows here (the store deletes analytics rows after the events).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, false, insert, select, true, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.schema import Table

from eventstore.analytics.projection import Changes, Projection, Row
from eventstore.stores.records import StoredEvent
from eventstore.stores.sql.analytics_schema import (
    ANALYTICS_TABLES,
    analytics_actions,
    analytics_bot_messages,
    analytics_senders,
    analytics_sessions,
    analytics_slot_changes,
    analytics_turns,
    analytics_user_messages,
    delete_analytics,
)
from eventstore.stores.sql.schema import events

EVENT_TABLES: dict[str, Table] = {
    "user_messages": analytics_user_messages,
    "bot_messages": analytics_bot_messages,
    "actions": analytics_actions,
    "slot_changes": analytics_slot_changes,
}
#: Conversations per ``IN (...)`` list (well under every dialect's parameter limit).
_CHUNK = 500


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


class StoredLookup:
    """``Lookup`` over the tables, in the batch's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def latest_unreverted(
        self, table: str, sender_id: str, session: int, below_seq: int | None
    ) -> tuple[int, int | None] | None:
        t = EVENT_TABLES[table]
        where = [
            t.c.sender_id == sender_id,
            t.c.session_number == session,
            t.c.reverted == false(),
        ]
        if below_seq is not None:
            where.append(t.c.seq < below_seq)
        if table == "actions":
            where.append(t.c.name != "action_listen")
        stmt = select(t.c.seq, t.c.turn_number).where(*where).order_by(t.c.seq.desc()).limit(1)
        row = self.conn.execute(stmt).first()
        return None if row is None else (int(row.seq), row.turn_number)


def live_events(conn: Connection, batch: list[StoredEvent]) -> list[StoredEvent]:
    """The events of ``batch`` whose conversation still holds them (store's own database).

    Locks (shared) each conversation's last event of the batch until the transaction
    ends: a concurrent delete of the conversation waits for this batch's rows and then
    deletes them too, or has deleted the events already and they are skipped here.
    """
    last: dict[str, int] = {}
    for event in batch:
        if event.position is not None:
            last[event.sender_id] = event.position
    present: set[int] = set()
    for chunk in _chunks(list(last.values())):
        stmt = select(events.c.id).where(events.c.id.in_(chunk))
        if conn.dialect.name != "sqlite":  # SQLite: the write lock is held already
            stmt = stmt.with_for_update(read=True)
        present.update(int(i) for i in conn.execute(stmt).scalars())
    gone = {sender for sender, position in last.items() if position not in present}
    return [event for event in batch if event.sender_id not in gone] if gone else batch


def _rows(conn: Connection, stmt: Any) -> Iterator[Row]:
    """Rows of ``stmt`` as plain dicts (cheaper than ``RowMapping`` copies)."""
    result = conn.execute(stmt)
    keys = list(result.keys())
    for values in result:
        yield dict(zip(keys, values, strict=True))


def load_changes(conn: Connection, sender_ids: list[str]) -> Changes:
    """The stored state of these conversations: sender rows, open sessions, current turns."""
    changes = Changes()
    s, se, tu = analytics_senders, analytics_sessions, analytics_turns
    session_join = se.join(
        s, and_(se.c.sender_id == s.c.sender_id, se.c.session_number == s.c.open_session)
    )
    turn_join = tu.join(
        s,
        and_(
            tu.c.sender_id == s.c.sender_id,
            tu.c.session_number == s.c.open_session,
            tu.c.turn_number == s.c.open_turn,
        ),
    )
    for chunk in _chunks(sender_ids):
        for state in _rows(conn, select(s).where(s.c.sender_id.in_(chunk))):
            state["open_session_fresh"] = bool(state["open_session_fresh"])
            changes.senders[state["sender_id"]] = state
            changes.stored.add(state["sender_id"])
        stmt = select(se).select_from(session_join).where(s.c.sender_id.in_(chunk))
        for row in _rows(conn, stmt):
            key = (row["sender_id"], row["session_number"])
            changes.sessions[key] = row
            changes.stored.add(key)
        stmt = select(tu).select_from(turn_join).where(s.c.sender_id.in_(chunk))
        for turn in _rows(conn, stmt):
            turn["reverted"] = bool(turn["reverted"])
            key3 = (turn["sender_id"], turn["session_number"], turn["turn_number"])
            changes.turns[key3] = turn
            changes.stored.add(key3)
    return changes


def _insert(conn: Connection, table: Table, rows: list[Row]) -> None:
    """Insert ``rows``: PostgreSQL by ``COPY`` (an executemany costs a round of the
    pipeline per row there), other dialects by one executemany."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    columns = [c.name for c in table.columns]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _upsert(conn: Connection, table: Table, rows: dict[Any, Row], stored: set[Any]) -> None:
    """Insert the new rows and rewrite the stored ones (by primary key)."""
    new = [row for key, row in rows.items() if key not in stored]
    old = [row for key, row in rows.items() if key in stored]
    keys = [c.name for c in table.primary_key.columns]
    if old and conn.dialect.name == "postgresql":  # delete, then COPY them back with the new
        key_columns = tuple_(*(table.c[k] for k in keys))
        for chunk in _chunks([tuple(row[k] for k in keys) for row in old]):
            senders = sorted({key[0] for key in chunk})  # lets the planner use the index
            match = and_(table.c.sender_id.in_(senders), key_columns.in_(chunk))
            conn.execute(delete(table).where(match))
        _insert(conn, table, new + old)
        return
    _insert(conn, table, new)
    if old:
        where = [table.c[k] == bindparam(f"k_{k}") for k in keys]
        columns = [c.name for c in table.columns if c.name not in keys]
        values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in columns}
        params = [
            {**{f"k_{k}": row[k] for k in keys}, **{f"v_{c}": row[c] for c in columns}}
            for row in old
        ]
        conn.execute(update(table).where(*where).values(**values), params)


def write_changes(conn: Connection, changes: Changes) -> None:
    """Apply ``changes`` with ``conn`` (its transaction is the caller's)."""
    for sender_id in sorted(changes.resets):
        delete_analytics(conn, sender_id)
    for name, rows in changes.inserts.items():
        _insert(conn, EVENT_TABLES[name], rows)
    for name, sender_id, seq in changes.reverts:
        t = EVENT_TABLES[name]
        where = and_(t.c.sender_id == sender_id, t.c.seq == seq)
        conn.execute(update(t).where(where).values(reverted=true()))
    _upsert(conn, analytics_turns, changes.turns, changes.stored)
    for sender_id, session, turn in changes.turn_reverts:
        tu = analytics_turns
        where = and_(
            tu.c.sender_id == sender_id, tu.c.session_number == session, tu.c.turn_number == turn
        )
        conn.execute(update(tu).where(where).values(reverted=true()))
    _upsert(conn, analytics_sessions, changes.sessions, changes.stored)
    _upsert(conn, analytics_senders, changes.senders, changes.stored)


def project_batch(conn: Connection, batch: list[StoredEvent], same_database: bool) -> int:
    """Project ``batch`` into the tables through ``conn``; returns the events projected."""
    if same_database:
        batch = live_events(conn, batch)
    if not batch:
        return 0
    sender_ids = sorted({event.sender_id for event in batch})
    changes = load_changes(conn, sender_ids)
    Projection(changes, StoredLookup(conn)).apply(batch)
    write_changes(conn, changes)
    return changes.projected


def clear(conn: Connection) -> None:
    """Delete every analytics row (``--rebuild``)."""
    for table in ANALYTICS_TABLES:
        conn.execute(delete(table))
