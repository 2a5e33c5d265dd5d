"""Writer and consumer processes for the feed tests (run with ``python -m``).

``write CONFIG TAG COUNT``: appends COUNT user events, one to three per append, to a few
shared conversations; prints the text of each event once its append returned.

``consume CONFIG SINK``: follows the store's feed and writes each event to a SQLite file
SINK with the feed position, in the same SQLite transaction as its own checkpoint, so a
killed consumer resumes with nothing lost or written twice. With ``--until-caught-up`` it
stops once it has read everything; otherwise it follows until killed.

``consume-sql CONFIG NAME``: the same into a table of the SQL store's own database, with
the store's named checkpoint committed in that transaction (``batch.transaction()``).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
from typing import Any

from sqlalchemy import text

from eventstore import create_tracker_store
from eventstore.stores.base import StoredEvent


def write(config: dict[str, Any], tag: str, count: int) -> None:
    store = create_tracker_store(config)
    rng = random.Random(f"{tag}-{os.getpid()}")
    done = 0
    while done < count:
        size = min(rng.randint(1, 3), count - done)
        texts = [f"{tag}-{done + i}" for i in range(size)]
        events = [{"event": "user", "text": t, "parse_data": {}} for t in texts]
        store.append(f"conv-{rng.randrange(6)}", events)
        for t in texts:
            print(t, flush=True)
        done += size
    store.close()


def _row(event: StoredEvent) -> tuple[int | None, str, int, str]:
    return (event.position, event.sender_id, event.seq, str(event.data.get("text")))


def consume(config: dict[str, Any], sink: str, until_caught_up: bool) -> None:
    db = sqlite3.connect(sink, isolation_level=None)
    db.execute(
        "CREATE TABLE IF NOT EXISTS consumed (n INTEGER PRIMARY KEY AUTOINCREMENT, "
        "position INTEGER, sender_id TEXT, seq INTEGER, text TEXT)"
    )
    db.execute("CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY, position INTEGER)")
    row = db.execute("SELECT position FROM checkpoint WHERE id = 1").fetchone()
    store = create_tracker_store(config)
    subscription = store.subscribe(
        after=row[0] if row else 0, batch_size=25, follow=not until_caught_up, poll_interval=0.02
    )
    for batch in subscription:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO consumed (position, sender_id, seq, text) VALUES (?, ?, ?, ?)",
            [_row(e) for e in batch.events],
        )
        db.execute("INSERT OR REPLACE INTO checkpoint VALUES (1, ?)", (batch.position,))
        db.execute("COMMIT")
    store.close()


def consume_sql(config: dict[str, Any], name: str, until_caught_up: bool) -> None:
    store: Any = create_tracker_store(config)
    table = f"sink_{name}"
    with store.engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {table} (n INTEGER PRIMARY KEY "
                f"{'AUTO_INCREMENT' if conn.dialect.name == 'mysql' else ''}"
                f"{'GENERATED ALWAYS AS IDENTITY' if conn.dialect.name == 'postgresql' else ''}, "
                "position BIGINT, sender_id VARCHAR(255), seq INTEGER, text VARCHAR(255))"
            )
        )
    subscription = store.subscribe(
        name, batch_size=25, follow=not until_caught_up, poll_interval=0.02
    )
    insert = text(
        f"INSERT INTO {table} (position, sender_id, seq, text) "
        "VALUES (:position, :sender_id, :seq, :text)"
    )
    for batch in subscription:
        with batch.transaction() as conn:
            keys = ("position", "sender_id", "seq", "text")
            conn.execute(insert, [dict(zip(keys, _row(e), strict=True)) for e in batch.events])
    store.close()


def main() -> None:
    mode, config = sys.argv[1], json.loads(sys.argv[2])
    until = "--until-caught-up" in sys.argv
    if mode == "write":
        write(config, sys.argv[3], int(sys.argv[4]))
    elif mode == "consume":
        consume(config, sys.argv[3], until)
    elif mode == "consume-sql":
        consume_sql(config, sys.argv[3], until)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
