"""The analytics projection: events/s into the analytics tables, against reading the feed.

    python -m bench.bench_analytics [--events 1000000] [--backend sqlite|postgresql]
                                    [--batch-size 1000] [--senders 20000]

A throwaway database gets ``--events`` events by a direct bulk insert into ``events``
(``--senders`` conversations of one session each; each appends a turn of 5 events at a
time, the conversations taking turns, so each batch of the feed touches many of them).
Then, in the same process and on the same events:

1. the baseline: the feed read raw, ``store.subscribe(follow=False)``, nothing done;
2. the projection alone (CPU): ``Projection`` over each batch, nothing written;
3. ``eventstore analytics`` itself (``AnalyticsRunner.run``): feed, projection, rows and
   checkpoint committed per batch.

Printed: events/s of each and the ratio of (3) to (1).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import fresh_postgres
from eventstore.analytics.projection import Changes, Projection
from eventstore.analytics.runner import AnalyticsRunner, open_target
from eventstore.stores.sql.store import SQLTrackerStore

BASE = 1.7e9


def conversation_event(sender: int, n: int, stamp: float) -> dict[str, Any]:
    """Event ``n`` (0-based) of conversation ``sender``: session start, then 5-event turns."""
    if n == 0:
        return {"event": "action", "name": "action_session_start", "timestamp": stamp}
    if n == 1:
        return {"event": "session_started", "timestamp": stamp}
    turn, step = divmod(n - 2, 5)
    intent = ("greet", "book_table", "inform", "goodbye", "nlu_fallback")[(sender + turn) % 5]
    return [
        {
            "event": "user",
            "text": f"message {turn}",
            "timestamp": stamp,
            "input_channel": ("web", "telegram")[sender % 2],
            "parse_data": {
                "intent": {"name": intent, "confidence": 0.9},
                "entities": [{"entity": "guests", "value": 2}] if turn % 3 == 0 else [],
            },
        },
        {"event": "action", "name": "utter_reply", "timestamp": stamp, "policy": "RulePolicy"},
        {"event": "bot", "text": f"reply {turn}", "timestamp": stamp, "metadata": {}},
        {"event": "slot", "name": "counter", "value": turn, "timestamp": stamp},
        {"event": "action", "name": "action_listen", "timestamp": stamp},
    ][step]


def rows(total: int, senders: int) -> Iterator[dict[str, Any]]:
    """``total`` events-table rows: each conversation appends a turn (5 events) at a time,
    the conversations taking turns round by round, as concurrent users would."""
    seq = [0] * senders
    made = 0
    while made < total:
        for sender in range(senders):
            count = 2 + 5 if seq[sender] == 0 else 5
            for _ in range(min(count, total - made)):
                data = conversation_event(sender, seq[sender], BASE + made * 0.01)
                seq[sender] += 1
                made += 1
                parse = data.get("parse_data") or {}
                yield {
                    "sender_id": f"user-{sender}",
                    "seq": seq[sender],
                    "type_name": data["event"],
                    "timestamp": data["timestamp"],
                    "intent_name": parse.get("intent", {}).get("name"),
                    "action_name": data.get("name"),
                    "data": json.dumps(data),
                }
            if made == total:
                return


COLUMNS = ("sender_id", "seq", "type_name", "timestamp", "intent_name", "action_name", "data")


def bulk_insert(store: SQLTrackerStore, total: int, senders: int) -> float:
    """Insert the rows straight into ``events`` with the driver (SQLite ``executemany``,
    PostgreSQL ``COPY``), bypassing the store; returns the seconds taken."""
    start = time.perf_counter()
    tuples = (tuple(row[c] for c in COLUMNS) for row in rows(total, senders))
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if store.engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for values in tuples:
                    copy.write_row(values)
        else:
            marks = ", ".join("?" for _ in COLUMNS)
            cursor.execute("BEGIN")  # the store's SQLite connections begin by hand
            cursor.executemany(
                f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({marks})", tuples
            )
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - start


def feed_only(store: SQLTrackerStore, batch_size: int) -> tuple[int, float]:
    start, count = time.perf_counter(), 0
    for batch in store.subscribe(follow=False, batch_size=batch_size):
        count += len(batch.events)
    return count, time.perf_counter() - start


class _NoStoredRows:
    def latest_unreverted(self, *args: Any) -> None:
        return None


def projection_only(store: SQLTrackerStore, batch_size: int) -> tuple[int, float, float]:
    """Seconds of the feed plus the projection in memory (no writes), and of the feed alone
    within it."""
    changes, start, count, feed = Changes(), time.perf_counter(), 0, 0.0
    polled = time.perf_counter()
    for batch in store.subscribe(follow=False, batch_size=batch_size):
        feed += time.perf_counter() - polled
        projection = Projection(changes, _NoStoredRows())
        projection.apply(batch.events)
        count += len(batch.events)
        changes.inserts = {table: [] for table in changes.inserts}  # written: let them go
        polled = time.perf_counter()
    return count, time.perf_counter() - start, feed


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "postgresql":
        with fresh_postgres() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench_analytics.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=20_000)
    args = parser.parse_args()
    with database(args.backend) as url:
        store = SQLTrackerStore.from_url(url)
        try:
            seconds = bulk_insert(store, args.events, args.senders)
            print(f"{args.backend}: {args.events} events in {args.senders} conversations")
            print(f"  bulk insert (setup)   {args.events / seconds:>10.0f} events/s")
            count, feed = feed_only(store, args.batch_size)
            print(f"  feed read (baseline)  {count / feed:>10.0f} events/s  ({feed:.1f} s)")
            count, cpu, cpu_feed = projection_only(store, args.batch_size)
            only = cpu - cpu_feed
            print(
                f"  projection in memory  {count / only:>10.0f} events/s  "
                f"({only:.1f} s besides the feed)"
            )
            target = open_target(store, None)
            runner = AnalyticsRunner(store, target, batch_size=args.batch_size)
            start = time.perf_counter()
            report = runner.run()
            full = time.perf_counter() - start
            print(
                f"  eventstore analytics  {report.events / full:>10.0f} events/s  ({full:.1f} s, "
                f"{report.batches} batches; x{full / feed:.2f} the feed read's time)"
            )
        finally:
            store.close()


if __name__ == "__main__":
    main()
