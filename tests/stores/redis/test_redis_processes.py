"""Writers in separate processes (separate connection pools) racing on one conversation.

The threads of the contract suite share one client; here every writer is its own process,
as bot runtimes are, so only the Lua script's atomic check keeps the log whole.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from eventstore.errors import ConcurrencyError
from eventstore.stores.base import EventQuery
from eventstore.stores.redis.store import RedisTrackerStore
from eventstore.testing import action, new_id

WRITERS = 8
APPENDS = 10


def writer(config: dict[str, Any], sid: str, n: int, start: Any, results: Any) -> None:
    """Append APPENDS two-event batches, each checked against the version just read."""
    store = RedisTrackerStore.from_config(config)
    conflicts = 0
    try:
        start.wait(30)
        for i in range(APPENDS):
            while True:
                version = store.version(sid)
                try:
                    store.append(
                        sid, [action(f"w{n}-{i}"), action(f"w{n}-{i}-b")], expected_version=version
                    )
                    break
                except ConcurrencyError:
                    conflicts += 1
        results.put((n, conflicts, None))
    except BaseException as exc:  # reported to the test
        results.put((n, conflicts, repr(exc)))
    finally:
        store.close()


def test_processes_with_retries_leave_no_gap_and_no_duplicate(
    redis_url: str, redis_prefix: str
) -> None:
    config = {"url": redis_url, "key_prefix": redis_prefix}
    sid = new_id()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(target=writer, args=(config, sid, n, start, results)) for n in range(WRITERS)
    ]
    for p in procs:
        p.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert [error for _, _, error in outcomes] == [None] * WRITERS
    print("conflicts per writer:", sorted((n, c) for n, c, _ in outcomes))

    store = RedisTrackerStore.from_config(config)
    with store:
        total = WRITERS * APPENDS * 2
        assert [e.seq for e in store.query(EventQuery(sender_id=sid))] == list(range(1, total + 1))
        names = [e["name"] for e in store.read(sid)]
        # every append landed once, its two events side by side, each writer's in order
        assert sorted(names) == sorted(
            f"w{n}-{i}{b}" for n in range(WRITERS) for i in range(APPENDS) for b in ("", "-b")
        )
        for first, second in zip(names[::2], names[1::2], strict=True):
            assert second == first + "-b"
        for n in range(WRITERS):
            mine = [name for name in names[::2] if name.startswith(f"w{n}-")]
            assert mine == [f"w{n}-{i}" for i in range(APPENDS)]
