"""Per-turn cost with and without the tracker cache, and SQL appends beside the raw drivers.

    .venv/bin/python -m bench.bench_turn [in-memory|sqlite|postgresql|mariadb ...]

A bot turn is ``bench.common``'s: retrieve, add 5 events, save. It is timed at 10, 100
and 1,000 turns of history (all in one session) on in-memory, SQLite (a temporary file,
WAL), PostgreSQL and MariaDB (throwaway databases created and dropped here), each with the
tracker cache on (the default: a turn reads only the log's tail) and off (the baseline:
a turn reads and replays the whole session), measured round-robin in this process.

Append throughput puts ``store.append`` (validation, version check, lock, one
transaction) beside the raw driver doing the same inserts in one transaction with one
``executemany`` (sqlite3, psycopg 3, PyMySQL), and SQLAlchemy Core doing the same.
Ratios, not assertions. The other stores' turns are in bench_redis/mongo/dynamo.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select

from bench.common import (
    best_rates,
    cache_on_off,
    event_batch,
    fresh_mariadb,
    fresh_postgres,
    print_rates,
    print_turn_header,
    unique,
)
from eventstore.events import action_name, intent_name
from eventstore.factory import create_tracker_store
from eventstore.stores.sql.schema import events as events_table
from eventstore.stores.sql.store import SQLTrackerStore

REPEATS = 30
COLUMNS = ("sender_id", "seq", "type_name", "timestamp", "intent_name", "action_name", "data")


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


Insert = Callable[[list[dict[str, Any]]], None]


def appender(size: int, insert_rows: Insert) -> Callable[[], int]:
    """A function inserting the next ``size`` rows of a fresh conversation per call."""
    batch = event_batch(size)
    sid = unique("bench-raw-")
    done = [0]

    def run() -> int:
        insert_rows(rows_of(sid, done[0], batch))
        done[0] += size
        return size

    return run


@contextmanager
def dbapi_insert(name: str, url: str) -> Iterator[Insert]:
    """The raw driver alone: one transaction, one ``executemany`` of ready rows."""
    if name == "sqlite3":
        import sqlite3

        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        marks = ", ".join(f":{c}" for c in COLUMNS)
    elif name == "psycopg":
        import psycopg

        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))
        marks = ", ".join(f"%({c})s" for c in COLUMNS)
    else:
        import pymysql

        rest = url.split("@", 1)[1].split("?", 1)[0]
        host, db = rest.split("/", 1)
        conn = pymysql.connect(host=host.split(":")[0], user="root", database=db)
        marks = ", ".join(f"%({c})s" for c in COLUMNS)
    sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({marks})"

    def run(rows: list[dict[str, Any]]) -> None:
        cur = conn.cursor()
        cur.executemany(sql, rows)
        cur.close()
        conn.commit()

    try:
        yield run
    finally:
        conn.close()


class FourStatementStore(SQLTrackerStore):
    """The append before it was folded (lock, max(seq), insert, ids): the previous code."""

    @staticmethod
    def _folds(conn: Any, rows: list[dict[str, Any]], replace: bool) -> bool:
        return False


class SelectIdsStore(SQLTrackerStore):
    """Ids read back with a SELECT after the executemany (MariaDB before RETURNING)."""

    def _insert(
        self, conn: Any, sender_id: str, current: int, params: list[dict[str, Any]]
    ) -> list[int]:
        conn.execute(insert(events_table), params)
        stmt = (
            select(events_table.c.id)
            .where(events_table.c.sender_id == sender_id, events_table.c.seq > current)
            .order_by(events_table.c.seq)
        )
        return list(conn.execute(stmt).scalars())


def ping_each_checkout(store: SQLTrackerStore) -> SQLTrackerStore:
    """``store`` pinging its connection at every checkout: SQLAlchemy's own pre-ping, which
    the store used before it pinged only connections idle for over a second."""
    engine = store.engine

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        engine.dialect.do_ping(dbapi_connection)

    return store


def throughput(label: str, url: str, driver: str) -> None:
    """events/s of ``store.append`` and Core beside the raw driver (the baseline).

    Earlier versions run in the same process for before/after ratios: ``ping-each`` pings
    every connection it takes from the pool (the previous pre-ping), ``unfolded``
    (PostgreSQL) is the four-statement append from before ``append`` read the version
    inside its INSERT, ``select-ids`` (MariaDB) reads the ids back after inserting.
    """
    store = create_tracker_store({"type": "sql", "url": url})
    assert isinstance(store, SQLTrackerStore)
    store.version("warm-up")  # creates the tables
    unfolded = FourStatementStore.from_url(url)
    pinging = ping_each_checkout(SQLTrackerStore.from_url(url, pool_pre_ping=False))
    select_ids = SelectIdsStore.from_url(url)

    def core(rows: list[dict[str, Any]]) -> None:
        with store.engine.begin() as conn:
            conn.execute(insert(events_table), rows)

    try:
        with dbapi_insert(driver, url) as raw:
            for size in (5, 100):
                batch, sid = event_batch(size), unique("bench-append-")

                def append(batch: list[dict[str, Any]] = batch, sid: str = sid) -> int:
                    store.append(sid, batch)
                    return len(batch)

                def append_unfolded(batch: list[dict[str, Any]] = batch, sid: str = sid) -> int:
                    unfolded.append(sid + "-unfolded", batch)
                    return len(batch)

                def append_pinging(batch: list[dict[str, Any]] = batch, sid: str = sid) -> int:
                    pinging.append(sid + "-pinging", batch)
                    return len(batch)

                def append_select_ids(batch: list[dict[str, Any]] = batch, sid: str = sid) -> int:
                    select_ids.append(sid + "-select-ids", batch)
                    return len(batch)

                plan = {driver: appender(size, raw), "core": appender(size, core), "append": append}
                if store.engine.dialect.name != "sqlite":
                    plan["ping-each"] = append_pinging
                if store.engine.dialect.name == "mysql":
                    plan["select-ids"] = append_select_ids
                if store.engine.dialect.name == "postgresql":
                    plan["unfolded"] = append_unfolded
                rates = best_rates(plan, rounds=3, min_seconds=0.3)
                print_rates(f"{label:<10} batch {size:>4}", rates, driver)
    finally:
        store.close()
        unfolded.close()
        pinging.close()
        select_ids.close()


def main(backends: list[str]) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-sql-")))
        urls = {"sqlite": f"sqlite:///{tmp / 'turn.db'}"}
        if "postgresql" in backends:
            urls["postgresql"] = stack.enter_context(fresh_postgres())
        if "mariadb" in backends:
            urls["mariadb"] = stack.enter_context(fresh_mariadb())
        print_turn_header(REPEATS)
        for backend in backends:
            if backend == "in-memory":
                cache_on_off("in-memory", {"type": "memory"}, REPEATS)
            else:
                cache_on_off(backend, {"type": "sql", "url": urls[backend]}, REPEATS)

        print("\nappend throughput, events/s (x = time per event / the raw driver's)")
        drivers = {"sqlite": "sqlite3", "postgresql": "psycopg", "mariadb": "pymysql"}
        for backend in backends:
            if backend in drivers:
                url = urls[backend].replace("turn.db", "append.db")
                throughput(backend, url, drivers[backend])


if __name__ == "__main__":
    main(sys.argv[1:] or ["in-memory", "sqlite", "postgresql", "mariadb"])
