"""MongoDB store benchmark: per-turn cost with and without the tracker cache, appends beside
insert_many.

Run: ``.venv/bin/python -m bench.bench_mongo [mongodb://host:27017/]``

Without a URL it starts an in-memory SecantusDB (the MongoDB-wire server the tests use, a
Python stand-in: its absolute numbers say nothing about a real ``mongod``) on a free
loopback port. Works in a fresh database and drops it at the end. Prints numbers and
ratios against baselines run here; asserts nothing about speed.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymongo

from bench.common import (
    best_rates,
    cache_on_off,
    event_batch,
    history_tables,
    print_rates,
    print_turn_header,
    store_writes,
    unique,
)
from eventstore.factory import create_tracker_store
from eventstore.stores.mongo.store import MongoTrackerStore

REPEATS = 20
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


def append_rates(store: MongoTrackerStore, raw: Any, batch: int) -> dict[str, float]:
    """Events per second for ``batch``-event appends: raw insert_many, ``_append``, ``append``.

    ``raw`` is a collection with the same indexes as the store's; it receives the very
    documents the store would write (same fields, same ``data``), in one ``insert_many``.
    """
    events = event_batch(batch)
    raw_sid = unique("r-")
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

    # "txn": meta + positions + insert_many + commit; "append": + validation, version read
    return best_rates({"raw": raw_insert, **store_writes(store, events, "txn")})


def main(url: str | None = None) -> None:
    db = unique("bench_")
    with server(url) as uri:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
        section = {"type": "mongod", "url": uri, "db": db, "collection": "events"}
        try:
            print(f"server: {client.server_info().get('version')} at {uri}")
            print_turn_header(REPEATS)
            cache_on_off("mongo", section, REPEATS)
            store = create_tracker_store(section)
            twin = create_tracker_store({**section, "collection": "raw"})  # same indexes
            assert isinstance(store, MongoTrackerStore)
            try:
                twin.version("x")  # creates its indexes
                history_tables("mongo", store, REPEATS)
                print()
                print("append throughput, events/s (x = time per event / raw insert_many's):")
                for batch in (5, 100, 1000):
                    rates = append_rates(store, client[db]["raw"], batch)
                    print_rates(f"batch {batch:>5}", rates, "raw", width=8)
            finally:
                store.close()
                twin.close()
        finally:
            client.drop_database(db)
            client.close()


if __name__ == "__main__":
    main(*sys.argv[1:2])
