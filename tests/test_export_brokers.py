"""``eventstore export`` from a SQLite store through real brokers, read by plain consumers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventstore.cli import main
from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore
from eventstore.testing import action, user


def sqlite_section(path: Path) -> dict[str, Any]:
    return {"type": "sql", "dialect": "sqlite", "db": str(path)}


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[TrackerStore, dict[str, Any]]]:
    section = sqlite_section(tmp_path / "store.db")
    store = create_tracker_store(section)
    for i in range(20):
        events = [user(f"hi {i}", ts=1000.0 + i)]
        events += [action(f"act_{k}", ts=1000.0 + i + k / 100) for k in range(1, 10)]
        store.append(f"conv-{i:02d}", events)
    yield store, section
    store.close()


def expected(store: TrackerStore) -> dict[str, list[dict[str, Any]]]:
    ids = store.keys()
    return {sid: store.read(sid) for sid in ids}


def check(messages: list[dict[str, Any]], store: TrackerStore) -> None:
    """Every event exactly once, in seq order per conversation, with the documented body."""
    got: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, int]] = set()
    for message in messages:
        body = dict(message)
        sid, seq = body.pop("sender_id"), body.pop("seq")
        assert isinstance(body.pop("position"), int)
        assert (sid, seq) not in seen
        seen.add((sid, seq))
        assert seq == len(got.get(sid, [])) + 1
        got.setdefault(sid, []).append(body)
    assert got == expected(store)


def export(tmp_path: Path, store_section: dict[str, Any], broker: dict[str, Any]) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        yaml.safe_dump({"tracker_store": store_section, "event_broker": broker}), encoding="utf-8"
    )
    assert main(["export", "--endpoints", str(endpoints)]) == 0


def test_sqlite_to_file_broker(tmp_path: Path, sqlite_store: Any) -> None:
    store, section = sqlite_store
    out = tmp_path / "events.jsonl"
    export(tmp_path, section, {"type": "file", "path": str(out)})
    check([json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()], store)


def test_sqlite_to_rabbitmq(tmp_path: Path, sqlite_store: Any, rabbit_topology: Any) -> None:
    import pika

    store, section = sqlite_store
    broker = {
        "type": "pika",
        "url": rabbit_topology.host,
        "port": rabbit_topology.port,
        "username": "guest",
        "password": "guest",
        "exchange_name": rabbit_topology.exchange,
        "queues": list(rabbit_topology.queues),
    }
    export(tmp_path, section, broker)
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(host=rabbit_topology.host, port=rabbit_topology.port)
    )
    channel = connection.channel()
    for queue in rabbit_topology.queues:  # the fanout exchange fed both queues
        messages = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            messages.append(json.loads(body))
        check(messages, store)
    connection.close()


def test_sqlite_to_sql_broker(tmp_path: Path, sqlite_store: Any) -> None:
    import sqlite3

    store, section = sqlite_store
    broker_db = tmp_path / "broker.db"
    broker = {"type": "sql", "dialect": "sqlite", "db": str(broker_db), "table_name": "exported"}
    export(tmp_path, section, broker)
    with sqlite3.connect(broker_db) as conn:
        rows = conn.execute("SELECT data FROM exported ORDER BY id").fetchall()
    check([json.loads(r[0]) for r in rows], store)
