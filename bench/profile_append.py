"""Where a small append's time goes: cProfile of version-checked 5-event appends per backend.

Run: ``.venv/bin/python -m bench.profile_append [sqlite|postgresql|mariadb|redis ...]``

Prints, per backend, the share of the append spent in validation (``_checked``), the
version read, the backend's write (``_append``) and, inside it, in the driver's calls that
wait for the server (execute/commit/script), from one profile of ``APPENDS`` appends.
Shares, not speeds: the profiler slows Python code more than waiting.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from bench.common import drop_redis_prefix, event_batch, fresh_mariadb, fresh_postgres, unique
from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore

APPENDS = 300
REDIS_URL = "redis://127.0.0.1:6379/0"
#: Profile entries summed per row: (label, substrings of "file:function").
ROWS = (
    ("append (total)", ("base.py:append",)),
    ("  validation + redaction", ("base.py:_checked",)),
    ("  version read", (":version",)),
    ("  backend write (_append)", (":_append",)),
    (
        "    waiting on the server",
        (
            "{method 'execute'",
            "{method 'commit'",
            "executemany",
            "{method 'recv",
            "{method 'readinto'",
            "sock_recv",
        ),
    ),
)


def profile(store: TrackerStore) -> pstats.Stats:
    """Profile ``APPENDS`` version-checked 5-event appends to fresh conversations."""
    events = event_batch(5)
    sids = [unique("p-") for _ in range(APPENDS)]
    for sid in sids[:20]:  # warm up connections and caches
        store.append(sid, events, expected_version=store.version(sid))
    profiler = cProfile.Profile()
    profiler.enable()
    for sid in sids[20:]:
        store.append(sid, events, expected_version=store.version(sid))
    profiler.disable()
    return pstats.Stats(profiler)


def shares(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds per row of ``ROWS``."""
    table: dict[str, float] = {label: 0.0 for label, _ in ROWS}
    entries: Any = stats.stats  # type: ignore[attr-defined]
    for (file, _line, function), (_cc, _nc, _tt, cumulative, _callers) in entries.items():
        name = f"{Path(file).name}:{function}"
        for label, needles in ROWS:
            if any(needle in name for needle in needles):
                table[label] += cumulative
    return table


def main(backends: list[str]) -> None:
    prefix = unique("prof")
    with ExitStack() as stack:
        client = redis.Redis.from_url(REDIS_URL)
        stack.callback(client.close)
        stack.callback(drop_redis_prefix, client, prefix)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-prof-")))
        sections: dict[str, dict[str, Any]] = {
            "sqlite": {"type": "sql", "url": f"sqlite:///{tmp / 'p.db'}"},
            "redis": {"type": "redis", "url": REDIS_URL, "key_prefix": prefix},
        }
        if "postgresql" in backends:
            sections["postgresql"] = {"type": "sql", "url": stack.enter_context(fresh_postgres())}
        if "mariadb" in backends:
            sections["mariadb"] = {"type": "sql", "url": stack.enter_context(fresh_mariadb())}
        for backend in backends:
            store = create_tracker_store(sections[backend])
            try:
                table = shares(profile(store))
            finally:
                store.close()
            total = table["append (total)"] or 1.0
            print(f"{backend}: {APPENDS - 20} appends of 5 events, profiled")
            for label, seconds in table.items():
                per_append = seconds * 1000 / (APPENDS - 20)
                print(f"  {label:<30} {per_append:7.3f} ms  {seconds / total:6.1%}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql", "mariadb", "redis"])
