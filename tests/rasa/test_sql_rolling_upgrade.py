"""Rolling upgrade: Rasa 3.6's own SQLTrackerStore keeps writing after ``eventstore db upgrade``.

Rasa's rows carry no ``seq``; revision 0005 makes the database number them under the same
per-conversation lock as eventstore's appends. Checked on SQLite, PostgreSQL and MariaDB
with Rasa's real store (the Rasa venv, as a subprocess) writing while eventstore appends
to the same conversation, plus a race of Rasa-shaped inserts against eventstore appends,
``db downgrade``, and the Oracle DDL.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from eventstore.cli import main
from eventstore.stores.base import EventQuery
from eventstore.stores.sql import migrate as sql_migrate
from eventstore.stores.sql.store import SQLTrackerStore
from tests.servers.rasa import rasa_env
from tests.servers.sql_fresh import FreshDatabase
from tests.stores.sql.test_sql_migrations import oracle_migration_sql

KINDS = ["sqlite", "postgresql", "mysql"]
WRITER = Path(__file__).parent / "rasa_side" / "sql_writer.py"


@pytest.fixture(scope="session")
def rasa_driver_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding PyMySQL for the Rasa venv (which ships no MySQL driver).

    PyMySQL is pure Python: the copy from this venv is put on the Rasa process's path, so
    the Rasa venv itself stays exactly as its lock file says.
    """
    import pymysql

    target = tmp_path_factory.mktemp("rasa-drivers")
    shutil.copytree(Path(pymysql.__file__).parent, target / "pymysql")
    return target


def rasa_config(url: str, **job: Any) -> dict[str, Any]:
    """The SQLTrackerStore arguments Rasa's endpoints.yml would hold for ``url``, plus ``job``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return {**job, "dialect": "sqlite", "db": parsed.database}
    return {
        **job,
        "dialect": "mysql+pymysql" if parsed.get_backend_name() == "mysql" else "postgresql",
        "host": parsed.host,
        "port": parsed.port,
        "db": parsed.database,
        "username": parsed.username,
    }


def start_rasa(python: Path, drivers: Path, config: dict[str, Any]) -> subprocess.Popen[str]:
    env = {**rasa_env(), "PYTHONPATH": str(drivers)}
    return subprocess.Popen(
        [str(python), str(WRITER), json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, list[dict[str, Any]]]:
    """Let a Rasa writer read back; sender -> its events, as Rasa's store reads them."""
    out, err = proc.communicate("read\n", timeout=300)
    assert proc.returncode == 0, err[-3000:]
    result: dict[str, list[dict[str, Any]]] = json.loads(out.strip().splitlines()[-1])
    return result


def slots(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What identifies the slot events of a log, in order (timestamps exact)."""
    return [(e["name"], e["value"], e["timestamp"]) for e in events if e["event"] == "slot"]


@pytest.fixture
def store_for() -> Iterator[Any]:
    stores: list[SQLTrackerStore] = []

    def make(url: str) -> SQLTrackerStore:
        stores.append(SQLTrackerStore.from_url(url))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_rasa_keeps_writing_after_the_upgrade_while_eventstore_appends(
    fresh_database: FreshDatabase,
    rasa_python: Path,
    rasa_driver_path: Path,
    store_for: Any,
    kind: str,
) -> None:
    url = fresh_database(kind)
    # a database Rasa's own store created and writes to
    finish(start_rasa(rasa_python, rasa_driver_path, rasa_config(url, writes=[["a", 3, "old-"]])))
    assert main(["db", "upgrade", "--url", url]) == 0

    # an old pod goes on: alone on "a", then on "shared" while eventstore appends there
    job = {"writes": [["a", 3, "new-"], ["shared", 12, "rasa-"]], "read": ["a", "shared"]}
    proc = start_rasa(rasa_python, rasa_driver_path, rasa_config(url, wait=True, **job))
    store = store_for(url)
    written = threading.Event()
    threading.Thread(target=lambda: (proc.stdout and proc.stdout.readline(), written.set())).start()
    ours: list[str] = []
    while not written.is_set():
        if store.version("shared") > 0:  # Rasa is writing there: append alongside
            ours.append(f"es-{len(ours)}")
            store.append("shared", [{"event": "slot", "name": ours[-1], "value": len(ours)}])
    rasa_view = finish(proc)
    assert ours

    names = [e["name"] for e in store.read("a")]
    assert names == [f"old-{i}" for i in range(3)] + [f"new-{i}" for i in range(3)]
    assert [e.seq for e in store.query(EventQuery(sender_id="a"))] == list(range(1, 7))
    stored = list(store.query(EventQuery(sender_id="shared")))
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))  # no gap, no duplicate
    positions = [e.position for e in stored]
    assert positions == sorted(positions)  # Rasa's ORDER BY id is the seq order
    counts = Counter(e.data["name"] for e in stored)
    assert all(counts[name] == 1 for name in ours)
    rasa_names = [n for n in counts if n.startswith("rasa-")]
    assert rasa_names and all(counts[n] == 1 for n in rasa_names)
    # Rasa's store reads back exactly the log eventstore reads
    for sender in ("a", "shared"):
        assert slots(rasa_view[sender]) == slots(store.read(sender))


def _rasa_shaped_writer(url: str, sender: str, name: str, rows: int, errors: list[str]) -> None:
    """Inserts as Rasa's store does: count the session's rows, insert without seq, commit."""
    engine = create_engine(url, connect_args={"timeout": 60} if url.startswith("sqlite") else {})
    try:
        for i in range(rows):
            with engine.begin() as conn:
                count = text("SELECT count(*) FROM events WHERE sender_id = :s")
                conn.execute(count, {"s": sender})
                conn.execute(
                    text(
                        "INSERT INTO events (sender_id, type_name, timestamp, data) "
                        "VALUES (:s, 'slot', 1.0, :d)"
                    ),
                    {"s": sender, "d": json.dumps({"event": "slot", "name": f"{name}-{i}"})},
                )
    except Exception as exc:  # the test fails on any: Rasa would lose this turn
        errors.append(f"{name}: {exc!r}")
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_inserts_without_seq_race_eventstore_appends_without_gap_or_duplicate(
    fresh_database: FreshDatabase, store_for: Any, kind: str
) -> None:
    url = fresh_database(kind)
    store = store_for(url)
    store.append("race", [{"event": "slot", "name": "first", "value": 0}])
    errors: list[str] = []

    def appender(name: str) -> None:
        try:
            for i in range(20):
                store.append("race", [{"event": "slot", "name": f"{name}-{i}", "value": i}] * 2)
        except Exception as exc:
            errors.append(f"{name}: {exc!r}")

    threads = [
        threading.Thread(target=_rasa_shaped_writer, args=(url, "race", f"rasa{n}", 20, errors))
        for n in range(3)
    ] + [threading.Thread(target=appender, args=(f"es{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = list(store.query(EventQuery(sender_id="race")))
    assert len(stored) == 1 + 3 * 20 + 2 * 20 * 2
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    positions = [e.position for e in stored]
    assert positions == sorted(positions)
    names = [e.data["name"] for e in stored]
    for n in range(3):  # each writer's rows in the order it inserted them
        mine = [x for x in names if x.startswith(f"rasa{n}-")]
        assert mine == [f"rasa{n}-{i}" for i in range(20)]
    for n in range(2):  # an append's events stay together
        for i in range(20):
            at = names.index(f"es{n}-{i}")
            assert names[at + 1] == f"es{n}-{i}"


@pytest.mark.parametrize("kind", KINDS)
def test_downgrade_removes_the_default_and_upgrade_brings_it_back(
    fresh_database: FreshDatabase, kind: str
) -> None:
    url = fresh_database(kind)
    SQLTrackerStore.from_url(url).close()
    insert = text(
        "INSERT INTO events (sender_id, type_name, timestamp, data) VALUES ('d', 'slot', 1.0, '{}')"
    )
    engine = create_engine(url)
    try:
        assert main(["db", "downgrade", "0004", "--url", url]) == 0
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(insert)  # NOT NULL seq: what Rasa got before this revision
        assert main(["db", "upgrade", "--url", url]) == 0
        with engine.begin() as conn:
            conn.execute(insert)
            conn.execute(insert)
            seqs = conn.execute(text("SELECT seq FROM events WHERE sender_id = 'd'")).scalars()
            assert sorted(seqs) == [1, 2]
        with engine.connect() as conn:
            command.check(sql_migrate.alembic_config(conn))
    finally:
        engine.dispose()


def test_oracle_gets_the_trigger_in_its_ddl() -> None:
    """No Oracle server here: the trigger in ``alembic upgrade 0004:head --sql`` for oracle."""
    sql = oracle_migration_sql("0004:head")
    assert "CREATE OR REPLACE TRIGGER events_assign_seq" in sql
    assert "WHEN (NEW.seq IS NULL)" in sql
    assert "SELECT NVL(MAX(seq), 0) + 1 INTO :NEW.seq FROM events" in sql
