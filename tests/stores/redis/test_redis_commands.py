"""What the store asks of Redis, counted by the server itself (INFO commandstats).

On a private redis-server, so the counts are ours alone: an append is one EVALSHA with
two RPUSHes inside (no blob is read or rewritten), a retrieve one EVALSHA with one LRANGE
(one LRANGE of the tail when the tracker is cached),
and listing conversations never uses KEYS or SCAN.
"""

from __future__ import annotations

import redis

from eventstore.stores.base import EventQuery
from eventstore.stores.redis.store import RedisTrackerStore
from eventstore.testing import action, new_id, session_start, turn
from tests.servers.redis import RedisServer


def calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}


def test_commands_per_operation(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    store = RedisTrackerStore.from_config({"url": redis_server.url})
    assert isinstance(store, RedisTrackerStore)
    sid = new_id()
    store.append(sid, session_start())  # loads the scripts into the server's cache
    store.retrieve(sid)
    store.delete(new_id())
    client.config_resetstat()

    for i in range(10):
        store.append(sid, turn(i))
    counted = calls(client)
    assert counted.get("evalsha") == 10
    assert counted.get("rpush") == 20  # the events, and their positions
    assert counted.get("xadd") == 40  # one global-stream entry per event
    assert not {"get", "set", "eval", "script|load", "lrange"} & set(counted)

    client.config_resetstat()
    tracker = store.retrieve(sid)  # cached since the first retrieve: only the tail is read
    assert tracker is not None and tracker.version == 43
    assert calls(client) == {"lrange": 1, "config|resetstat": 1}

    cold = RedisTrackerStore.from_config({"url": redis_server.url, "tracker_cache_size": 0})
    client.config_resetstat()
    tracker = cold.retrieve(sid)  # no cache: the current session in one script
    assert tracker is not None and tracker.version == 43
    counted = calls(client)
    assert counted.get("evalsha") == 1 and counted.get("lrange") == 1
    cold.close()

    client.config_resetstat()
    for n in range(20):
        store.append(new_id(), [action(f"a{n}")])
    assert sid in set(store.keys())
    assert len(list(store.query(EventQuery(action="a3")))) == 1
    counted = calls(client)
    assert not {"keys", "scan"} & set(counted)
    assert counted.get("zscan", 0) >= 1 and counted.get("xrange", 0) >= 1
    store.close()
    client.close()
