"""MongoDB store benchmark: per-turn cost by conversation length, appends beside insert_many.

Run: ``.venv/bin/python -m bench.bench_mongo [mongodb://host:27017/]``

Without a URL it starts an in-memory SecantusDB (the MongoDB-wire server the tests use) on
a free loopback port. Works in a fresh database and drops it at the end. Prints numbers
and ratios; asserts nothing about speed.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymongo

from bench.common import fill, print_turn_table, rate, time_turns, turn_cost_by_length, turn_events
from eventstore.stores.mongo import MongoTrackerStore
from eventstore.testing import session_start

LENGTHS = (10, 100, 1000)
_RAW_POSITIONS = itertools.count(1)  # unique across calls: the raw collection's index is unique


@contextmanager
def server(url: str | None) -> Iterator[str]:
    """The given URL, or a fresh in-memory SecantusDB for the run."""
    if url:
        yield url
        return
    from secantus import SecantusDBServer

    srv = SecantusDBServer(host="127.0.0.1", port=0, storage_path=":memory:")
    srv.start()
    try:
        yield str(srv.uri)
    finally:
        srv.stop()


def _events(batch: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    i = 0
    while len(events) < batch:
        events.extend(turn_events(i))
        i += 1
    for event in events:
        event["timestamp"] = 1700000000.0 + len(events)
    return events[:batch]


def turn_cost_interleaved(store: MongoTrackerStore, repeats: int) -> dict[int, float]:
    """The shared turn (one session) with the lengths measured round-robin, not in a row."""
    sids = {length: f"bench-{uuid.uuid4().hex[:10]}" for length in LENGTHS}
    for length, sid in sids.items():
        fill(store, sid, length)
    samples: dict[int, list[float]] = {length: [] for length in LENGTHS}
    for _ in range(repeats):
        for length, sid in sids.items():
            samples[length].extend(time_turns(store, sid, 1))
    return {n: statistics.median(v) for n, v in samples.items()}


def cost_by_history(store: MongoTrackerStore, repeats: int) -> dict[str, dict[int, float]]:
    """Median seconds per turn when ``n`` turns of history lie in an earlier session, and
    of the version-checked 5-event append alone after ``n`` turns.

    The lengths are measured round-robin, so load from elsewhere on the machine hits each
    length alike instead of skewing whichever ran last.
    """
    sids = {length: f"bench-{uuid.uuid4().hex[:10]}" for length in LENGTHS}
    for length, sid in sids.items():
        fill(store, sid, length)
        store.append(sid, session_start())  # a new session: the history stays unread
    turn: dict[int, list[float]] = {length: [] for length in LENGTHS}
    append: dict[int, list[float]] = {length: [] for length in LENGTHS}
    for i in range(repeats):
        for length, sid in sids.items():
            turn[length].extend(time_turns(store, sid, 1))
            begin = time.perf_counter()
            store.append(sid, turn_events(i), expected_version=store.version(sid))
            append[length].append(time.perf_counter() - begin)
    return {
        "turn": {n: statistics.median(v) for n, v in turn.items()},
        "append": {n: statistics.median(v) for n, v in append.items()},
    }


def append_rates(store: MongoTrackerStore, raw: Any, batch: int) -> dict[str, float]:
    """Events per second for ``batch``-event appends: raw insert_many, ``_append``, ``append``.

    ``raw`` is a collection with the same indexes as the store's; it receives the very
    documents the store would write (same fields, same ``data``), in one ``insert_many``.
    """
    events = _events(batch)
    raw_sid, txn_sid, full_sid = (f"{p}-{uuid.uuid4().hex[:8]}" for p in "rtf")
    counter = {"seq": 0}

    def raw_insert() -> int:
        base = counter["seq"]
        counter["seq"] += batch
        docs = [
            MongoTrackerStore._document(raw_sid, base + i, next(_RAW_POSITIONS), event)
            for i, event in enumerate(events, start=1)
        ]
        raw.insert_many(docs, ordered=True)
        return batch

    def transaction_only() -> int:
        # the store's write without validation: meta + positions + insert_many + commit
        store._append(txn_sid, events, None)
        return batch

    def full() -> int:
        # what users call: validation, version read, the checked transactional write
        store.append(full_sid, events, expected_version=store.version(full_sid))
        return batch

    # interleaved rounds, best of each: other load on the machine hits all three alike
    result = {"raw": 0.0, "txn": 0.0, "append": 0.0}
    plan: list[tuple[str, Callable[[], int]]] = [
        ("raw", raw_insert),
        ("txn", transaction_only),
        ("append", full),
    ]
    for _ in range(3):
        for name, fn in plan:
            result[name] = max(result[name], rate(fn, 0.3))
    return result


def main(url: str | None = None) -> None:
    db = f"bench_{uuid.uuid4().hex[:8]}"
    with server(url) as uri:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
        store = MongoTrackerStore(url=uri, db=db, collection="events")
        twin = MongoTrackerStore(url=uri, db=db, collection="raw")  # same indexes, raw writes
        twin.version("x")  # creates its indexes
        try:
            print(f"server: {client.server_info().get('version')} at {uri}")
            print("per-turn cost (retrieve current session + 5 events + save):")
            print_turn_table("mongo", turn_cost_by_length(store, LENGTHS, repeats=20))
            print("the same turn, the lengths measured round-robin:")
            print_turn_table("mongo", turn_cost_interleaved(store, repeats=20))
            by_history = cost_by_history(store, repeats=20)
            print("the same turn when the history lies in earlier sessions:")
            print_turn_table("mongo", by_history["turn"])
            print("a version-checked 5-event append alone (version + append):")
            print_turn_table("mongo", by_history["append"])
            print()
            print("append throughput, events/s (ratio = raw insert_many / store):")
            for batch in (5, 100, 1000):
                r = append_rates(store, client[db]["raw"], batch)
                print(
                    f"  batch {batch:>5}: raw {r['raw']:>8.0f}  "
                    f"txn {r['txn']:>8.0f} (x{r['raw'] / r['txn']:.2f})  "
                    f"append {r['append']:>8.0f} (x{r['raw'] / r['append']:.2f})"
                )
        finally:
            store.close()
            twin.close()
            client.drop_database(db)
            client.close()


if __name__ == "__main__":
    main(*sys.argv[1:2])
