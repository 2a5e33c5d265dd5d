"""The conversation lock of a PostgreSQL append: BEGIN, lock, COMMIT, per statement form.

    .venv/bin/python -m bench.bench_lock

``built`` is the previous code: a ``select()`` of the two advisory-lock functions built
per append (SQLAlchemy then derives its cache key every time); ``text`` is the statement
the store sends now (``eventstore.stores.sql.locks.PG_LOCK``), built once. Both run on one
connection of a throwaway database, round-robin, best of three rounds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, func, literal, select
from sqlalchemy.engine import Connection

from bench.common import best_rates, fresh_postgres, print_rates
from eventstore.stores.sql import locks
from eventstore.stores.sql.feed import FEED_LOCK
from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.stores.sql.triggers import PG_LOCK_CLASS

LOCKS_PER_CALL = 200


def built(conn: Connection, sender_id: str) -> None:
    """The lock as the store took it before: a select() built per call."""
    key = func.hashtext(literal(sender_id, String))
    advisory = func.pg_advisory_xact_lock(PG_LOCK_CLASS, key)
    conn.execute(select(advisory, func.pg_advisory_xact_lock_shared(*FEED_LOCK)))


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


if __name__ == "__main__":
    main()
