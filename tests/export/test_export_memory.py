"""Export memory does not grow with the number of conversations (tracemalloc, not timing).

500 and then 1,000 conversations of 50 events each go from a SQLite store to the file
broker; a plain reader of the file checks every event arrives once, in order. The peak
of memory allocated during each export must stay flat, and far below the data's size.
"""

from __future__ import annotations

import json
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from brokers.file import FileEventBroker
from eventstore.export import export_events
from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore

EVENTS_PER_CONVERSATION = 50


def add_conversations(store: TrackerStore, start: int, count: int) -> None:
    for i in range(start, start + count):
        events: list[dict[str, Any]] = [
            {"event": "action", "name": f"action_{k}", "policy": "RulePolicy",
             "confidence": 1.0, "timestamp": 1_700_000_000.0 + i + k / 1000,
             "metadata": {"model_id": "m", "note": "x" * 40}}
            for k in range(EVENTS_PER_CONVERSATION)
        ]  # fmt: skip
        store.append(f"conversation-{i:06d}", events)


def export_and_measure(store: TrackerStore, out: Path) -> tuple[int, int]:
    """(events exported, peak bytes allocated while exporting)."""
    out.unlink(missing_ok=True)
    with FileEventBroker(out) as broker:
        tracemalloc.start()
        try:
            summary = export_events(store, broker)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return summary.events, peak


def check_consumer_view(out: Path, conversations: int) -> int:
    """Read the file as a plain consumer would; return the bytes of all message bodies."""
    next_seq: dict[str, int] = {}
    size = 0
    with out.open(encoding="utf-8") as lines:
        for line in lines:
            size += len(line)
            message = json.loads(line)
            sid = message["sender_id"]
            assert message["seq"] == next_seq.get(sid, 0) + 1, (sid, message["seq"])
            next_seq[sid] = message["seq"]
    assert len(next_seq) == conversations
    assert set(next_seq.values()) == {EVENTS_PER_CONVERSATION}
    return size


@pytest.mark.slow
def test_export_memory_is_flat_in_the_number_of_conversations() -> None:
    # in shared memory when there is one: the fill is fsync-bound on disk, not what is tested
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        db, out = Path(tmp) / "store.db", Path(tmp) / "events.jsonl"
        store = create_tracker_store({"type": "sql", "dialect": "sqlite", "db": str(db)})
        try:
            add_conversations(store, 0, 500)
            events_n, peak_n = export_and_measure(store, out)
            size_n = check_consumer_view(out, 500)
            add_conversations(store, 500, 500)
            events_2n, peak_2n = export_and_measure(store, out)
            size_2n = check_consumer_view(out, 1000)
        finally:
            store.close()
    assert (events_n, events_2n) == (25_000, 50_000)
    print(f"peak {peak_n / 1e6:.2f} MB for 500 conversations, {peak_2n / 1e6:.2f} MB for 1000")
    # doubling the conversations adds (almost) nothing; loading them all would double it
    assert peak_2n < peak_n * 1.25
    # and the peak is a small fraction of what was exported (about 1 MB of it is fixed
    # overhead, so the fraction is not pinned tighter than the growth check above)
    assert peak_n < size_n / 5
    assert peak_2n < size_2n / 5
