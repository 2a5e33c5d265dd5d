"""The UI's SQL queries on a large log: the conversation list and the dashboard.

Fills a throwaway database with ``--events`` events (default 1,000,000) in
``--conversations`` conversations (default 10,000) spread over 60 days (rows inserted in
bulk, as the store would write them), then times each query the pages run, as the best of
``--repeats`` runs, against two baselines measured in the same process: ``SELECT count(*)
FROM events`` (one pass over the table) and the same count over the dashboard's 30 days.
Asserts nothing about speed.

    .venv/bin/python -m bench.bench_ui [--backend postgresql|mariadb|sqlite] [--events N]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bench.common import fresh_mariadb, fresh_postgres
from eventstore.events import action_name, intent_name
from eventstore.factory import create_tracker_store
from eventstore.server.ui.model import DAY, Filters
from eventstore.server.ui.sql import SQLQueries
from eventstore.stores.sql.schema import events
from eventstore.stores.sql.store import SQLTrackerStore

START = 1_700_000_000.0
SPAN_DAYS = 60
INTENTS = ["greet", "book_table", "goodbye", "affirm", "deny", "ask_hours", "nlu_fallback"]


def conversation(index: int, size: int, rng: random.Random) -> list[dict[str, Any]]:
    """``size`` events: a session start, then turns of user, action, bot, slot, listen."""
    at = START + rng.random() * (SPAN_DAYS - 1) * DAY
    out: list[dict[str, Any]] = [
        {"event": "action", "name": "action_session_start", "timestamp": at},
        {"event": "session_started", "timestamp": at},
    ]
    turn = 0
    while len(out) < size:
        at += rng.random() * 120
        intent = rng.choice(INTENTS)
        reply = "action_default_fallback" if intent == "nlu_fallback" else f"utter_{intent}"
        out += [
            {
                "event": "user",
                "text": f"message {turn} of conversation {index}",
                "timestamp": at,
                "parse_data": {"intent": {"name": intent, "confidence": rng.random()}},
            },
            {"event": "action", "name": reply, "timestamp": at + 1},
            {"event": "bot", "text": f"reply {turn}", "timestamp": at + 1},
            {"event": "slot", "name": "turn", "value": turn, "timestamp": at + 1},
            {"event": "action", "name": "action_listen", "timestamp": at + 1},
        ]
        turn += 1
    return out[:size]


def fill(store: SQLTrackerStore, total: int, conversations: int) -> float:
    """Insert the rows in bulk; the seconds it took."""
    rng = random.Random(7)
    per = max(total // conversations, 2)
    began = time.perf_counter()
    batch: list[dict[str, Any]] = []
    with store.engine.begin() as conn:
        for index in range(conversations):
            for seq, data in enumerate(conversation(index, per, rng), start=1):
                batch.append(
                    {
                        "sender_id": f"user-{index:06d}",
                        "seq": seq,
                        "type_name": data["event"],
                        "timestamp": data["timestamp"],
                        "intent_name": intent_name(data),
                        "action_name": action_name(data),
                        "data": json.dumps(data),
                    }
                )
            if len(batch) >= 20_000:
                conn.execute(insert(events), batch)
                batch = []
        if batch:
            conn.execute(insert(events), batch)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE events")
    return time.perf_counter() - began


def best(fn: Callable[[], Any], repeats: int) -> float:
    """The fastest of ``repeats`` runs, in ms."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return min(times)


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "postgresql":
        with fresh_postgres() as url:
            yield url
    elif backend == "mariadb":
        with fresh_mariadb() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'ui.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", default="postgresql", choices=["postgresql", "mariadb", "sqlite"]
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with database(args.backend) as url:
        store = create_tracker_store({"type": "sql", "url": url})
        assert isinstance(store, SQLTrackerStore)
        try:
            seconds = fill(store, args.events, args.conversations)
            queries = SQLQueries(store)
            print(
                f"{store.engine.dialect.name}: {args.events:,} events in "
                f"{args.conversations:,} conversations over {SPAN_DAYS} days "
                f"(filled in {seconds:.0f} s); best of {args.repeats} runs"
            )
            until = START + SPAN_DAYS * DAY
            since30 = until - 30 * DAY

            def count_all() -> Any:
                with store.engine.connect() as conn:
                    return conn.execute(select(func.count()).select_from(events)).scalar()

            def count_range() -> Any:
                stmt = select(func.count()).where(
                    events.c.timestamp >= since30, events.c.timestamp <= until
                )
                with store.engine.connect() as conn:
                    return conn.execute(stmt).scalar()

            base_all = best(count_all, args.repeats)
            base_range = best(count_range, args.repeats)
            print(f"{'baseline: count(*) of every event':46} {base_all:9.1f} ms")
            print(f"{'baseline: count(*) of the 30 days':46} {base_range:9.1f} ms")
            first = queries.conversations(Filters(), None, None)
            cases: list[tuple[str, Callable[[], Any], float]] = [
                (
                    "list: first page (50 rows)",
                    lambda: queries.conversations(Filters(), None, None),
                    base_all,
                ),
                (
                    "list: next page (keyset cursor)",
                    lambda: queries.conversations(Filters(), first.next_cursor, None),
                    base_all,
                ),
                (
                    "list: sender id contains '0042'",
                    lambda: queries.conversations(Filters(sender="0042"), None, None),
                    base_all,
                ),
                (
                    "list: intent nlu_fallback",
                    lambda: queries.conversations(Filters(intent="nlu_fallback"), None, None),
                    base_all,
                ),
                (
                    "list: text 'message 7 of'",
                    lambda: queries.conversations(Filters(text="message 7 of"), None, None),
                    base_all,
                ),
                (
                    "list: fallback or confidence < 0.05",
                    lambda: queries.conversations(Filters(flagged=True, below=0.05), None, None),
                    base_all,
                ),
                (
                    "list: one JWT user",
                    lambda: queries.conversations(Filters(), None, "user-000042"),
                    base_all,
                ),
                ("dashboard: 30 days", lambda: queries.dashboard(since30, until, None), base_range),
                ("dashboard: all 60 days", lambda: queries.dashboard(START, until, None), base_all),
            ]
            for label, fn, base in cases:
                ms = best(fn, args.repeats)
                print(f"{label:46} {ms:9.1f} ms  x{ms / base:6.1f} of its baseline")
        finally:
            store.close()


if __name__ == "__main__":
    main()
