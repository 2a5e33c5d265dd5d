"""Alembic migrations on SQLite, PostgreSQL and MariaDB (real servers), and Oracle's SQL.

The legacy tests build a database exactly as Rasa's SQLTrackerStore leaves it (the DDL of
rasa-compat.md §3 and rows with ASCII-escaped JSON ``data``), check that the store refuses
it, upgrade it with ``eventstore db upgrade`` and read every conversation back.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from eventstore.cli import main
from eventstore.errors import SchemaError
from eventstore.stores.base import EventQuery
from eventstore.stores.sql import migrate as sql_migrate
from eventstore.stores.sql.schema import HEAD_REVISION
from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.testing import action, bot, session_start, user
from tests.servers.sql_fresh import FreshDatabase

REPO = Path(__file__).resolve().parents[3]
KINDS = ["sqlite", "postgresql", "mysql"]

#: Rasa's table as its SQLTrackerStore creates it, per dialect (rasa-compat.md §3).
RASA_DDL = {
    "sqlite": "id INTEGER NOT NULL",
    "postgresql": "id SERIAL NOT NULL",
    "mysql": "id INTEGER NOT NULL AUTO_INCREMENT",
}


def create_rasa_table(engine: Engine, kind: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"""CREATE TABLE events (
                {RASA_DDL[kind]},
                sender_id VARCHAR(255) NOT NULL,
                type_name VARCHAR(255) NOT NULL,
                timestamp FLOAT,
                intent_name VARCHAR(255),
                action_name VARCHAR(255),
                data TEXT,
                PRIMARY KEY (id)
            )"""
        )
        conn.exec_driver_sql("CREATE INDEX ix_events_sender_id ON events (sender_id)")


def rasa_conversations() -> dict[str, list[dict[str, Any]]]:
    """Several conversations as Rasa logs them: sessions, non-ASCII text, slots, metadata."""
    t = 1_700_000_000.123456

    def stamp(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal t
        out = []
        for event in events:
            t += 1.000001
            out.append({**event, "timestamp": t})
        return out

    greet = user("grüße aus Köln 👋", intent="greet")
    greet["metadata"] = {"model_id": "m1", "assistant_id": "a1"}
    return {
        "alice": stamp(
            [
                *session_start(),
                greet,
                action("utter_greet"),
                bot("hallo"),
                action("action_listen"),
                *session_start(),
                {"event": "slot", "name": "city", "value": "Zürich"},
                user("bye", "goodbye"),
            ]
        ),
        "bob": stamp([action("action_listen"), user("no session here", "inform")]),
        "carol-ünïcode": stamp(
            [*session_start(), user("hi", "greet"), action("utter_greet"), *session_start()]
        ),
    }


def rasa_row(sender_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """The row Rasa's SQLTrackerStore writes for ``event`` (``data`` is json.dumps)."""
    intent = (event.get("parse_data") or {}).get("intent", {}).get("name")
    return {
        "sender_id": sender_id,
        "type_name": event["event"],
        "timestamp": event["timestamp"],
        "intent_name": intent,
        "action_name": event.get("name"),
        "data": json.dumps(event),
    }


def fill_rasa_database(url: str, kind: str) -> tuple[dict[str, list[dict[str, Any]]], dict]:
    """Rasa's table with interleaved conversations; returns them and their ids in order."""
    conversations = rasa_conversations()
    engine = create_engine(url)
    create_rasa_table(engine, kind)
    queues = {sid: list(events) for sid, events in conversations.items()}
    with engine.begin() as conn:
        while any(queues.values()):  # round robin: ids of a conversation are not contiguous
            for sid, queue in queues.items():
                if queue:
                    conn.execute(
                        text(
                            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, "
                            "action_name, data) VALUES (:sender_id, :type_name, :timestamp, "
                            ":intent_name, :action_name, :data)"
                        ),
                        rasa_row(sid, queue.pop(0)),
                    )
        ids = {
            sid: [
                row[0]
                for row in conn.execute(
                    text("SELECT id FROM events WHERE sender_id = :s ORDER BY id"), {"s": sid}
                )
            ]
            for sid in conversations
        }
        raws = conn.execute(text("SELECT data FROM events")).scalars().all()
    engine.dispose()
    assert any("\\u00fc" in r for r in raws) and not any("ü" in r for r in raws)  # as Rasa
    return conversations, ids


def check_alembic_has_no_drift(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        command.check(sql_migrate.alembic_config(conn))  # raises on any difference
    engine.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_a_rasa_database_is_refused_then_upgraded_in_place(
    fresh_database: FreshDatabase, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = fresh_database(kind)
    conversations, ids = fill_rasa_database(url, kind)

    with pytest.raises(SchemaError) as info:
        SQLTrackerStore.from_url(url)
    assert "Rasa" in str(info.value) and "eventstore db upgrade" in str(info.value)

    assert main(["db", "upgrade", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "stamped at revision 0001" in out and f"now at revision {HEAD_REVISION}" in out

    store = SQLTrackerStore.from_url(url)
    try:
        assert set(store.keys()) == set(conversations)
        for sid, events in conversations.items():
            assert store.read(sid) == events  # every event, every key, exact timestamps
            stored = list(store.query(EventQuery(sender_id=sid)))
            assert [e.seq for e in stored] == list(range(1, len(events) + 1))
            assert [e.position for e in stored] == ids[sid]  # id kept: seq follows id order
        alice = store.retrieve("alice")
        assert alice is not None
        assert [e["event"] for e in alice.events] == ["session_started", "action", "slot", "user"]
        assert alice.version == len(conversations["alice"])
        bob = store.retrieve("bob")
        assert bob is not None and bob.events == conversations["bob"]  # no session: all
        greets = list(store.query(EventQuery(intent="greet")))
        assert {e.sender_id for e in greets} == {"alice", "carol-ünïcode"}
        # the log goes on after the upgrade
        assert store.append("alice", [action("utter_again")]) == len(conversations["alice"]) + 1
        last = list(store.query(EventQuery(sender_id="alice")))[-1]
        assert last.position is not None and last.position > max(max(v) for v in ids.values())
    finally:
        store.close()
    check_alembic_has_no_drift(url)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_database_is_created_at_head_and_checks_clean(
    fresh_database: FreshDatabase, kind: str
) -> None:
    url = fresh_database(kind)
    store = SQLTrackerStore.from_url(url)
    store.append("x", [action("a")])
    with store.engine.connect() as conn:
        assert sql_migrate.current_revision(conn) == HEAD_REVISION
        tables = set(inspect(conn).get_table_names())
    store.close()
    assert {"events", "event_outbox", "alembic_version"} <= tables
    check_alembic_has_no_drift(url)


@pytest.mark.parametrize("kind", KINDS)
def test_downgrade_to_rasa_layout_and_back_keeps_every_event(
    fresh_database: FreshDatabase, kind: str
) -> None:
    url = fresh_database(kind)
    store = SQLTrackerStore.from_url(url)
    store.append("a", [*session_start(), user("1"), action("x")])
    store.append("b", [user("2")])
    store.append("a", [bot("3")])
    before = {sid: store.read(sid) for sid in ("a", "b")}
    store.close()

    assert main(["db", "downgrade", "0001", "--url", url]) == 0
    engine = create_engine(url)
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("events")}
    engine.dispose()
    assert "seq" not in columns and "event_outbox" not in columns

    with pytest.raises(SchemaError) as info:
        SQLTrackerStore.from_url(url)
    assert "behind" in str(info.value) and "eventstore db upgrade" in str(info.value)

    assert main(["db", "upgrade", "--url", url]) == 0
    store = SQLTrackerStore.from_url(url)
    try:
        assert {sid: store.read(sid) for sid in ("a", "b")} == before
        assert [e.seq for e in store.query(EventQuery(sender_id="a"))] == [1, 2, 3, 4, 5, 6]
    finally:
        store.close()


def test_plain_alembic_adopts_a_rasa_table(fresh_database: FreshDatabase) -> None:
    """``alembic -x url=... upgrade head`` from the repository, and EVENTSTORE_DB_URL."""
    url = fresh_database("sqlite")
    conversations, _ = fill_rasa_database(url, "sqlite")
    alembic = [sys.executable, "-m", "alembic"]
    done = subprocess.run(
        [*alembic, "-x", f"url={url}", "upgrade", "head"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    env = {**os.environ, "EVENTSTORE_DB_URL": url}
    checked = subprocess.run(
        [*alembic, "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr
    store = SQLTrackerStore.from_url(url)
    try:
        for sid, events in conversations.items():
            assert store.read(sid) == events
    finally:
        store.close()


def test_an_unrelated_events_table_is_refused(fresh_database: FreshDatabase) -> None:
    """Rasa's SQL *broker* also names its table ``events``: not a tracker table."""
    url = fresh_database("sqlite")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)"
        )
    engine.dispose()
    with pytest.raises(SchemaError) as info:
        SQLTrackerStore.from_url(url)
    assert "neither Rasa's tracker table" in str(info.value)


def test_stores_starting_together_on_an_empty_database(fresh_database: FreshDatabase) -> None:
    url = fresh_database("postgresql")
    stores: list[SQLTrackerStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(SQLTrackerStore.from_url(url))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        assert stores[0].append("s", [action("a")]) == 1
        assert stores[-1].read("s")[0]["name"] == "a"
    finally:
        for store in stores:
            store.close()


def oracle_migration_sql(revisions: str = "head") -> str:
    """``alembic upgrade REVISIONS --sql`` for the oracle dialect (no Oracle server here)."""
    config = sql_migrate.alembic_config()
    config.set_main_option("sqlalchemy.url", "oracle://scott@db.example:1521/?service_name=xe")
    buffer = io.StringIO()
    config.output_buffer = buffer
    command.upgrade(config, revisions, sql=True)
    return buffer.getvalue()


def test_oracle_migration_sql_has_the_sequences_and_wide_types() -> None:
    """No Oracle server here: ``alembic upgrade head --sql`` for the oracle dialect."""
    sql = oracle_migration_sql()
    assert "CREATE SEQUENCE events_seq" in sql
    assert "CREATE SEQUENCE event_outbox_seq" in sql
    assert "data CLOB" in sql
    assert "timestamp_double BINARY_DOUBLE" in sql
    assert "ROW_NUMBER() OVER (PARTITION BY sender_id ORDER BY id)" in sql
    assert "CREATE UNIQUE INDEX ix_events_sender_id_seq ON events (sender_id, seq)" in sql
    assert f"version_num='{HEAD_REVISION}'" in sql


def test_a_database_from_a_newer_eventstore_is_refused(fresh_database: FreshDatabase) -> None:
    url = fresh_database("sqlite")
    SQLTrackerStore.from_url(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    engine.dispose()
    with pytest.raises(SchemaError) as info:
        SQLTrackerStore.from_url(url)
    assert "0099" in str(info.value) and "upgrade eventstore" in str(info.value)


BUMP_IDS = {
    "sqlite": "UPDATE sqlite_sequence SET seq = 3000000000 WHERE name = 'events'",
    "postgresql": "SELECT setval(pg_get_serial_sequence('events', 'id'), 3000000000)",
    "mysql": "ALTER TABLE events AUTO_INCREMENT = 3000000000",
}


@pytest.mark.parametrize("kind", KINDS)
def test_positions_go_past_32_bits_after_upgrading_a_rasa_database(
    fresh_database: FreshDatabase, kind: str
) -> None:
    url = fresh_database(kind)
    fill_rasa_database(url, kind)
    assert main(["db", "upgrade", "--url", url]) == 0
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(BUMP_IDS[kind])
    engine.dispose()
    store = SQLTrackerStore.from_url(url)
    try:
        store.append("bob", [action("far")])
        last = list(store.query(EventQuery(sender_id="bob")))[-1]
        assert last.position is not None and last.position > 2**31
        after = list(store.query(EventQuery(after_position=2**31)))
        assert [e.data["name"] for e in after] == ["far"]
    finally:
        store.close()


def test_the_schema_module_names_the_head_of_the_shipped_revisions() -> None:
    scripts = sql_migrate.script_directory()
    assert scripts.get_current_head() == HEAD_REVISION
    assert [s.revision for s in scripts.walk_revisions()][-1] == "0001"
