"""Redis-specific behaviour beyond the shared contract, against 127.0.0.1:6379.

Large conversations, key layout, ``record_exp``, the global stream, the outbox and
errors. Every test works under its own key prefix (see ``tests/servers/redis.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from brokers.file import FileEventBroker
from eventstore.errors import BackendUnavailable, ConcurrencyError
from eventstore.relay import relay_of, with_broker
from eventstore.stores.base import EventQuery
from eventstore.stores.redis.store import RedisConfig, RedisTrackerStore
from eventstore.testing import action, new_id, session_start, turn, user


def make_store(url: str, prefix: str, **options: Any) -> RedisTrackerStore:
    store = RedisTrackerStore.from_config({"url": url, "key_prefix": prefix, **options})
    assert isinstance(store, RedisTrackerStore)
    return store


@pytest.fixture
def store(redis_url: str, redis_prefix: str) -> Iterator[RedisTrackerStore]:
    s = make_store(redis_url, redis_prefix)
    with s:
        yield s


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# -- size and layout ------------------------------------------------------------------
@pytest.mark.slow
def test_a_20000_event_conversation_appends_and_retrieves(store: RedisTrackerStore) -> None:
    sid = new_id()
    version = 0
    for batch in range(20):
        events = [action(f"a{batch * 1000 + i}") for i in range(1000)]
        if batch == 19:
            events[500:503] = session_start()
        version = store.append(sid, events, expected_version=version)
    assert version == 20_000
    events = store.read(sid)
    assert len(events) == 20_000
    assert events[0]["name"] == "a0" and events[-1]["name"] == "a19999"
    current = store.retrieve(sid)
    assert current is not None
    assert current.version == 20_000
    # the session started at seq 19*1000 + 502: the tracker holds only what follows it
    assert len(current.events) == 20_000 - (19_000 + 501)
    assert current.events[0]["event"] == "session_started"
    full = store.retrieve_full_tracker(sid)
    assert full is not None and len(full.events) == 20_000
    tail = [e.seq for e in store.query(EventQuery(sender_id=sid, after_position=0))]
    assert tail == list(range(1, 20_001))


def test_key_layout_is_a_list_per_conversation(
    store: RedisTrackerStore, raw: redis.Redis, redis_prefix: str
) -> None:
    sid = new_id()
    store.append(sid, session_start() + turn(1))
    log, pos, meta = store.conversation_keys(sid)
    assert log == f"{redis_prefix}:es:log:{sid}"
    assert raw.type(log) == b"list" and raw.llen(log) == 7
    assert [json.loads(x) for x in raw.lrange(log, 0, -1)] == store.read(sid)
    assert raw.type(pos) == b"list" and raw.llen(pos) == 7
    assert raw.type(meta) == b"hash" and raw.hget(meta, "s") == b"2"
    assert raw.type(store.key("ids")) == b"zset"
    assert raw.type(store.key("global")) == b"stream"
    assert raw.type(store.key("position")) == b"string"
    positions = [int(p) for p in raw.lrange(pos, 0, -1)]
    assert positions == [e.position for e in store.query(EventQuery(sender_id=sid))]
    assert store._write_script.sha and raw.script_exists(store._write_script.sha) == [True]


def test_appends_refresh_the_session_start(store: RedisTrackerStore) -> None:
    sid = new_id()
    store.append(sid, turn(0))
    assert store._session_start(sid) == 0
    store.append(sid, session_start())
    assert store._session_start(sid) == 6
    store.append(sid, turn(1) + session_start())
    assert store._session_start(sid) == 13
    tracker = store.retrieve(sid)
    assert tracker is not None and tracker.version == 14
    assert [e["event"] for e in tracker.events] == ["session_started", "action"]


def test_keys_pages_through_many_conversations(store: RedisTrackerStore) -> None:
    ids = {new_id() for _ in range(1_200)}
    for sid in ids:
        store.append(sid, [action("a")])
    listed = list(store.keys())
    assert len(listed) == len(set(listed))
    assert set(listed) == ids


# -- record_exp -------------------------------------------------------------------------
def wait_until_gone(raw: redis.Redis, key: str, bound: float = 20.0) -> None:
    deadline = time.monotonic() + bound
    while raw.exists(key):
        assert time.monotonic() < deadline, f"{key} still there after {bound} s"
        time.sleep(0.1)


def test_record_exp_expires_the_whole_conversation(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url, redis_prefix, record_exp=1)
    with store:
        sid, other = new_id(), new_id()
        store.append(sid, session_start() + turn(0))
        keys = store.conversation_keys(sid)
        for key in keys:
            wait_until_gone(raw, key)
        assert store.read(sid) == []
        assert store.retrieve(sid) is None
        assert sid not in set(store.keys())
        tag = new_id("tag")
        # a new conversation under the same id starts at 1; the expired events stay out
        # of global queries although their stream entries were left behind (written through
        # a store with a long TTL on the same keys: a slow machine must not expire them)
        with make_store(redis_url, redis_prefix, record_exp=600) as lasting:
            assert lasting.append(sid, [user("again", intent=tag)]) == 1
            lasting.append(other, [user("other", intent=tag)])
            found = [(e.sender_id, e.seq) for e in lasting.query(EventQuery(intent=tag))]
            assert found == [(sid, 1), (other, 1)]
            query = EventQuery(type_name="session_started", sender_id=sid)
            assert list(lasting.query(query)) == []


def test_every_key_of_a_conversation_carries_the_ttl_and_appends_refresh_it(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url, redis_prefix, record_exp=600)
    with store:
        sid = new_id()
        store.append(sid, session_start() + turn(0))
        keys = store.conversation_keys(sid)
        assert all(raw.exists(k) for k in keys)
        assert all(0 < raw.pttl(k) <= 600_000 for k in keys)
        for key in keys:
            raw.pexpire(key, 50_000)
        store.append(sid, [action("later")])
        assert all(raw.pttl(k) > 50_000 for k in keys)  # the append set them back to 600 s
        # the shared keys are not the conversation's: they never expire
        for shared in ("ids", "position", "global"):
            assert raw.pttl(store.key(shared)) == -1


def test_without_record_exp_an_append_makes_the_conversation_persistent(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    sid = new_id()
    expiring = make_store(redis_url, redis_prefix, record_exp=600)
    with expiring:
        expiring.append(sid, session_start())
    lasting = make_store(redis_url, redis_prefix)
    with lasting:
        lasting.append(sid, turn(0))
        assert [raw.pttl(k) for k in lasting.conversation_keys(sid)] == [-1, -1, -1]
        assert sid in set(lasting.keys())


# -- global stream, delete, replace -----------------------------------------------------
def test_delete_removes_every_key_and_index_entry(
    store: RedisTrackerStore, raw: redis.Redis
) -> None:
    sid, kept = new_id(), new_id()
    tag = new_id("tag")
    store.append(sid, [*session_start(), user("x", intent=tag)])
    store.append(kept, [user("y", intent=tag)])
    before = raw.xlen(store.key("global"))
    assert store.delete(sid) == 4
    assert [raw.exists(k) for k in store.conversation_keys(sid)] == [0, 0, 0]
    assert raw.zscore(store.key("ids"), sid) is None
    assert raw.xlen(store.key("global")) == before - 4
    assert [e.sender_id for e in store.query(EventQuery(intent=tag))] == [kept]


def test_replace_swaps_the_log_atomically(store: RedisTrackerStore, raw: redis.Redis) -> None:
    sid = new_id()
    tag = new_id("tag")
    store.append(sid, [user("old", intent=tag), *session_start()])
    with pytest.raises(ConcurrencyError):
        store.replace(sid, [user("new", intent=tag)], expected_version=3)
    assert len(store.read(sid)) == 4
    assert store.replace(sid, [user("new", intent=tag), action("b")], expected_version=4) == 2
    assert [e.get("text") for e in store.read(sid)] == ["new", None]
    assert store._session_start(sid) == 0  # the old session start went with the old log
    assert [e.data["text"] for e in store.query(EventQuery(intent=tag))] == ["new"]
    assert raw.xlen(store.key("global")) == 2
    assert store.replace(sid, []) == 0
    assert not store.exists(sid) and sid not in set(store.keys())


def test_global_query_pages_by_position(store: RedisTrackerStore) -> None:
    tag = new_id("tag")
    ids = [new_id() for _ in range(3)]
    for i in range(700):  # more than one page of the global stream
        store.append(ids[i % 3], [user(str(i), intent=tag), action("x")])
    found = list(store.query(EventQuery(intent=tag)))
    assert [e.data["text"] for e in found] == [str(i) for i in range(700)]
    middle = found[349].position
    assert middle is not None
    rest = list(store.query(EventQuery(intent=tag, after_position=middle, limit=10)))
    assert [e.data["text"] for e in rest] == [str(i) for i in range(350, 360)]


def test_query_answers_bounds_redis_cannot_take(store: RedisTrackerStore) -> None:
    """Positions and limits past 64 bits, or negative, never reach Redis (as in SQL)."""
    tag = new_id("bounds")
    sid = new_id()
    store.append(sid, [user("a", intent=tag), user("b", intent=tag)])
    everything = [e.data["text"] for e in store.query(EventQuery(intent=tag))]
    assert everything == ["a", "b"]
    scopes: list[dict[str, Any]] = [{"intent": tag}, {"sender_id": sid}]
    for filters in scopes:
        for after in (2**63 - 1, 2**63, 2**64, 2**70):
            assert list(store.query(EventQuery(after_position=after, **filters))) == []
        for limit in (0, -1, -(2**70)):
            assert list(store.query(EventQuery(limit=limit, **filters))) == []
        wide: list[dict[str, Any]] = [{"after_position": -1}, {"after_position": -(2**70)}]
        for bounds in [*wide, {"limit": 2**64}]:
            found = store.query(EventQuery(**filters, **bounds))
            assert [e.data["text"] for e in found if e.data["event"] == "user"] == everything


# -- the outbox -------------------------------------------------------------------------
def test_outbox_keeps_events_while_the_broker_is_down_then_relays_them(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    target = tmp_path / "down" / "events.jsonl"  # the directory is missing: publishing fails
    broker = FileEventBroker(path=target)
    plain = make_store(redis_url, redis_prefix)
    with plain:
        plain.append(new_id(), turn(0))  # without a broker nothing goes to the outbox
        assert plain.outbox_pending() == []
    settings = RedisConfig(url=redis_url, key_prefix=redis_prefix)
    store = with_broker(RedisTrackerStore(settings), broker)
    try:
        assert store.uses_outbox
        a, b = new_id(), new_id()
        store.append(a, turn(0))
        store.append(b, [action("b1")])
        store.append(a, [action("a5")])
        pending = store.outbox_pending()
        assert [(e.sender_id, e.seq) for e in pending] == [
            (a, 1),
            (a, 2),
            (a, 3),
            (a, 4),
            (b, 1),
            (a, 5),
        ]
        assert pending[5].data == store.read(a)[4]
        assert [e.position for e in pending] == sorted(e.position or 0 for e in pending)
        assert [e.seq for e in store.outbox_pending(limit=2)] == [1, 2]
        store.delete(b)  # a deleted conversation's unpublished events go with it
        assert (b, 1) not in {(e.sender_id, e.seq) for e in store.outbox_pending()}
        target.parent.mkdir()  # the broker is back
        relay = relay_of(store)
        assert relay is not None
        relay.drain(timeout=20)
        assert store.outbox_pending() == []
        lines = [json.loads(line) for line in target.read_text().splitlines()]
        assert [(m["sender_id"], m["seq"]) for m in lines] == [(a, s) for s in range(1, 6)]
    finally:
        store.close()


def test_outbox_ack_removes_only_the_given_events(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    broker = FileEventBroker(path=tmp_path / "missing" / "events.jsonl")
    settings = RedisConfig(url=redis_url, key_prefix=redis_prefix)
    store = with_broker(RedisTrackerStore(settings), broker)
    try:
        sid = new_id()
        store.append(sid, turn(0))
        pending = store.outbox_pending()
        store.outbox_ack(pending[:3])
        assert [e.seq for e in store.outbox_pending()] == [4]
        store.outbox_ack(pending)  # acking twice is harmless
        assert store.outbox_pending() == []
    finally:
        relay_of(store).stop(drain_timeout=0)
        store.close()


# -- errors -----------------------------------------------------------------------------
def test_an_unreachable_server_is_backend_unavailable() -> None:
    store = RedisTrackerStore.from_config(
        {"url": "127.0.0.1", "port": 1, "password": "pw-hidden-1", "socket_connect_timeout": 2}
    )
    with pytest.raises(BackendUnavailable) as info:
        store.append(new_id(), [action("a")])
    assert "127.0.0.1:1" in str(info.value)
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    for call in (store.version, store.read, store.retrieve, store.delete):
        with pytest.raises(BackendUnavailable):
            call(new_id())
    with pytest.raises(BackendUnavailable):
        list(store.keys())
    with pytest.raises(BackendUnavailable):
        list(store.query(EventQuery(intent="x")))


def test_a_wrong_password_fails_without_showing_it(redis_url: str) -> None:
    store = make_store(redis_url, "tpw", username="nobody", password="pw-hidden-2")
    with pytest.raises(BackendUnavailable) as info:
        store.ping()
    assert "pw-hidden-2" not in str(info.value)
    assert "pw-hidden-2" not in repr(store)
    assert "pw-hidden-2" not in repr(store.settings)
    store.close()
