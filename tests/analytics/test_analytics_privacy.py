"""Erasure reaches the analytics tables of the store's database (docs/privacy.md).

``forget`` and retention delete a conversation's analytics rows with its events, and
leave every other conversation's rows as they were; a projection batch racing a deletion
never leaves rows of the deleted conversation behind.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from eventstore.analytics.runner import AnalyticsRunner, open_target
from eventstore.analytics.writer import project_batch
from eventstore.privacy.config import RetentionSettings
from eventstore.privacy.erasure import forget
from eventstore.privacy.retention import apply_retention
from eventstore.stores.sql.store import SQLTrackerStore
from tests.analytics.dataset import conversations
from tests.analytics.tables import dump, engine_of, project
from tests.servers.sql_fresh import FreshDatabase
from tests.ui.dataset import BASE, DAY


def without(tables: dict[str, list[tuple[Any, ...]]], *senders: str) -> dict[str, Any]:
    """The rows of every conversation but ``senders`` (sender_id is each row's first column)."""
    return {name: [r for r in rows if r[0] not in senders] for name, rows in tables.items()}


def senders_in(tables: dict[str, list[tuple[Any, ...]]]) -> set[str]:
    return {row[0] for rows in tables.values() for row in rows}


def test_forget_and_retention_delete_the_analytics_rows(fresh_database: FreshDatabase) -> None:
    url = fresh_database("sqlite")
    store = SQLTrackerStore.from_url(url)
    engine = engine_of(url)
    try:
        for sender_id, events in conversations().items():
            store.append(sender_id, events)
        project(store)
        before = dump(engine)
        assert senders_in(before) == {"alice", "bob", "carol", "dave", "erin"}

        forget(store, ["carol"], requested_by="test")
        assert dump(engine) == without(before, "carol")

        # day-1 conversations (alice, bob, dave) are idle for more than a day on day 3
        report = apply_retention(store, RetentionSettings(days=1), now=BASE + 2 * DAY)
        assert sorted(report.expired) == ["alice", "bob", "dave"]
        assert dump(engine) == without(before, "alice", "bob", "carol", "dave")

        assert project(store).events == 0  # nothing deleted comes back
        assert senders_in(dump(engine)) == {"erin"}
    finally:
        engine.dispose()
        store.close()


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_batch_racing_a_deletion_leaves_no_rows_of_it(
    kind: str, fresh_database: FreshDatabase
) -> None:
    url = fresh_database("mysql" if kind == "mariadb" else kind)
    store = SQLTrackerStore.from_url(url)
    engine = engine_of(url)
    target = open_target(store, None)
    runner = AnalyticsRunner(store, target)
    try:
        for sender_id in ("alice", "bob"):
            store.append(sender_id, conversations()[sender_id])
        batch = [e for b in store.subscribe(follow=False) for e in b.events]

        # the deletion starts while the batch is being written: it waits for the batch's
        # transaction and then deletes its rows too
        with runner.transaction() as conn:
            assert project_batch(conn, batch, same_database=True) == len(batch)
            erasing = threading.Thread(
                target=forget, args=(store, ["alice"]), kwargs={"requested_by": "t"}
            )
            erasing.start()
            erasing.join(1.0)  # gives a deletion that did not wait the time to finish first
        erasing.join()
        assert senders_in(dump(engine)) == {"bob"}

        # a batch read before a deletion and written after it: the events are gone, skipped
        store.append("carol", conversations()["carol"])
        stale = [
            e for b in store.subscribe(after=batch[-1].position, follow=False) for e in b.events
        ]
        stale = [e for e in stale if e.sender_id == "carol"]
        forget(store, ["carol"], requested_by="test")
        with runner.transaction() as conn:
            assert project_batch(conn, stale, same_database=True) == 0
        assert senders_in(dump(engine)) == {"bob"}
    finally:
        target.close()
        engine.dispose()
        store.close()
