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
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brokers.file import FileEventBroker
from eventstore.export import export_events
from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore
from eventstore.testing import action, bot, user

REDIS_URL = os.environ.get("EVENTSTORE_BENCH_REDIS", "redis://127.0.0.1:6379/0")


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


def fill(store: TrackerStore, conversations: int, length: int) -> int:
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


def sqlite_raw(db: Path, out: Path | None) -> int:
    """Plain sqlite3: stream every row in conversation order and decode it (and dump it)."""
    count = 0
    handle = out.open("w", encoding="utf-8") if out is not None else None
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT sender_id, seq, data FROM events ORDER BY sender_id, seq")
        for sender_id, seq, data in rows:
            event = json.loads(data)
            if handle is not None:
                handle.write(json.dumps({"sender_id": sender_id, **event, "seq": seq}) + "\n")
            count += 1
    if handle is not None:
        handle.close()
    return count


def redis_raw(store: Any, out: Path | None) -> int:
    """Plain redis-py: LRANGE each conversation's list and decode it (and dump it)."""
    client = store._client
    count = 0
    handle = out.open("w", encoding="utf-8") if out is not None else None
    for sid in sorted(store.keys()):
        for seq, raw in enumerate(client.lrange(store.key("log", sid), 0, -1), start=1):
            event = json.loads(raw)
            if handle is not None:
                handle.write(json.dumps({"sender_id": sid, **event, "seq": seq}) + "\n")
            count += 1
    if handle is not None:
        handle.close()
    return count


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
        out, raw_out = tmp_path / "export.jsonl", tmp_path / "raw.jsonl"
        db = tmp_path / "bench.db"
        with create_tracker_store({"type": "sql", "dialect": "sqlite", "db": str(db)}) as store:
            total = fill(store, conversations, length)
            report(
                "sqlite",
                total,
                {
                    "raw read": best_of(3, lambda: sqlite_raw(db, None)),
                    "raw dump": best_of(3, lambda: sqlite_raw(db, raw_out)),
                    "export": best_of(3, lambda: export_to_file(store, out)),
                },
            )
        prefix = f"bench{uuid.uuid4().hex[:10]}"
        section = {"type": "redis", "url": REDIS_URL, "key_prefix": prefix}
        with create_tracker_store(section) as store:
            try:
                total = fill(store, conversations, length)
                report(
                    "redis",
                    total,
                    {
                        "raw read": best_of(3, lambda: redis_raw(store, None)),
                        "raw dump": best_of(3, lambda: redis_raw(store, raw_out)),
                        "export": best_of(3, lambda: export_to_file(store, out)),
                    },
                )
            finally:
                client = store._client  # type: ignore[attr-defined]
                keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
                for start in range(0, len(keys), 500):
                    client.delete(*keys[start : start + 500])


if __name__ == "__main__":
    main()
