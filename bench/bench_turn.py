"""Per-turn cost and append throughput of the SQL store, beside in-memory and the raw driver.

    .venv/bin/python -m bench.bench_turn [postgresql://postgres@127.0.0.1:5432/postgres]

A bot turn is ``bench.common``'s: retrieve the current session, add 5 events, save. It is
timed at 10, 100 and 1,000 turns of history on in-memory, SQLite (a temporary file, WAL)
and PostgreSQL (a throwaway database created and dropped here), with the tracker cache on
(the default: a turn reads only the log's tail) and off (a turn reads the whole session).

Append throughput puts ``store.append`` (validation, version check, one transaction) beside
the raw driver doing the same inserts: SQLAlchemy Core executemany of prepared rows in one
transaction, and (PostgreSQL) psycopg's ``executemany``. Ratios, not assertions.
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.common import print_turn_table, rate, turn_cost_by_length, turn_events
from eventstore.events import action_name, intent_name
from eventstore.stores.base import TrackerStore
from eventstore.stores.memory import InMemoryTrackerStore
from eventstore.stores.sql import SQLTrackerStore
from eventstore.stores.sql_schema import events as events_table

LENGTHS = (10, 100, 1000)
REPEATS = 30


def batch_of(size: int) -> list[dict[str, Any]]:
    """``size`` events of bot turns, timestamps set (as validation would)."""
    out: list[dict[str, Any]] = []
    i = 0
    while len(out) < size:
        out.extend({**e, "timestamp": 1.7e9 + i} for e in turn_events(i))
        i += 1
    return out[:size]


def rows_of(sender_id: str, start: int, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the store writes for ``batch`` (what a raw insert must send too)."""
    return [
        {
            "sender_id": sender_id,
            "seq": start + n,
            "type_name": e["event"],
            "timestamp": e["timestamp"],
            "intent_name": intent_name(e),
            "action_name": action_name(e),
            "data": json.dumps(e),
        }
        for n, e in enumerate(batch, start=1)
    ]


def store_appender(store: TrackerStore, size: int) -> Callable[[], int]:
    batch = batch_of(size)
    sid = f"bench-append-{uuid.uuid4().hex[:8]}"

    def run() -> int:
        store.append(sid, batch)
        return size

    return run


def core_appender(store: SQLTrackerStore, size: int) -> Callable[[], int]:
    """SQLAlchemy Core: one transaction, one executemany of ready rows; no checks."""
    batch = batch_of(size)
    sid = f"bench-core-{uuid.uuid4().hex[:8]}"
    done = [0]

    def run() -> int:
        with store.engine.begin() as conn:
            conn.execute(insert(events_table), rows_of(sid, done[0], batch))
        done[0] += size
        return size

    return run


def psycopg_appender(url: str, size: int) -> tuple[Callable[[], int], Callable[[], None]]:
    """psycopg 3 alone: one transaction, one executemany."""
    import psycopg

    conn = psycopg.connect(url)
    batch = batch_of(size)
    sid = f"bench-psycopg-{uuid.uuid4().hex[:8]}"
    done = [0]
    sql = (
        "INSERT INTO events (sender_id, seq, type_name, timestamp, intent_name, action_name, "
        "data) VALUES (%(sender_id)s, %(seq)s, %(type_name)s, %(timestamp)s, %(intent_name)s, "
        "%(action_name)s, %(data)s)"
    )

    def run() -> int:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(sql, rows_of(sid, done[0], batch))
        done[0] += size
        return size

    return run, conn.close


def turn_tables(name: str, make: Callable[[int], TrackerStore]) -> None:
    for cache, label in ((1000, name), (0, f"{name}/nocache")):
        store = make(cache)
        try:
            print_turn_table(label, turn_cost_by_length(store, LENGTHS, REPEATS))
        finally:
            store.close()


Raw = Callable[[int], tuple[Callable[[], int], Callable[[], None]]]


def throughput(name: str, store: SQLTrackerStore, raw: dict[str, Raw]) -> None:
    """events/s of ``store.append`` beside Core executemany (and raw drivers), per batch."""
    for size in (5, 100):
        results = {
            "append": rate(store_appender(store, size), 1.0),
            "core": rate(core_appender(store, size), 1.0),
        }
        for label, make in raw.items():
            run, close = make(size)
            results[label] = rate(run, 1.0)
            close()
        core = results["core"]
        parts = "  ".join(f"{k} {v:8.0f} (x{core / v:4.2f})" for k, v in results.items())
        print(f"{name:<10} batch {size:>4}: {parts}")


def main(admin_url: str) -> None:
    import psycopg

    tmp = Path(tempfile.mkdtemp(prefix="bench-sql-"))
    pg_name = f"es_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{pg_name}"')
    base = admin_url.rsplit("/", 1)[0]
    pg_url = f"{base}/{pg_name}"
    try:
        print("per-turn cost (retrieve current session + 5 events + save), median of", REPEATS)
        turn_tables("memory", lambda c: InMemoryTrackerStore(tracker_cache_size=c))
        turn_tables(
            "sqlite",
            lambda c: SQLTrackerStore.from_url(
                f"sqlite:///{tmp / 'turn.db'}", tracker_cache_size=c
            ),
        )
        turn_tables("postgresql", lambda c: SQLTrackerStore.from_url(pg_url, tracker_cache_size=c))

        print("\nappend throughput, events/s (x = SQLAlchemy Core executemany / this)")
        sqlite_store = SQLTrackerStore.from_url(f"sqlite:///{tmp / 'append.db'}")
        throughput("sqlite", sqlite_store, {})
        sqlite_store.close()
        pg_store = SQLTrackerStore.from_url(pg_url)
        throughput("postgresql", pg_store, {"psycopg": lambda n: psycopg_appender(pg_url, n)})
        pg_store.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
