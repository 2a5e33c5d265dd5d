"""A killed ``eventstore analytics`` resumes with exactly-once rows.

The CLI projects a PostgreSQL store in batches of 10 while a thread keeps appending; it
is killed with SIGKILL half-way, then run again to the end. Its tables must equal the
tables projected from scratch in one go into another database: nothing lost, nothing
counted twice, whatever batch the kill cut short.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from eventstore.cli import main
from eventstore.stores.sql.schema import event_checkpoints
from eventstore.stores.sql.store import SQLTrackerStore
from tests.analytics.tables import dump, engine_of, project
from tests.servers.sql_fresh import FreshDatabase

CLI = (
    "import sys; from eventstore.cli import entrypoint; "
    "sys.argv = ['eventstore', *sys.argv[1:]]; entrypoint()"
)
SENDERS = 30
TURNS = 4
KILL_AFTER = 200  # of about 600 events


def turn(sender: int, n: int) -> list[dict[str, object]]:
    intent = ("greet", "book_table", "goodbye")[n % 3]
    events: list[dict[str, object]] = [
        {"event": "action", "name": "action_session_start"},
        {"event": "session_started"},
    ] * (n % 7 == 0)
    return [
        *events,
        {"event": "user", "text": f"{sender}-{n}", "parse_data": {"intent": {"name": intent}}},
        {"event": "action", "name": "utter_reply"},
        {"event": "bot", "text": "ok", "metadata": {"utter_action": "utter_reply"}},
        *([{"event": "rewind"}] if n % 5 == 4 else []),
        {"event": "action", "name": "action_listen"},
    ]


def checkpoint(engine: Engine) -> int:
    stmt = select(event_checkpoints.c.position).where(event_checkpoints.c.name == "analytics")
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar() or 0)


def test_a_killed_run_resumes_exactly_once(fresh_database: FreshDatabase, tmp_path: Path) -> None:
    url = fresh_database("postgresql")
    store = SQLTrackerStore.from_url(url)
    for sender in range(SENDERS):
        store.append(f"user-{sender}", [e for n in range(TURNS) for e in turn(sender, n)])
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: sql\n  url: {url}\n")
    engine = engine_of(url)
    stop = threading.Event()

    def write() -> None:
        n = TURNS
        while not stop.is_set():
            store.append(f"user-{n % SENDERS}", turn(n % SENDERS, n))
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    run = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "analytics",
            "--endpoints",
            str(endpoints),
            "--batch-size",
            "10",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while checkpoint(engine) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.02)
        run.send_signal(signal.SIGKILL)
        run.wait()
        killed_at = checkpoint(engine)
        stop.set()
        writer.join()
        assert killed_at >= KILL_AFTER, "the run never got far enough to be killed mid-way"
        assert main(["analytics", "--endpoints", str(endpoints), "--batch-size", "100"]) == 0
        last = max(e.position or 0 for b in store.subscribe(follow=False) for e in b.events)
        assert killed_at < last and checkpoint(engine) == last
        resumed = dump(engine)
        scratch = fresh_database("sqlite")
        project(store, to=scratch, batch_size=5000)
        scratch_engine = engine_of(scratch)
        assert dump(scratch_engine) == resumed
        scratch_engine.dispose()
    finally:
        stop.set()
        if run.poll() is None:
            run.kill()
        engine.dispose()
        store.close()
