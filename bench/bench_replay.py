"""Replay speed of ``eventstore.tracker``: no I/O, pure Python.

Prints events/s of ``Tracker.from_events`` on logs of 1k/10k/100k events against two
baselines measured in the same process (``list(events)``, and a plain loop reading each
event's type and timestamp), then the cost of one ``update`` as the log grows, and of a
``rewind`` (which replays the applied events). Asserts nothing about speed.

    .venv/bin/python -m bench.bench_replay
"""

from __future__ import annotations

import gc
import time
from functools import partial
from typing import Any

from bench.common import rate, turn_events
from eventstore.testing import action, session_start, user
from eventstore.tracker import Tracker


def make_log(size: int) -> list[dict[str, Any]]:
    """``size`` events of ordinary bot turns, stamped and ready to replay."""
    events: list[dict[str, Any]] = session_start(ts=1.0)
    i = 0
    while len(events) < size:
        events.extend(turn_events(i))
        i += 1
    for n, event in enumerate(events[:size]):
        event["timestamp"] = 1.0 + n
    return events[:size]


def make_form_log(size: int) -> list[dict[str, Any]]:
    """``size`` events of one long form: every turn re-runs the loop (pruned in APPLIED)."""
    events: list[dict[str, Any]] = [
        *session_start(ts=1.0),
        user("order", ts=1.0),
        action("order_form", ts=1.0),
        {"event": "active_loop", "name": "order_form", "timestamp": 1.0},
    ]
    i = 0
    while len(events) < size:
        events += [
            {"event": "slot", "name": "requested_slot", "value": f"s{i}", "timestamp": 1.0},
            action("action_listen", ts=1.0),
            user(f"value {i}", ts=1.0),
            {"event": "slot", "name": f"s{i % 50}", "value": i, "timestamp": 1.0},
            action("order_form", ts=1.0),
        ]
        i += 1
    return events[:size]


def plain_loop(events: list[dict[str, Any]]) -> int:
    """Baseline: touch each event the way any replay must (type and timestamp)."""
    count = 0
    for event in events:
        if event.get("event") and event.get("timestamp"):
            count += 1
    return count


def copy_count(events: list[dict[str, Any]]) -> int:
    """Baseline: copy the list (the least any replay touches)."""
    return len(list(events))


def replay_count(events: list[dict[str, Any]]) -> int:
    """Replay ``events`` into a fresh tracker; returns how many it holds."""
    return len(Tracker.from_events("b", events))


def per_update_seconds(base: int, added: int = 2000, repeats: int = 7) -> float:
    """Seconds per ``update`` appending ``added`` events to a tracker of ``base`` (best run)."""
    tracker = Tracker.from_events("bench", make_log(base))
    new = make_log(added)
    best = float("inf")
    for _ in range(repeats):
        twin = tracker.copy()
        start = time.perf_counter()
        for event in new:
            twin.update(event)
        best = min(best, (time.perf_counter() - start) / added)
    return best


def rewind_seconds(size: int, repeats: int = 20) -> float:
    """Seconds for one ``rewind`` at the end of a one-session log of ``size`` events (best)."""
    tracker = Tracker.from_events("bench", make_log(size))
    best = float("inf")
    for _ in range(repeats):
        twin = tracker.copy()
        start = time.perf_counter()
        twin.update({"event": "rewind", "timestamp": 1e10})
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    print("from_events: events/s, and ratio to the baselines (higher ratio = slower)")
    for size in (1_000, 10_000, 100_000):
        log = make_log(size)
        seconds = 1.0 if size < 100_000 else 2.0
        copy_rate = rate(partial(copy_count, log), seconds)
        loop_rate = rate(partial(plain_loop, log), seconds)
        replay_rate = rate(partial(replay_count, log), seconds)
        print(
            f"  {size:>7} events  replay {replay_rate:12,.0f}/s"
            f"  list() {copy_rate:14,.0f}/s (x{copy_rate / replay_rate:6.1f})"
            f"  plain loop {loop_rate:12,.0f}/s (x{loop_rate / replay_rate:5.2f})"
        )
    form = make_form_log(10_000)
    form_rate = rate(partial(replay_count, form), 1.0)
    form_loop = rate(lambda: plain_loop(form), 1.0)
    applied = len(Tracker.from_events("b", form).applied_events())
    print(
        f"    10000 events of one form (loop re-run each turn, {applied} applied)"
        f"  replay {form_rate:12,.0f}/s  plain loop x{form_loop / form_rate:5.2f}"
    )
    print("update: microseconds per event appended to a tracker of N events")
    costs = {base: per_update_seconds(base) for base in (1_000, 10_000, 100_000)}
    first = costs[1_000]
    for base, cost in costs.items():
        print(f"  N={base:>7}  {cost * 1e6:6.2f} us/event  x{cost / first:5.2f} vs N=1000")
    gc.disable()
    try:
        no_gc = per_update_seconds(100_000)
    finally:
        gc.enable()
    print(f"  N= 100000  {no_gc * 1e6:6.2f} us/event  with the garbage collector off")
    print("rewind: milliseconds (replays the applied events of the session)")
    for size in (1_000, 10_000):
        print(f"  {size:>7} applied events  {rewind_seconds(size) * 1e3:8.3f} ms")
    tracker = Tracker.from_events("bench", make_log(10_000))
    state_rate = rate(lambda: len(tracker.current_state("NONE")) and 1, 0.5)
    print(f"current_state(NONE) on 10k events: {1e6 / state_rate:6.1f} us")


if __name__ == "__main__":
    main()
