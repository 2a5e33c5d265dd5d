"""A Redis server that goes away, comes back or answers late: no lost or doubled append."""

from __future__ import annotations

import pytest

from eventstore.errors import BackendUnavailable
from eventstore.stores.redis.store import RedisTrackerStore
from eventstore.testing import action, new_id, turn
from tests.servers.redis import RedisServer


def test_store_fails_clearly_while_down_and_recovers_after_a_restart(
    redis_server: RedisServer,
) -> None:
    store = RedisTrackerStore.from_config({"url": redis_server.url, "key_prefix": "r"})
    sid = new_id()
    assert store.append(sid, turn(0)) == 4
    redis_server.stop()
    with pytest.raises(BackendUnavailable) as info:
        store.append(sid, [action("while_down")], expected_version=4)
    assert f"127.0.0.1:{redis_server.port}" in str(info.value)
    with pytest.raises(BackendUnavailable):
        store.retrieve(sid)
    redis_server.start()
    # the pooled connections died with the old server; the next calls reconnect, and
    # the scripts (gone with the server's script cache) are loaded again on their own
    assert store.version(sid) == 4
    assert store.append(sid, [action("after")], expected_version=4) == 5
    assert [e["name"] for e in store.read(sid)[-2:]] == ["action_listen", "after"]
    store.close()


def test_a_timed_out_append_is_never_resent(redis_server: RedisServer) -> None:
    """The driver's default retry would resend a script whose reply timed out, and the
    server would run it again: one append stored several times. Ours is sent once."""
    store = RedisTrackerStore.from_config(
        {"url": redis_server.url, "key_prefix": "t", "socket_timeout": 0.02}
    )
    sid = new_id()
    events = [action(f"a{i}") for i in range(20_000)]  # a script far slower than 20 ms
    try:
        store.append(sid, events)
    except BackendUnavailable as exc:
        assert "Timeout" in str(exc)
    store.close()
    checker = RedisTrackerStore.from_config({"url": redis_server.url, "key_prefix": "t"})
    assert isinstance(checker, RedisTrackerStore)
    checker.ping()  # Redis runs one command at a time: the script has finished
    assert checker.version(sid) in (0, 20_000)
    checker.close()
