"""Statements built per call vs built once, on PostgreSQL: the append's lock, the tail read.

    .venv/bin/python -m bench.bench_lock

``built`` is the previous code: a ``select()`` of the two advisory-lock functions built
per append (SQLAlchemy then derives its cache key every time); ``text`` is the statement
the store sends now (``eventstore.stores.sql.locks.PG_LOCK``), built once. Both run on one
connection of a throwaway database, round-robin, best of three rounds. The same for
``read(sender_id, after)`` (what every cached ``retrieve`` runs): a ``select()`` built per
call against ``statements.READ_AFTER`` bound per call.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, func, literal, select
from sqlalchemy.engine import Connection

from bench.common import best_rates, event_batch, fresh_postgres, print_rates
from eventstore.stores.sql import locks
from eventstore.stores.sql.feed import FEED_LOCK
from eventstore.stores.sql.schema import events
from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.stores.sql.triggers import PG_LOCK_CLASS

LOCKS_PER_CALL = 200


def built(conn: Connection, sender_id: str) -> None:
    """The lock as the store took it before: a select() built per call."""
    key = func.hashtext(literal(sender_id, String))
    advisory = func.pg_advisory_xact_lock(PG_LOCK_CLASS, key)
    conn.execute(select(advisory, func.pg_advisory_xact_lock_shared(*FEED_LOCK)))


class BuiltRead(SQLTrackerStore):
    """``read`` as before: its select built on every call."""

    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        stmt = (
            select(events.c.data)
            .where(events.c.sender_id == sender_id, events.c.seq > after)
            .order_by(events.c.seq)
        )
        with self.db.translate(f"reading {sender_id!r}"), self._connect() as conn:
            rows = conn.execute(stmt).scalars().all()
        return [self._decode(row, sender_id) for row in rows]


def reads(url: str) -> None:
    bound, built = SQLTrackerStore.from_url(url), BuiltRead.from_url(url)
    try:
        bound.append("bench-read", event_batch(5))

        def run(store: SQLTrackerStore) -> int:
            for _ in range(LOCKS_PER_CALL):
                store.read("bench-read", 4)
            return LOCKS_PER_CALL

        rates = best_rates(
            {"built": lambda: run(built), "bound": lambda: run(bound)}, rounds=3, min_seconds=0.5
        )
        print("read of the last event per second (x = time / the built select's)")
        print_rates("postgresql", rates, "built")
    finally:
        bound.close()
        built.close()


def main() -> None:
    with fresh_postgres() as url:
        store = SQLTrackerStore.from_url(url)
        try:
            with store.engine.connect() as conn:

                def rounds(lock: Any) -> int:
                    for _ in range(LOCKS_PER_CALL):
                        with conn.begin():
                            lock(conn, "bench-lock")
                    return LOCKS_PER_CALL

                rates = best_rates(
                    {"built": lambda: rounds(built), "text": lambda: rounds(locks.lock)},
                    rounds=3,
                    min_seconds=0.5,
                )
            print("BEGIN + conversation lock + COMMIT per second (x = time / the built select's)")
            print_rates("postgresql", rates, "built")
        finally:
            store.close()
        reads(url)


if __name__ == "__main__":
    main()
