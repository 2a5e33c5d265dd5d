"""Redis store benchmark: per-turn cost by conversation length, and appends beside raw RPUSH.

Run: ``.venv/bin/python -m bench.bench_redis [redis://127.0.0.1:6379/0]``

Works under a fresh key prefix and removes only that prefix's keys at the end. Prints
numbers and ratios; asserts nothing about speed.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from typing import Any

import redis

from bench.common import fill, print_turn_table, rate, time_turns, turn_cost_by_length, turn_events
from eventstore.stores.redis import RedisTrackerStore
from eventstore.testing import session_start

LENGTHS = (10, 100, 1000)


def _drop_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def _events(batch: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    i = 0
    while len(events) < batch:
        events.extend(turn_events(i))
        i += 1
    for event in events:
        event["timestamp"] = 1700000000.0 + len(events)
    return events[:batch]


def cost_by_history(store: RedisTrackerStore, repeats: int = 50) -> dict[str, dict[int, float]]:
    """Median seconds per turn after ``n`` turns of history that lie in an earlier session,
    and of the version-checked append alone (no retrieve) after ``n`` turns."""
    turn: dict[int, float] = {}
    append: dict[int, float] = {}
    for length in LENGTHS:
        sid = f"bench-{uuid.uuid4().hex[:10]}"
        fill(store, sid, length)
        store.append(sid, session_start())  # a new session: the history stays unread
        turn[length] = statistics.median(time_turns(store, sid, repeats))
        samples = []
        for i in range(repeats):
            begin = time.perf_counter()
            store.append(sid, turn_events(i), expected_version=store.version(sid))
            samples.append(time.perf_counter() - begin)
        append[length] = statistics.median(samples)
        store.delete(sid)
    return {"turn": turn, "append": append}


def append_rates(store: RedisTrackerStore, client: redis.Redis, batch: int) -> dict[str, float]:
    """Events per second for ``batch``-event appends: raw RPUSH, the script, the full append."""
    events = _events(batch)
    raw_key = f"{store.key('raw')}:{uuid.uuid4().hex[:8]}"
    script_sid, full_sid = f"s-{uuid.uuid4().hex[:8]}", f"f-{uuid.uuid4().hex[:8]}"

    def raw() -> int:
        # what a bare client does for the same write: serialise, one RPUSH, one round trip
        pipe = client.pipeline(transaction=False)
        pipe.rpush(raw_key, *[json.dumps(e) for e in events])
        pipe.execute()
        return batch

    def script_only() -> int:
        # the store's atomic write without event validation (the Lua script alone)
        store._append(script_sid, events, None)
        return batch

    def full() -> int:
        # what users call: validation, version check, global stream, one script call
        store.append(full_sid, events, expected_version=store.version(full_sid))
        return batch

    # interleaved rounds, best of each: other load on the machine hits all three alike
    result = {"raw": 0.0, "script": 0.0, "append": 0.0}
    for _ in range(3):
        for name, fn in (("raw", raw), ("script", script_only), ("append", full)):
            result[name] = max(result[name], rate(fn, 0.3))
    client.delete(raw_key)
    store.delete(script_sid)
    store.delete(full_sid)
    return result


def main(url: str = "redis://127.0.0.1:6379/0") -> None:
    prefix = f"bench{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(url)
    store = RedisTrackerStore.from_config({"url": url, "key_prefix": prefix})
    assert isinstance(store, RedisTrackerStore)
    try:
        print("per-turn cost (retrieve current session + 5 events + save):")
        print_turn_table("redis", turn_cost_by_length(store, LENGTHS))
        by_history = cost_by_history(store)
        print("the same turn when the history lies in earlier sessions:")
        print_turn_table("redis", by_history["turn"])
        print("a version-checked 5-event append alone (version + append):")
        print_turn_table("redis", by_history["append"])
        print()
        print("append throughput, events/s (ratio = raw RPUSH pipeline / store):")
        for batch in (5, 100, 1000):
            rates = append_rates(store, client, batch)
            print(
                f"  batch {batch:>5}: raw {rates['raw']:>9.0f}  "
                f"script {rates['script']:>9.0f} (x{rates['raw'] / rates['script']:.2f})  "
                f"append {rates['append']:>9.0f} (x{rates['raw'] / rates['append']:.2f})"
            )
    finally:
        store.close()
        _drop_prefix(client, prefix)
        client.close()


if __name__ == "__main__":
    main(*sys.argv[1:2])
