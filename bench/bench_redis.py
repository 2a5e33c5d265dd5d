"""Redis store benchmark: per-turn cost with and without the tracker cache, appends beside RPUSH.

Run: ``.venv/bin/python -m bench.bench_redis [redis://127.0.0.1:6379/0]``

Works under a fresh key prefix and removes only that prefix's keys at the end (never
FLUSHDB). Prints numbers and ratios against baselines run here; asserts nothing about speed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import redis

from bench.common import (
    REDIS_URL,
    best_rates,
    cache_on_off,
    drop_redis_prefix,
    event_batch,
    history_tables,
    print_rates,
    print_turn_header,
    store_writes,
    unique,
)
from eventstore.factory import create_tracker_store
from eventstore.stores.redis.store import RedisTrackerStore

REPEATS = 30


def append_rates(store: RedisTrackerStore, client: Any, batch: int) -> dict[str, float]:
    """Events per second for ``batch``-event appends: raw RPUSH, the script, the full append."""
    events = event_batch(batch)
    raw_key = f"{store.key('raw')}:{unique()}"

    def raw() -> int:
        # what a bare client does for the same write: serialise, one RPUSH, one round trip
        pipe = client.pipeline(transaction=False)
        pipe.rpush(raw_key, *[json.dumps(e) for e in events])
        pipe.execute()
        return batch

    # "script": the Lua script alone; "append": + validation, version check
    return best_rates({"raw": raw, **store_writes(store, events, "script")})


def main(url: str = REDIS_URL) -> None:
    prefix = unique()
    section = {"type": "redis", "url": url, "key_prefix": prefix}
    client = redis.Redis.from_url(url)
    try:
        print_turn_header(REPEATS)
        cache_on_off("redis", section, REPEATS)
        store = create_tracker_store(section)
        assert isinstance(store, RedisTrackerStore)
        try:
            history_tables("redis", store, REPEATS)
            print()
            print("append throughput, events/s (x = time per event / raw RPUSH pipeline's):")
            for batch in (5, 100, 1000):
                print_rates(f"batch {batch:>5}", append_rates(store, client, batch), "raw")
        finally:
            store.close()
    finally:
        drop_redis_prefix(client, prefix)
        client.close()


if __name__ == "__main__":
    main(*sys.argv[1:2])
