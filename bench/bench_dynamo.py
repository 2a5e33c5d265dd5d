"""DynamoDB store benchmark: per-turn cost with and without the tracker cache, appends beside
raw boto3.

Run: ``.venv/bin/python -m bench.bench_dynamo [ENDPOINT_URL]``

Without an endpoint it starts the test suite's moto server (serialised, in a subprocess)
and benchmarks against it; moto is an in-memory Python stand-in, so absolute numbers say
nothing about AWS (where a request costs 5-20 ms of network and a Query costs what it
returns). Uses a fresh table (deleted at the end on a given endpoint; moto is stopped).
Prints numbers and ratios against baselines run here; asserts nothing about speed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from bench.common import (
    best_rates,
    cache_on_off,
    event_batch,
    history_tables,
    print_rates,
    print_turn_header,
    print_turn_table,
    store_writes,
    unique,
)
from eventstore.factory import create_tracker_store
from eventstore.stores.base import StoredEvent, TrackerStore
from eventstore.stores.dynamo import items as layout
from eventstore.stores.dynamo.store import DynamoTrackerStore

REPEATS = 10


def raw_query(store: TrackerStore, sender_id: str, i: int) -> float:
    """Seconds of a raw boto3 Query of the 5 newest items of the conversation's partition:
    what the server itself costs for a small read there."""
    assert isinstance(store, DynamoTrackerStore)
    version = store.version(sender_id)
    start = time.perf_counter()
    store._client.query(
        TableName=store.table,
        KeyConditionExpression="sender_id = :s AND seq BETWEEN :a AND :b",
        ExpressionAttributeValues={
            ":s": {"S": sender_id},
            ":a": {"N": str(version - 4)},
            ":b": {"N": str(version)},
        },
        ConsistentRead=True,
    )
    return time.perf_counter() - start


def append_rates(store: DynamoTrackerStore, batch: int) -> dict[str, float]:
    """Events/s for ``batch``-event appends: raw ``batch_write_item`` and the store's append."""
    events = event_batch(batch)
    raw_sid = unique("raw-")
    client = store._client
    offset = 0

    def raw() -> int:
        # the same items, unchecked: 25 puts per batch_write_item, as a bare client would
        nonlocal offset
        items = [
            layout.event_item(StoredEvent(raw_sid, offset + i, e), offset + i, store.uses_outbox)
            for i, e in enumerate(events, 1)
        ]
        offset += batch
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending: dict[str, Any] = {store.table: requests}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
        return batch

    # "append": validation, version read, one checked transaction (or a lease)
    plan = {"raw": raw, "append": store_writes(store, events, "write")["append"]}
    return best_rates(plan, min_seconds=0.5)


def main(endpoint: str | None = None) -> None:
    server = None
    if endpoint is None:
        from tests.servers.dynamo import start_server

        server = start_server()
        endpoint = server.url
    section = {
        "type": "dynamo",
        "tablename": unique("bench-"),
        "endpoint_url": endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "read_timeout": 120,
    }
    store = create_tracker_store(section)
    assert isinstance(store, DynamoTrackerStore)
    try:
        print(f"DynamoDB at {endpoint} ({'moto, serialised' if server else 'given endpoint'})")
        print_turn_header(REPEATS)
        cache_on_off("dynamo", section, REPEATS)
        costs = history_tables("dynamo", store, REPEATS * 2, probes={"query": raw_query})
        print("the server alone: a raw boto3 Query of the 5 newest items of that partition:")
        print_turn_table("raw query", costs["dynamo/query"])
        print()
        print("append throughput, events/s (x = time per event / raw batch_write_item's):")
        for batch in (5, 99, 500):
            print_rates(f"batch {batch:>4}", append_rates(store, batch), "raw", width=8)
    finally:
        if server is None:  # a real endpoint: drop the benchmark's table
            store._client.delete_table(TableName=store.table)
        store.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main(*sys.argv[1:2])
