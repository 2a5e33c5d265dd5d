"""8 writer processes and 2 consumer processes per backend: exactly once, in position order.

The writers append while the consumers follow the feed; each consumer is killed (SIGKILL)
once mid-run and restarted. When the writers are done, each consumer catches up once
more. Every acknowledged event must then be in each consumer's sink exactly once, the
sinks must hold exactly what the store holds, and positions must grow row by row. Before
gap-free positions, PostgreSQL and MariaDB lost a few percent of the events here.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from eventstore import EventQuery, create_tracker_store
from eventstore.stores.memory import InMemoryTrackerStore

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 8
PER_WRITER = 25
KILLS = 1


def _python(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.analytics.feed_worker", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Consumer:
    """One consumer process, restartable, and how to read what it has written."""

    def __init__(self, config: dict[str, Any], sink: str, sql_name: str | None) -> None:
        self.config = json.dumps(config)
        self.sink = sink
        self.sql_name = sql_name
        self.process: subprocess.Popen[str] | None = None

    def args(self) -> list[str]:
        if self.sql_name is not None:
            return ["consume-sql", self.config, self.sql_name]
        return ["consume", self.config, self.sink]

    def start(self) -> None:
        self.process = _python(*self.args())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.communicate()

    def catch_up(self) -> None:
        done = _python(*self.args(), "--until-caught-up")
        _, err = done.communicate(timeout=120)
        assert done.returncode == 0, err[-3000:]

    def rows(self) -> list[tuple[int, str]]:
        """(position, text) in the order the consumer wrote them."""
        try:
            if self.sql_name is not None:
                engine = create_engine(json.loads(self.config)["url"])
                try:
                    with engine.connect() as conn:
                        query = f"SELECT position, text FROM sink_{self.sql_name} ORDER BY n"
                        return [(int(p), str(t)) for p, t in conn.execute(text(query))]
                finally:
                    engine.dispose()
            with sqlite3.connect(self.sink) as db:
                found = db.execute("SELECT position, text FROM consumed ORDER BY n").fetchall()
                return [(int(p), str(t)) for p, t in found]
        except Exception:  # the table does not exist yet
            return []


def check(rows: list[tuple[int, str]], acknowledged: set[str], stored: set[str]) -> None:
    positions = [p for p, _ in rows]
    assert all(a < b for a, b in pairwise(positions)), "out of order"
    counts = Counter(t for _, t in rows)
    twice = [t for t, n in counts.items() if n > 1]
    assert not twice, f"consumed more than once: {twice[:5]}"
    missed = acknowledged - set(counts)
    assert not missed, f"{len(missed)} acknowledged events never consumed: {sorted(missed)[:5]}"
    assert set(counts) == stored


def test_writers_and_killed_consumers(feed_backend: dict[str, Any], tmp_path: Path) -> None:
    store = create_tracker_store(feed_backend)  # the schema exists before the race
    sql = feed_backend["type"] == "sql"
    consumers = [
        Consumer(feed_backend, str(tmp_path / "a.db"), None),
        Consumer(feed_backend, str(tmp_path / "b.db"), "b" if sql else None),
    ]
    writers = [
        _python("write", json.dumps(feed_backend), f"w{n}", str(PER_WRITER)) for n in range(WRITERS)
    ]
    for consumer in consumers:
        consumer.start()
    for _ in range(KILLS):  # kill each consumer once it has written something, restart it
        for consumer in consumers:
            seen = len(consumer.rows())
            deadline = time.monotonic() + 20
            while len(consumer.rows()) == seen and time.monotonic() < deadline:
                time.sleep(0.02)
            consumer.kill()
            consumer.start()
    acknowledged: set[str] = set()
    for writer in writers:
        out, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err[-3000:]
        acknowledged.update(out.split())
    assert len(acknowledged) == WRITERS * PER_WRITER
    for consumer in consumers:
        consumer.kill()
        consumer.catch_up()
    stored = {str(e.data["text"]) for e in store.query(EventQuery())}
    assert stored == acknowledged
    for consumer in consumers:
        check(consumer.rows(), acknowledged, stored)
    store.close()


def test_in_memory_threads_and_an_abandoned_batch() -> None:
    """In-memory: 8 writer threads, 2 subscriptions that break off mid-batch and resume."""
    store = InMemoryTrackerStore()
    acknowledged: set[str] = set()
    lock = threading.Lock()

    def write(n: int) -> None:
        for i in range(PER_WRITER):
            t = f"w{n}-{i}"
            store.append(f"conv-{i % 5}", [{"event": "user", "text": t, "parse_data": {}}])
            with lock:
                acknowledged.add(t)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    consumed: dict[str, list[tuple[int, str]]] = {"a": [], "b": []}
    for name in consumed:  # read a little, break off inside a batch (not acknowledged)
        for batch in store.subscribe(name, batch_size=7, follow=False):
            consumed[name].extend((e.position or 0, e.data["text"]) for e in batch.events)
            break
        consumed[name].clear()  # that batch's work was lost with the "crash"
    for thread in threads:
        thread.join()
    for name, rows in consumed.items():
        for batch in store.subscribe(name, batch_size=7, follow=False):
            rows.extend((e.position or 0, e.data["text"]) for e in batch.events)
        assert store.load_checkpoint(name) == rows[-1][0]
    stored = {str(e.data["text"]) for e in store.query(EventQuery())}
    assert stored == acknowledged and len(stored) == WRITERS * PER_WRITER
    for rows in consumed.values():
        check(rows, acknowledged, stored)


def test_a_store_without_positions_says_so(dynamo_server: Any) -> None:
    """DynamoDB keeps no global positions: subscribing is refused, naming the store."""
    import pytest

    from eventstore import NoPositionsError

    store = create_tracker_store({"type": "dynamo", **dynamo_server.store_config()})
    with pytest.raises(NoPositionsError, match="DynamoTrackerStore has no global positions"):
        store.subscribe("x")
    with pytest.raises(NoPositionsError):
        store.save_checkpoint("x", 1)
    store.close()
