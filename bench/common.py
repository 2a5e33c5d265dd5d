"""Shared pieces of the benchmarks: a bot turn, event batches, rates, throwaway databases.

Every benchmark prints numbers and ratios against a baseline measured in the same process
(the raw driver, or the same store with the tracker cache off); none asserts anything
about speed. Every one works in its own throwaway space (a fresh database, table, key
prefix or temporary file) and removes it at the end.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore
from eventstore.testing import action, bot, session_start, user

#: Conversation lengths (in turns) at which a turn is timed.
LENGTHS = (10, 100, 1000)
#: The servers on this machine (see /work/shared/reference/test-services.md).
PG_ADMIN = os.environ.get("EVENTSTORE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_HOST = os.environ.get("EVENTSTORE_BENCH_MYSQL_HOST", "127.0.0.1")
REDIS_URL = os.environ.get("EVENTSTORE_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def unique(prefix: str = "bench") -> str:
    """A fresh name for this run (key prefix, table, database, conversation)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# -- events -----------------------------------------------------------------------------


def turn_events(i: int) -> list[dict[str, Any]]:
    """The 5 events of one bot turn: user, action, bot, slot, listen."""
    return [
        user(f"message {i}"),
        action("utter_reply"),
        bot(f"reply {i}"),
        {"event": "slot", "name": "counter", "value": i},
        action("action_listen"),
    ]


def event_batch(size: int) -> list[dict[str, Any]]:
    """``size`` events of bot turns with timestamps set (as validation would set them)."""
    events: list[dict[str, Any]] = []
    i = 0
    while len(events) < size:
        events.extend({**e, "timestamp": 1.7e9 + i} for e in turn_events(i))
        i += 1
    return events[:size]


def fill(store: TrackerStore, sender_id: str, turns: int, batch: int = 200) -> None:
    """Give a conversation ``turns`` turns of history (one session) quickly."""
    events: list[dict[str, Any]] = session_start()
    for i in range(turns):
        events.extend(turn_events(i))
        if len(events) >= batch:
            store.append(sender_id, events)
            events = []
    if events:
        store.append(sender_id, events)


# -- timing -----------------------------------------------------------------------------


def time_turns(store: TrackerStore, sender_id: str, repeats: int = 50) -> list[float]:
    """Seconds per bot turn: retrieve, add 5 events, save."""
    samples = []
    for i in range(repeats):
        start = time.perf_counter()
        tracker = store.retrieve(sender_id)
        assert tracker is not None
        tracker.update_with_events(turn_events(i))
        store.save(tracker)
        samples.append(time.perf_counter() - start)
    return samples


def time_checked_append(store: TrackerStore, sender_id: str, i: int) -> float:
    """Seconds of one version-checked 5-event append (``version`` + ``append``)."""
    start = time.perf_counter()
    store.append(sender_id, turn_events(i), expected_version=store.version(sender_id))
    return time.perf_counter() - start


def round_robin(
    targets: Mapping[str, TrackerStore],
    repeats: int,
    lengths: tuple[int, ...] = LENGTHS,
    new_session: bool = False,
    probes: Mapping[str, Callable[[TrackerStore, str, int], float]] | None = None,
) -> dict[str, dict[int, float]]:
    """Median seconds per turn for each store and conversation length, measured round-robin.

    Every (store, length) pair gets a conversation of that many turns, then the pairs take
    one turn each in turn, ``repeats`` times: load from elsewhere on the machine hits them
    all alike instead of skewing whichever ran last. With ``new_session`` the history lies
    in an earlier session (a ``session_started`` follows it). ``probes`` time more work on
    the same conversations (``probe(store, sender_id, i) -> seconds``), reported under
    ``"<store label>/<probe name>"``. The conversations are deleted at the end.
    """
    sids = {(label, n): unique("bench-") for label in targets for n in lengths}
    for (label, n), sid in sids.items():
        fill(targets[label], sid, n)
        if new_session:
            targets[label].append(sid, session_start())
    samples: dict[str, dict[int, list[float]]] = {}
    try:
        for i in range(repeats):
            for (label, n), sid in sids.items():
                store = targets[label]
                samples.setdefault(label, {}).setdefault(n, []).extend(time_turns(store, sid, 1))
                for name, probe in (probes or {}).items():
                    took = probe(store, sid, i)
                    samples.setdefault(f"{label}/{name}", {}).setdefault(n, []).append(took)
    finally:
        for (label, _), sid in sids.items():
            targets[label].delete(sid)
    return {
        label: {n: statistics.median(v) for n, v in by_length.items()}
        for label, by_length in samples.items()
    }


def rate(fn: Callable[[], int], min_seconds: float = 0.5) -> float:
    """Items per second of ``fn`` (which returns how many items it handled), repeated.

    With ``min_seconds`` 0, ``fn`` runs once.
    """
    done = 0
    start = time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def best_rates(
    plan: Mapping[str, Callable[[], int]], rounds: int = 3, min_seconds: float = 0.3
) -> dict[str, float]:
    """The best items/s of each function over ``rounds`` interleaved rounds.

    Interleaving makes other load on the machine hit every function alike.
    """
    result = dict.fromkeys(plan, 0.0)
    for _ in range(rounds):
        for name, fn in plan.items():
            result[name] = max(result[name], rate(fn, min_seconds))
    return result


# -- printing ---------------------------------------------------------------------------


def print_turn_table(name: str, costs: dict[int, float]) -> None:
    """One line per length: ms per turn and the ratio to the shortest conversation."""
    base = costs[min(costs)]
    for length, cost in costs.items():
        print(f"{name:<18} {length:>5} turns  {cost * 1000:8.3f} ms/turn  x{cost / base:5.2f}")


def print_turn_header(repeats: int) -> None:
    """What the turn tables below it show."""
    print(f"per-turn cost (retrieve + 5 events + save), one session, median of {repeats}")
    print("(x = ratio to 10 turns; 'cache on / off' = cost with the cache / without it)")


def cache_on_off(
    name: str,
    section: Mapping[str, Any],
    repeats: int,
    lengths: tuple[int, ...] = LENGTHS,
) -> dict[str, dict[int, float]]:
    """The turn on one backend with the tracker cache on, off, and off without snapshots.

    ``section`` is the store's endpoints.yml section; three stores are created from it and
    measured round-robin: ``tracker_cache_size`` 1000 (the default), 0 (a process that has
    not seen the conversation: it reads the stored snapshot plus the log's tail), and 0
    with ``snapshot_every: 0`` (the baseline, what such a process did before snapshots:
    read and replay the whole session). Prints the tables, the ratio of each length's
    cost with the cache to the cost without it, and of snapshots to the full replay.
    """
    stores = {
        name: create_tracker_store({**section, "tracker_cache_size": 1000}),
        f"{name}/nocache": create_tracker_store({**section, "tracker_cache_size": 0}),
        f"{name}/replay": create_tracker_store(
            {**section, "tracker_cache_size": 0, "snapshot_every": 0}
        ),
    }
    try:
        costs = round_robin(stores, repeats, lengths)
    finally:
        for store in stores.values():
            store.close()
    for label, by_length in costs.items():
        print_turn_table(label, by_length)
    on, off, replay = costs[name], costs[f"{name}/nocache"], costs[f"{name}/replay"]
    ratios = "  ".join(f"{n} turns x{on[n] / off[n]:4.2f}" for n in lengths)
    print(f"{name:<18} cache on / off:  {ratios}")
    ratios = "  ".join(f"{n} turns x{off[n] / replay[n]:4.2f}" for n in lengths)
    print(f"{name:<18} snapshot / replay:  {ratios}")
    return costs


def history_tables(
    name: str,
    store: TrackerStore,
    repeats: int,
    probes: Mapping[str, Callable[[TrackerStore, str, int], float]] | None = None,
) -> dict[str, dict[int, float]]:
    """Print the turn (cache on) when the history lies in earlier sessions, and the
    version-checked 5-event append alone, by length: both should be flat."""
    costs = round_robin(
        {name: store},
        repeats,
        new_session=True,
        probes={"append": time_checked_append, **(probes or {})},
    )
    print("the same turn (cache on) when the history lies in earlier sessions:")
    print_turn_table(name, costs[name])
    print("a version-checked 5-event append alone (version + append):")
    print_turn_table(name, costs[f"{name}/append"])
    return costs


def store_writes(
    store: TrackerStore, events: list[dict[str, Any]], write: str
) -> dict[str, Callable[[], int]]:
    """Two functions appending ``events`` to fresh conversations, each returning the count:
    ``write``, the backend's atomic write alone (``_append``: no validation, no version
    read), and ``append``, what users call (validation, ``version``, the checked write)."""
    write_sid, append_sid = unique("w-"), unique("a-")

    def write_only() -> int:
        store._append(write_sid, events, None)
        return len(events)

    def append() -> int:
        store.append(append_sid, events, expected_version=store.version(append_sid))
        return len(events)

    return {write: write_only, "append": append}


def print_rates(label: str, rates: Mapping[str, float], baseline: str, width: int = 9) -> None:
    """``label: name rate (x time ratio to the baseline)`` for each entry; baseline first."""
    base = rates[baseline]
    parts = [f"{baseline} {base:>{width}.0f}"]
    parts += [
        f"{name} {value:>{width}.0f} (x{base / value:.2f})"
        for name, value in rates.items()
        if name != baseline
    ]
    print(f"  {label}: " + "  ".join(parts))


# -- throwaway spaces on the machine's servers ------------------------------------------


@contextmanager
def fresh_postgres(admin_url: str = PG_ADMIN) -> Iterator[str]:
    """``postgresql+psycopg://`` URL of a new database, dropped (forcibly) at the end."""
    import psycopg

    name = unique("es_bench_")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_mariadb(host: str = MYSQL_HOST) -> Iterator[str]:
    """``mysql+pymysql://`` URL of a new MariaDB database (utf8mb4), dropped at the end."""
    import pymysql

    name = unique("es_bench_")
    admin = pymysql.connect(host=host, port=3306, user="root")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin.close()
    try:
        yield f"mysql+pymysql://root@{host}:3306/{name}?charset=utf8mb4"
    finally:
        admin = pymysql.connect(host=host, port=3306, user="root")
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def drop_redis_prefix(client: Any, prefix: str) -> None:
    """Delete this run's keys (``prefix:*``) only; never FLUSHDB on a shared server."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
