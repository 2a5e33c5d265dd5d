"""The gap-free feed: what it costs appends, and how fast a subscriber consumes.

    python -m bench.bench_feed [--events 20000] [--threads 8] [--seconds 3]

1. Appends (one event each, no expected version) from ``--threads`` threads for
   ``--seconds``, on PostgreSQL and MariaDB, with the feed lock (this code) and without it
   (the previous code: the lock statements turned into no-ops), alternated three times in
   the same process; the best rate of each is printed with the ratio.
2. Catch-up: ``--events`` events stored, then consumed from position 0 with
   ``store.subscribe(follow=False, batch_size=1000)``: events/s, on SQLite, PostgreSQL,
   MariaDB, Redis and in-memory.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    REDIS_URL,
    drop_redis_prefix,
    event_batch,
    fresh_mariadb,
    fresh_postgres,
    unique,
)
from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore
from eventstore.stores.sql import feed as sql_feed
from eventstore.stores.sql import locks


@contextmanager
def previous_code() -> Iterator[None]:
    """Appends without the feed lock, as before gap-free positions."""
    statement, gate = locks.PG_LOCK, sql_feed.enter_feed_gate
    locks.PG_LOCK = locks.pg_lock_statement(feed=False)
    sql_feed.enter_feed_gate = lambda conn: None  # type: ignore[assignment]
    try:
        yield
    finally:
        locks.PG_LOCK, sql_feed.enter_feed_gate = statement, gate


def append_rate(store: TrackerStore, threads: int, seconds: float) -> float:
    """Single-event appends per second from ``threads`` threads, 20 conversations."""
    events = event_batch(1)
    count = [0] * threads
    stop = time.monotonic() + seconds

    def run(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            store.append(f"c{(n * 7 + i) % 20}", events)
            i += 1
        count[n] = i

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(count) / (time.monotonic() - start)


def append_cost(name: str, url: str, threads: int, seconds: float) -> None:
    store = create_tracker_store({"type": "sql", "url": url, "pool_size": threads})
    best = {"gap-free": 0.0, "previous": 0.0}
    try:
        for _ in range(3):
            best["gap-free"] = max(best["gap-free"], append_rate(store, threads, seconds))
            with previous_code():
                best["previous"] = max(best["previous"], append_rate(store, threads, seconds))
    finally:
        store.close()
    ratio = best["previous"] / best["gap-free"]
    print(
        f"{name:<11} {threads} threads: gap-free {best['gap-free']:7.0f} appends/s, "
        f"previous {best['previous']:7.0f} appends/s (previous / gap-free x{ratio:.2f})"
    )


def catch_up(name: str, section: dict[str, Any], total: int) -> None:
    store = create_tracker_store(section)
    try:
        batch = event_batch(500)
        for i in range(0, total, 500):
            store._append(unique("c"), batch[: min(500, total - i)], None)
        start = time.monotonic()
        seen = sum(len(b.events) for b in store.subscribe(follow=False, batch_size=1000))
        elapsed = time.monotonic() - start
    finally:
        store.close()
    print(f"{name:<11} catch-up of {seen} events: {seen / elapsed:9.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with fresh_postgres() as pg, fresh_mariadb() as maria:
        for name, url in (("postgresql", pg), ("mariadb", maria)):
            append_cost(name, url, 1, args.seconds)
            append_cost(name, url, args.threads, args.seconds)
        with fresh_postgres() as pg2, fresh_mariadb() as maria2:
            sections: dict[str, dict[str, Any]] = {
                "sqlite": {"type": "sql", "url": f"sqlite:////tmp/{unique()}.db"},
                "postgresql": {"type": "sql", "url": pg2},
                "mariadb": {"type": "sql", "url": maria2},
                "redis": {"type": "redis", "url": REDIS_URL, "key_prefix": unique("bf")},
                "in-memory": {"type": "in_memory"},
            }
            try:
                for name, section in sections.items():
                    catch_up(name, section, args.events)
            finally:
                import redis

                client = redis.Redis.from_url(REDIS_URL)
                drop_redis_prefix(client, sections["redis"]["key_prefix"])
                client.close()
                Path(sections["sqlite"]["url"].removeprefix("sqlite:///")).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
