"""DynamoDB store benchmark: per-turn cost by conversation length, appends beside raw boto3.

Run: ``.venv/bin/python -m bench.bench_dynamo [ENDPOINT_URL]``

Without an endpoint it starts the test suite's moto server (serialised, in a subprocess)
and benchmarks against it; moto is the server, so absolute numbers say little about AWS
(where a request costs 5-20 ms of network), but the ratios and the growth with length do.
Uses a fresh table. Prints numbers and ratios; asserts nothing about speed.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from typing import Any

from bench.common import fill, print_turn_table, rate, time_turns, turn_cost_by_length, turn_events
from eventstore.stores.base import StoredEvent
from eventstore.stores.dynamo import DynamoTrackerStore
from eventstore.testing import session_start

LENGTHS = (10, 100, 1000)
REPEATS = 10


def _events(batch: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    i = 0
    while len(events) < batch:
        events.extend(turn_events(i))
        i += 1
    for event in events:
        event["timestamp"] = 1700000000.0 + len(events)
    return events[:batch]


def cost_by_history(store: DynamoTrackerStore, client: Any) -> dict[str, dict[int, float]]:
    """Median seconds per turn when ``n`` turns of history lie in an earlier session, of the
    version-checked append alone, and of a raw Query of the 5 newest items (what the
    server itself costs for a small read of that partition)."""
    turn: dict[int, float] = {}
    append: dict[int, float] = {}
    raw: dict[int, float] = {}
    for length in LENGTHS:
        sid = f"bench-{uuid.uuid4().hex[:10]}"
        fill(store, sid, length)
        store.append(sid, session_start())  # a new session: the history stays unread
        turn[length] = statistics.median(time_turns(store, sid, REPEATS * 3))
        samples = []
        for i in range(REPEATS * 3):
            begin = time.perf_counter()
            store.append(sid, turn_events(i), expected_version=store.version(sid))
            samples.append(time.perf_counter() - begin)
        append[length] = statistics.median(samples)
        version = store.version(sid)
        samples = []
        for _ in range(REPEATS * 3):
            begin = time.perf_counter()
            client.query(
                TableName=store.table,
                KeyConditionExpression="sender_id = :s AND seq BETWEEN :a AND :b",
                ExpressionAttributeValues={
                    ":s": {"S": sid},
                    ":a": {"N": str(version - 4)},
                    ":b": {"N": str(version)},
                },
                ConsistentRead=True,
            )
            samples.append(time.perf_counter() - begin)
        raw[length] = statistics.median(samples)
        store.delete(sid)
    return {"turn": turn, "append": append, "raw": raw}


def append_rates(store: DynamoTrackerStore, client: Any, batch: int) -> dict[str, float]:
    """Events/s for ``batch``-event appends: raw ``batch_write_item`` and the store's append."""
    events = _events(batch)
    raw_sid, full_sid = f"raw-{uuid.uuid4().hex[:8]}", f"f-{uuid.uuid4().hex[:8]}"
    offset = 0

    def raw() -> int:
        # the same items, unchecked: 25 puts per batch_write_item, as a bare client would
        nonlocal offset
        items = [
            store._event_item(StoredEvent(raw_sid, offset + i, e), offset + i)
            for i, e in enumerate(events, 1)
        ]
        offset += batch
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending: dict[str, Any] = {store.table: requests}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
        return batch

    def full() -> int:
        # what users call: validation, version read, one checked transaction (or a lease)
        store.append(full_sid, events, expected_version=store.version(full_sid))
        return batch

    result = {"raw": 0.0, "append": 0.0}
    for _ in range(3):  # interleaved rounds, best of each: machine load hits both alike
        for name, fn in (("raw", raw), ("append", full)):
            result[name] = max(result[name], rate(fn, 0.5))
    return result


def main(endpoint: str | None = None) -> None:
    server = None
    if endpoint is None:
        from tests.servers.dynamo import start_server

        server = start_server()
        endpoint = server.url
    config = {
        "tablename": f"bench-{uuid.uuid4().hex[:10]}",
        "endpoint_url": endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "read_timeout": 120,
    }
    store = DynamoTrackerStore.from_config(config)
    assert isinstance(store, DynamoTrackerStore)
    try:
        print(f"DynamoDB at {endpoint} ({'moto, serialised' if server else 'given endpoint'})")
        print(f"per-turn cost (retrieve current session + 5 events + save), median of {REPEATS}:")
        print_turn_table("dynamo", turn_cost_by_length(store, LENGTHS, REPEATS))
        by_history = cost_by_history(store, store._client)
        print("the same turn when the history lies in earlier sessions:")
        print_turn_table("dynamo", by_history["turn"])
        print("a version-checked 5-event append alone (version + append):")
        print_turn_table("dynamo", by_history["append"])
        print("the server alone: a raw boto3 Query of the 5 newest items of that partition:")
        print_turn_table("raw query", by_history["raw"])
        print()
        print("append throughput, events/s (ratio = raw batch_write_item / store append):")
        client = store._client
        for batch in (5, 99, 500):
            rates = append_rates(store, client, batch)
            print(
                f"  batch {batch:>4}: raw {rates['raw']:>8.0f}  append {rates['append']:>8.0f}"
                f"  (x{rates['raw'] / rates['append']:.2f})"
            )
    finally:
        if server is None:  # a real endpoint: drop the benchmark's table
            client = store._client
            client.delete_table(TableName=store.table)
        store.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main(*sys.argv[1:2])
