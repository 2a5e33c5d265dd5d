"""``eventstore analytics``: its report line, its one-line errors, ``--follow`` until SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from eventstore.cli import main
from eventstore.factory import create_tracker_store
from eventstore.stores.sql import migrate as sql_migrate
from eventstore.stores.sql.schema import event_checkpoints
from eventstore.stores.sql.store import SQLTrackerStore
from tests.analytics.dataset import ROW_COUNTS, conversations
from tests.analytics.tables import dump, engine_of
from tests.servers.sql_fresh import FreshDatabase

CLI = (
    "import sys; from eventstore.cli import entrypoint; "
    "sys.argv = ['eventstore', *sys.argv[1:]]; entrypoint()"
)
POLL = ("--poll-interval", "0.05")
TOTAL = sum(len(events) for events in conversations().values())


def endpoints_file(tmp_path: Path, section: str) -> str:
    path = tmp_path / "endpoints.yml"
    path.write_text(f"tracker_store:\n{section}")
    return str(path)


def test_a_store_that_is_not_sql_needs_to_and_gets_its_tables_there(
    redis_url: str, redis_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {"type": "redis", "url": redis_url, "key_prefix": redis_prefix}
    store = create_tracker_store(config)
    for sender_id, events in conversations().items():
        store.append(sender_id, events)
    store.close()
    endpoints = endpoints_file(
        tmp_path, f"  type: redis\n  url: {redis_url}\n  key_prefix: {redis_prefix}\n"
    )
    assert main(["analytics", "--endpoints", endpoints]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the tracker store is RedisTrackerStore, not SQL: pass --to URL")
    assert err.count("\n") == 1

    to = f"sqlite:///{tmp_path / 'analytics.db'}"
    assert main(["analytics", "--endpoints", endpoints, "--to", to, "--batch-size", "4"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{TOTAL} events projected in 9 batches into sqlite database")
    assert out.endswith(f"checkpoint at position {TOTAL}")
    engine = engine_of(to)
    tables = dump(engine)
    assert {name: len(rows) for name, rows in tables.items()} == ROW_COUNTS

    assert main(["analytics", "--endpoints", endpoints, "--to", to]) == 0  # nothing new
    assert capsys.readouterr().out.startswith("0 events projected in 0 batches")
    assert main(["analytics", "--endpoints", endpoints, "--to", to, "--rebuild"]) == 0
    assert capsys.readouterr().out.startswith(f"{TOTAL} events projected in 1 batches")
    assert dump(engine) == tables
    engine.dispose()


def test_a_store_behind_head_is_refused_with_the_upgrade_command(
    fresh_database: FreshDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = fresh_database("sqlite")
    SQLTrackerStore.from_url(url).close()
    engine = engine_of(url)
    sql_migrate.downgrade(engine, "0007")
    engine.dispose()
    endpoints = endpoints_file(tmp_path, f"  type: sql\n  url: {url}\n")
    assert main(["analytics", "--endpoints", endpoints]) == 1
    err = capsys.readouterr().err
    assert "is at revision 0007, behind 0008" in err and "eventstore db upgrade" in err
    assert err.count("\n") == 1
    assert main(["analytics", "--endpoints", endpoints, "--batch-size", "0"]) == 1
    assert "--batch-size" in capsys.readouterr().err


def test_follow_projects_new_events_until_sigterm(
    fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    url = fresh_database("sqlite")
    store = SQLTrackerStore.from_url(url)
    endpoints = endpoints_file(tmp_path, f"  type: sql\n  url: {url}\n")
    engine = engine_of(url)
    follower = subprocess.Popen(
        [sys.executable, "-c", CLI, "analytics", "--follow", "--endpoints", endpoints, *POLL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for sender_id, events in conversations().items():
            store.append(sender_id, events)
        stmt = select(event_checkpoints.c.position).where(event_checkpoints.c.name == "analytics")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(stmt).scalar() == TOTAL:
                    break
            time.sleep(0.05)
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=60)
        assert follower.returncode == 0, err
        assert out.strip().endswith(f"checkpoint at position {TOTAL}")
        assert f"position {TOTAL}: {TOTAL} events projected" in err
        assert {name: len(rows) for name, rows in dump(engine).items()} == ROW_COUNTS
    finally:
        if follower.poll() is None:
            follower.kill()
        engine.dispose()
        store.close()
