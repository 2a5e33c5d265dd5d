"""Export benchmark: events/s of ``export_events`` to the file broker, beside raw reads.

Run: ``.venv/bin/python -m bench.bench_export [conversations] [events_per_conversation]``
(defaults 300 x 50). Needs Redis at 127.0.0.1:6379 (``EVENTSTORE_BENCH_REDIS`` to change).

For SQLite and Redis, three numbers over the same stored events:
- ``raw read``: the driver alone (one ``SELECT ... ORDER BY sender_id, seq`` streamed, or
  ``LRANGE`` per conversation), JSON-decoding every event;
- ``raw dump``: the same plus writing each as a JSON line to a file (a minimal export script);
- ``export``: ``eventstore.export.export_events`` to the file broker (sorted id listing,
  per-conversation ``query``, seq/position in each body, a flush per 500 messages).
Ratios are export time over each baseline. Prints numbers; asserts nothing about speed.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

from bench.common import REDIS_URL, drop_redis_prefix, unique
from brokers.file import FileEventBroker
from eventstore.export import export_events
from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore
from eventstore.testing import action, bot, user


def conversation(i: int, length: int) -> list[dict[str, Any]]:
    """``length`` events of user/action/bot turns, realistic in size."""
    events: list[dict[str, Any]] = []
    k = 0
    while len(events) < length:
        t = 1_700_000_000.0 + i * 1000 + k
        events += [
            user(f"message {k} of conversation {i}", ts=t),
            action("utter_reply", ts=t + 0.1),
            {**bot(f"reply {k}"), "timestamp": t + 0.2},
            action("action_listen", ts=t + 0.3),
        ]
        k += 1
    return events[:length]


def fill_conversations(store: TrackerStore, conversations: int, length: int) -> int:
    """Store ``conversations`` conversations of ``length`` events; returns the event count."""
    for i in range(conversations):
        store.append(f"bench-{i:06d}", conversation(i, length))
    return conversations * length


def best_of(runs: int, fn: Callable[[], int]) -> tuple[float, int]:
    """The fastest of ``runs`` runs of ``fn`` (seconds) and the items it handled."""
    best, items = float("inf"), 0
    for _ in range(runs):
        start = time.perf_counter()
        items = fn()
        best = min(best, time.perf_counter() - start)
    return best, items


def export_to_file(store: TrackerStore, out: Path) -> int:
    out.unlink(missing_ok=True)
    with FileEventBroker(out) as broker:
        return export_events(store, broker).events


def raw_rows_sqlite(db: Path) -> Iterator[tuple[str, int, str]]:
    """Plain sqlite3: every row in conversation order, streamed."""
    with closing(sqlite3.connect(db)) as conn:
        yield from conn.execute("SELECT sender_id, seq, data FROM events ORDER BY sender_id, seq")


def raw_rows_redis(store: Any) -> Iterator[tuple[str, int, bytes]]:
    """Plain redis-py: LRANGE each conversation's list, in sorted id order."""
    client = store._client
    for sid in sorted(store.keys()):
        for seq, raw in enumerate(client.lrange(store.key("log", sid), 0, -1), start=1):
            yield sid, seq, raw


def raw_export(rows: Iterable[tuple[str, int, str | bytes]], out: Path | None) -> int:
    """Decode every raw row (the least any export does); with ``out``, also dump each as a
    JSON line (what a minimal hand-written export script does). Returns the row count."""
    count = 0
    with ExitStack() as stack:
        handle = stack.enter_context(out.open("w", encoding="utf-8")) if out else None
        for sender_id, seq, data in rows:
            event = json.loads(data)
            if handle is not None:
                handle.write(json.dumps({"sender_id": sender_id, **event, "seq": seq}) + "\n")
            count += 1
    return count


def measure(
    name: str,
    store: TrackerStore,
    total: int,
    rows: Callable[[], Iterable[tuple[str, int, Any]]],
    tmp: Path,
) -> None:
    """Best of 3 of the raw read, the raw dump and ``export_events``, printed as ratios."""
    report(
        name,
        total,
        {
            "raw read": best_of(3, lambda: raw_export(rows(), None)),
            "raw dump": best_of(3, lambda: raw_export(rows(), tmp / "raw.jsonl")),
            "export": best_of(3, lambda: export_to_file(store, tmp / "export.jsonl")),
        },
    )


def report(name: str, total: int, results: dict[str, tuple[float, int]]) -> None:
    export_s = results["export"][0]
    for label, (seconds, items) in results.items():
        assert items == total, (label, items, total)
        ratio = export_s / seconds
        print(f"{name:<8} {label:<9} {total / seconds:>10.0f} events/s   export/this x{ratio:5.2f}")


def main() -> None:
    conversations = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    length = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    print(f"{conversations} conversations x {length} events, best of 3 runs")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        db = tmp_path / "bench.db"
        with create_tracker_store({"type": "sql", "dialect": "sqlite", "db": str(db)}) as store:
            total = fill_conversations(store, conversations, length)
            measure("sqlite", store, total, lambda: raw_rows_sqlite(db), tmp_path)
        prefix = unique()
        section = {"type": "redis", "url": REDIS_URL, "key_prefix": prefix}
        with create_tracker_store(section) as store:
            try:
                total = fill_conversations(store, conversations, length)
                measure("redis", store, total, lambda: raw_rows_redis(store), tmp_path)
            finally:
                drop_redis_prefix(store._client, prefix)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
