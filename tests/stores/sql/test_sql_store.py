"""SQL-store behaviour beyond the contract, on SQLite, PostgreSQL and MariaDB (real servers).

Outbox rows written with the events, Rasa-readable rows, the size and name limits of the
columns, streaming queries, an outage and recovery, and Oracle's DDL compiled offline.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.dialects import mysql, oracle, postgresql
from sqlalchemy.schema import CreateSequence, CreateTable

from brokers.base import EventBroker
from eventstore.errors import BackendUnavailable, BrokerUnavailable, EventValidationError
from eventstore.events import MAX_EVENT_BYTES
from eventstore.relay import relay_of, with_broker
from eventstore.stores.base import EventQuery
from eventstore.stores.sql.engine import PING_AFTER_IDLE
from eventstore.stores.sql.schema import event_outbox, events
from eventstore.stores.sql.statements import CURRENT_SESSION
from eventstore.stores.sql.store import SQLTrackerStore, query_statement
from eventstore.testing import action, bot, new_id, session_start, user
from tests.proxy import TcpProxy

KINDS = ["sqlite", "postgresql", "mysql"]


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return str(
        request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mysql_url")
    )


@pytest.fixture
def store(url: str) -> Iterator[SQLTrackerStore]:
    store = SQLTrackerStore.from_url(url)
    yield store
    store.close()


class DownBroker(EventBroker):
    """A broker that is down: every publish fails, so the outbox keeps everything."""

    def publish(self, message: dict[str, Any]) -> None:
        raise BrokerUnavailable("broker is down")


class ListBroker(EventBroker):
    """A broker that keeps what it was given, in order."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def publish(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


def outbox_rows(store: SQLTrackerStore, sender_id: str) -> int:
    with store.engine.connect() as conn:
        stmt = select(func.count()).where(event_outbox.c.sender_id == sender_id)
        return int(conn.execute(stmt).scalar() or 0)


def test_outbox_rows_are_written_with_the_events_and_acknowledged(url: str) -> None:
    store = with_broker(SQLTrackerStore.from_url(url), DownBroker())
    try:
        a, b = new_id(), new_id()
        store.append(a, [user("1"), action("x")])
        store.append(b, [user("2")])
        store.append(a, [bot("3")])
        pending = [e for e in store.outbox_pending(10_000) if e.sender_id in (a, b)]
        assert [(e.sender_id, e.seq) for e in pending] == [(a, 1), (a, 2), (b, 1), (a, 3)]
        assert [e.data for e in pending if e.sender_id == a] == store.read(a)
        positions = [e.position or 0 for e in pending]
        assert positions == sorted(positions)

        store.outbox_ack(pending[:2])
        left = [(e.sender_id, e.seq) for e in store.outbox_pending(10_000) if e.sender_id in (a, b)]
        assert left == [(b, 1), (a, 3)]

        store.replace(a, [action("new")], expected_version=3)  # old pending rows go too
        left = [(e.sender_id, e.seq) for e in store.outbox_pending(10_000) if e.sender_id in (a, b)]
        assert left == [(b, 1), (a, 1)]
        store.delete(b)
        assert outbox_rows(store, b) == 0
    finally:
        relay_of(store).stop(0)
        store.close()


def test_a_later_process_publishes_what_an_outage_left_in_the_outbox(url: str) -> None:
    writer = with_broker(SQLTrackerStore.from_url(url), DownBroker())
    sid = new_id()
    writer.append(sid, [*session_start(), user("while down")])
    relay_of(writer).stop(0)
    writer.close()

    broker = ListBroker()
    reader = with_broker(SQLTrackerStore.from_url(url), broker)
    try:
        assert relay_of(reader).stop(drain_timeout=30)
        mine = [m for m in broker.messages if m["sender_id"] == sid]
        assert [m["seq"] for m in mine] == [1, 2, 3, 4]
        assert mine[-1]["text"] == "while down" and mine[-1]["position"] > 0
        assert outbox_rows(reader, sid) == 0
    finally:
        reader.close()


def test_no_outbox_rows_without_a_broker(store: SQLTrackerStore) -> None:
    sid = new_id()
    store.append(sid, [action("a")])
    assert outbox_rows(store, sid) == 0


def test_rows_are_what_rasas_sql_store_reads(store: SQLTrackerStore) -> None:
    sid = new_id()
    store.append(sid, [user("grüße", intent="greet", ts=1700000001.25), action("utter_x")])
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(events).where(events.c.sender_id == sid).order_by(events.c.id)
        ).all()
    assert [(r.type_name, r.intent_name, r.action_name, r.seq) for r in rows] == [
        ("user", "greet", None, 1),
        ("action", None, "utter_x", 2),
    ]
    assert rows[0].timestamp == 1700000001.25
    assert "\\u00fc" in rows[0].data  # json.dumps with ASCII escapes, as Rasa writes
    assert json.loads(rows[0].data)["text"] == "grüße"
    assert "sender_id" not in json.loads(rows[0].data)


def test_an_event_of_the_maximum_size_round_trips(store: SQLTrackerStore) -> None:
    sid = new_id()
    text = "x" * (MAX_EVENT_BYTES - 200)  # TEXT on MySQL would hold only 64 KB
    store.append(sid, [bot(text)])
    assert store.read(sid)[0]["text"] == text


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (action("a" * 256), "name"),
        (user("hi", intent="i" * 300), "parse_data.intent.name"),
    ],
)
def test_names_longer_than_the_columns_are_refused(
    store: SQLTrackerStore, event: dict[str, Any], field: str
) -> None:
    sid = new_id()
    store.append(sid, [action("ok")])
    with pytest.raises(EventValidationError) as info:
        store.append(sid, [action("fine"), event])
    assert info.value.index == 1 and info.value.field == field
    assert [e["name"] for e in store.read(sid)] == ["ok"] and store.version(sid) == 1


def test_queries_stream_in_batches_and_release_the_connection(url: str) -> None:
    store = SQLTrackerStore.from_url(url, pool_size=1, max_overflow=0, pool_timeout=5)
    try:
        sid = new_id()
        store.append(sid, [action(f"a{i}") for i in range(1200)])  # > one fetch batch
        seqs = [e.seq for e in store.query(EventQuery(sender_id=sid))]
        assert seqs == list(range(1, 1201))
        stream = store.query(EventQuery(sender_id=sid))
        assert next(stream).seq == 1
        stream.close()  # a consumer that stops early gives the connection back
        assert store.append(sid, [action("after")]) == 1201
        keys = store.keys()
        assert isinstance(next(keys), str)
        keys.close()
    finally:
        store.close()


def test_an_outage_is_backend_unavailable_and_the_store_recovers(postgres_url: str) -> None:
    target = postgres_url.replace("127.0.0.1:5432", "{}")
    with TcpProxy("127.0.0.1", 5432) as proxy:
        store = SQLTrackerStore.from_url(target.format(proxy.address))
        try:
            sid = new_id()
            store.append(sid, [action("before")])
            proxy.cut()
            with pytest.raises(BackendUnavailable) as info:
                store.append(sid, [action("during")])
            assert "postgresql" in str(info.value)
            proxy.restore()
            deadline = time.monotonic() + 30
            while True:  # the pool reconnects (pre-ping) once the server is back
                try:
                    store.append(sid, [action("after")])
                    break
                except BackendUnavailable:
                    if time.monotonic() > deadline:
                        raise
            assert [e["name"] for e in store.read(sid)] == ["before", "after"]
        finally:
            store.close()


@pytest.mark.parametrize(("fixture", "port"), [("postgres_url", 5432), ("mysql_url", 3306)])
def test_connections_lost_while_idle_are_replaced_before_use(
    fixture: str, port: int, request: pytest.FixtureRequest
) -> None:
    """pool_pre_ping: a server restart while the pool is idle costs the next append nothing."""
    target = str(request.getfixturevalue(fixture)).replace(f"127.0.0.1:{port}", "{}")
    with TcpProxy("127.0.0.1", port) as proxy:
        store = SQLTrackerStore.from_url(target.format(proxy.address))
        try:
            sid = new_id()
            store.append(sid, [action("before")])
            proxy.cut()  # every pooled connection is closed by the "server"
            proxy.restore()
            time.sleep(PING_AFTER_IDLE + 0.2)
            store.append(sid, [action("after")])  # no BackendUnavailable: pinged, replaced
            assert [e["name"] for e in store.read(sid)] == ["before", "after"]
        finally:
            store.close()


# -- Oracle: no server here, so its DDL and statements are compiled -----------------------
def test_oracle_ddl_uses_the_sequence_and_full_precision_types() -> None:
    dialect = oracle.dialect()
    ddl = str(CreateTable(events).compile(dialect=dialect))
    assert "timestamp BINARY_DOUBLE" in ddl
    assert "data CLOB" in ddl
    assert "sender_id VARCHAR2(255 CHAR) NOT NULL" in ddl
    assert "seq INTEGER NOT NULL" in ddl
    assert str(CreateSequence(events.c.id.default).compile(dialect=dialect)).strip() == (
        "CREATE SEQUENCE events_seq"
    )
    columns = ["sender_id", "type_name", "timestamp", "intent_name", "action_name", "data", "seq"]
    stmt = insert(events).returning(events.c.id, sort_by_parameter_order=True)
    compiled = str(stmt.compile(dialect=dialect, column_keys=columns))
    assert "VALUES (events_seq.nextval, :sender_id" in compiled
    limited = select(events.c.id).order_by(events.c.id).limit(5)
    assert "FETCH FIRST" in str(limited.compile(dialect=dialect))


def test_other_dialects_get_wide_types_and_no_sequence() -> None:
    my = str(CreateTable(events).compile(dialect=mysql.dialect()))
    assert "timestamp DOUBLE" in my and "data MEDIUMTEXT" in my
    pg = str(CreateTable(events).compile(dialect=postgresql.dialect()))
    assert "timestamp FLOAT(53)" in pg and "data TEXT" in pg and "SERIAL" in pg
    columns = ["sender_id", "type_name", "data", "seq"]
    pg_insert = insert(events).compile(dialect=postgresql.dialect(), column_keys=columns)
    assert str(pg_insert).startswith(
        "INSERT INTO events (sender_id, type_name, data, seq) VALUES (%(sender_id)s"
    )


def test_oracle_compiles_the_read_statements() -> None:
    dialect = oracle.dialect()
    session = str(CURRENT_SESSION.compile(dialect=dialect))
    assert "coalesce((SELECT max(events.seq)" in session
    assert "events.type_name = :type_name_1" in session
    query = query_statement(EventQuery(intent="greet", since=1.0, after_position=7, limit=10))
    sql = str(query.compile(dialect=dialect))
    assert "events.intent_name = :intent_name_1" in sql
    assert "events.id > :param_1" in sql and "ORDER BY events.id" in sql
    assert "FETCH FIRST __[POSTCOMPILE_param_2] ROWS ONLY" in sql


def test_appends_racing_replaces_and_deletes_leave_no_gap(store: SQLTrackerStore) -> None:
    """Writers of one conversation are serialised: an append that read the version just
    before a replace or delete committed must not land after a gap."""
    sid = new_id()
    store.append(sid, [action(f"first-{i}") for i in range(20)])
    errors: list[BaseException] = []

    def appender(n: int) -> None:
        try:
            for i in range(15):
                store.append(sid, [action(f"a{n}-{i}")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def rewriter() -> None:
        try:
            for i in range(6):
                if i % 3 == 2:
                    store.delete(sid)
                else:
                    store.replace(sid, [action(f"r{i}-{k}") for k in range(3)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=rewriter))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    stored = [e.seq for e in store.query(EventQuery(sender_id=sid))]
    assert stored == list(range(1, len(stored) + 1))
    assert store.version(sid) == len(stored) == len(store.read(sid))


def test_out_of_range_query_bounds_are_answered_not_sent(store: SQLTrackerStore) -> None:
    """NaN, infinities and integers past 64 bits would make the driver fail."""
    sid = new_id()
    store.append(sid, [action("a", ts=100.0), action("b", ts=200.0)])

    def names(**bounds: Any) -> list[str]:
        return [e.data["name"] for e in store.query(EventQuery(sender_id=sid, **bounds))]

    inf, nan = float("inf"), float("nan")
    assert names(since=-inf, until=inf) == ["a", "b"]
    assert names(since=inf) == [] and names(until=-inf) == []
    with pytest.raises(EventValidationError, match="NaN"):  # one answer on every backend
        names(since=nan)
    assert names(until=150.0, limit=2**64) == ["a"]
    assert names(after_position=2**64) == []
    assert names(after_position=-(2**70)) == ["a", "b"]


def test_a_lone_surrogate_in_a_name_is_refused(store: SQLTrackerStore) -> None:
    sid = new_id()
    store.append(sid, [action("ok")])
    with pytest.raises(EventValidationError) as info:
        store.append(sid, [action("bad\ud800")])
    assert info.value.field == "name" and "lone surrogates" in str(info.value)
    assert store.version(sid) == 1


@pytest.mark.parametrize("bad", ["a\x00b", "x\ud800"])
def test_filters_no_driver_can_send_match_nothing(store: SQLTrackerStore, bad: str) -> None:
    sid = new_id()
    store.append(sid, [user("hi", intent="greet"), action("act")])
    for query in (
        EventQuery(sender_id=bad),
        EventQuery(sender_id=sid, type_name=bad),
        EventQuery(sender_id=sid, intent=bad),
        EventQuery(sender_id=sid, action=bad),
    ):
        assert list(store.query(query)) == []
    assert len(list(store.query(EventQuery(sender_id=sid)))) == 2
