"""The analytics tables: incremental runs equal a rebuild, re-runs change nothing, any store,
and the queries of docs/analytics.md give the numbers counted by hand (on SQLite,
PostgreSQL and MariaDB; ``tests/analytics/dataset.py``).

Conversations are appended in small pieces between runs of small batches, so sessions,
turns, a ``rewind`` and an ``undo`` span batches and runs; the tables must then equal the
tables ``--rebuild`` computes from scratch in one go, and hold the hand-counted rows.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from eventstore.analytics.runner import AnalyticsRunner, open_target
from eventstore.errors import CheckpointConflictError
from eventstore.factory import create_tracker_store
from eventstore.stores.base import TrackerStore
from eventstore.stores.sql import feed as sql_feed
from eventstore.stores.sql.store import SQLTrackerStore
from tests.analytics.dataset import EXPECTED, ROW_COUNTS, conversations
from tests.analytics.tables import doc_queries, dump, engine_of, normal, project, projector
from tests.servers.sql_fresh import FreshDatabase


def append_interleaved(store: TrackerStore, between: Any = None, piece: int = 2) -> None:
    """Append every conversation ``piece`` events at a time, round robin; ``between()``
    runs after every third append."""
    queues = {sender: list(events) for sender, events in conversations().items()}
    appends = 0
    while any(queues.values()):
        for sender, queue in queues.items():
            if queue:
                store.append(sender, queue[:piece])
                del queue[:piece]
                appends += 1
                if between is not None and appends % 3 == 0:
                    between()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_incremental_runs_equal_a_rebuild_and_rerunning_changes_nothing(
    kind: str, fresh_database: FreshDatabase
) -> None:
    url = fresh_database("mysql" if kind == "mariadb" else kind)
    store = SQLTrackerStore.from_url(url)
    engine = engine_of(url)
    try:
        runs = []
        with projector(store, batch_size=3) as runner:
            append_interleaved(store, lambda: runs.append(runner.run().events))
            runs.append(runner.run().events)
        total = sum(len(events) for events in conversations().values())
        assert sum(runs) == total and len(runs) > 5
        incremental = dump(engine)
        assert {name: len(rows) for name, rows in incremental.items()} == ROW_COUNTS
        with engine.connect() as conn:  # the numbers docs/analytics.md promises
            for name, sql in doc_queries().items():
                assert normal(conn.execute(text(sql)).all()) == normal(EXPECTED[name]), name

        again = project(store, batch_size=3)
        assert (again.events, again.batches, again.position) == (0, 0, again.start)
        assert dump(engine) == incremental

        rebuilt = project(store, batch_size=1000, rebuild=True)
        assert (rebuilt.start, rebuilt.events, rebuilt.batches) == (0, total, 1)
        assert dump(engine) == incremental
    finally:
        engine.dispose()
        store.close()


def _other_store(kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if kind == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        return {"type": "redis", "url": request.getfixturevalue("redis_url"), "key_prefix": prefix}
    if kind == "mongo":
        url = request.getfixturevalue("mongo_url")
        return {"type": "mongod", "url": url, "db": "analytics", "collection": uuid.uuid4().hex}
    return {"type": "in_memory"}


@pytest.mark.parametrize(
    ("kind", "target"), [("redis", "postgresql"), ("mongo", "sqlite"), ("in_memory", "sqlite")]
)
def test_any_store_with_positions_feeds_tables_in_another_database(
    kind: str, target: str, fresh_database: FreshDatabase, request: pytest.FixtureRequest
) -> None:
    store = create_tracker_store(_other_store(kind, request))
    to = fresh_database(target)
    engine = engine_of(to)
    try:
        with projector(store, to, batch_size=3) as runner:
            append_interleaved(store, runner.run)
            runner.run()
        with engine.connect() as conn:
            for name, sql in doc_queries().items():
                assert normal(conn.execute(text(sql)).all()) == normal(EXPECTED[name]), name
        tables = dump(engine)
        assert {name: len(rows) for name, rows in tables.items()} == ROW_COUNTS
        assert project(store, to=to, batch_size=1000, rebuild=True).batches == 1
        assert dump(engine) == tables
    finally:
        engine.dispose()
        store.close()


def test_a_second_writer_of_the_same_tables_is_stopped(fresh_database: FreshDatabase) -> None:
    url = fresh_database("sqlite")
    store = SQLTrackerStore.from_url(url)
    for sender_id, events in conversations().items():
        store.append(sender_id, events)
    target = open_target(store, None)
    runner = AnalyticsRunner(store, target, batch_size=5)

    def other_run_commits(report: Any) -> None:  # what a concurrent run would do
        with store.engine.begin() as conn:
            sql_feed.save_checkpoint(conn, "analytics", report.position + 5)

    try:
        with pytest.raises(CheckpointConflictError, match="another 'eventstore analytics'"):
            runner.run(on_batch=other_run_commits)
        assert runner.checkpoint() == 10  # the first batch, then the other run's 5 more
    finally:
        store.close()
