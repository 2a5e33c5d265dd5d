"""Shared timing helpers for the benchmarks: a bot turn, bulk appends, and ratio printing.

Benchmarks print numbers and ratios against a baseline measured in the same process;
they assert nothing about speed.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from eventstore.stores.base import TrackerStore
from eventstore.testing import action, bot, session_start, user


def turn_events(i: int) -> list[dict[str, Any]]:
    """The 5 events of one bot turn: user, action, bot, slot, listen."""
    return [
        user(f"message {i}"),
        action("utter_reply"),
        bot(f"reply {i}"),
        {"event": "slot", "name": "counter", "value": i},
        action("action_listen"),
    ]


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


def turn_cost_by_length(
    store: TrackerStore, lengths: tuple[int, ...] = (10, 100, 1000), repeats: int = 50
) -> dict[int, float]:
    """Median seconds per turn for conversations of each length (in turns)."""
    result = {}
    for length in lengths:
        sid = f"bench-{uuid.uuid4().hex[:10]}"
        fill(store, sid, length)
        result[length] = statistics.median(time_turns(store, sid, repeats))
        store.delete(sid)
    return result


def rate(fn: Callable[[], int], min_seconds: float = 0.5) -> float:
    """Items per second of ``fn`` (which returns how many items it handled), repeated."""
    done = 0
    start = time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def print_turn_table(name: str, costs: dict[int, float]) -> None:
    """One line per length: ms per turn and the ratio to the shortest conversation."""
    base = costs[min(costs)]
    for length, cost in costs.items():
        print(f"{name:<12} {length:>6} turns  {cost * 1000:8.3f} ms/turn  x{cost / base:5.2f}")
