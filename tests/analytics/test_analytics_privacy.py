"""Erasure reaches the analytics tables, in the store's database or another (docs/privacy.md).

``forget`` and retention delete a conversation's analytics rows with its events, and
leave every other conversation's rows as they were; a projection batch racing a deletion
never leaves rows of the deleted conversation behind.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventstore.analytics.runner import AnalyticsRunner, open_target
from eventstore.analytics.writer import project_batch
from eventstore.cli import main
from eventstore.endpoints import load_endpoints
from eventstore.errors import ConfigError
from eventstore.factory import create_from_endpoints
from eventstore.privacy.config import RedactionRule, RedactionSettings, RetentionSettings
from eventstore.privacy.erasure import forget
from eventstore.privacy.redaction import Redactor
from eventstore.privacy.retention import apply_retention
from eventstore.stores.sql.store import SQLTrackerStore
from tests.analytics.dataset import conversations
from tests.analytics.tables import dump, engine_of, project, projector
from tests.privacy.conversation import holds_secret, personal_events
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


def endpoints_with_analytics(tmp_path: Path, store: dict[str, Any], url: str) -> Path:
    """An endpoints.yml naming ``store`` and ``analytics: url:``."""
    path = tmp_path / "endpoints.yml"
    path.write_text(yaml.safe_dump({"tracker_store": store, "analytics": {"url": url}}))
    return path


@pytest.mark.parametrize("feed_backend", ["redis", "mongo", "sqlite"], indirect=True)
def test_erasure_reaches_analytics_tables_in_another_database(
    feed_backend: dict[str, Any], fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    to = fresh_database("postgresql")
    endpoints = endpoints_with_analytics(tmp_path, feed_backend, to)
    store = create_from_endpoints(load_endpoints(endpoints))
    engine = engine_of(to)
    try:
        for sender_id, events in conversations().items():
            store.append(sender_id, events)
        # analytics.url is where `eventstore analytics` writes when --to is not given
        assert main(["analytics", "--endpoints", str(endpoints)]) == 0
        before = dump(engine)
        assert senders_in(before) == {"alice", "bob", "carol", "dave", "erin"}

        assert main(["forget", "carol", "--endpoints", str(endpoints)]) == 0
        assert dump(engine) == without(before, "carol")

        report = apply_retention(store, RetentionSettings(days=1), now=BASE + 2 * DAY)
        assert sorted(report.expired) == ["alice", "bob", "dave"]
        assert dump(engine) == without(before, "alice", "bob", "carol", "dave")

        assert project(store, to).events == 0  # nothing deleted comes back
        assert senders_in(dump(engine)) == {"erin"}
    finally:
        engine.dispose()
        store.close()


def test_a_batch_racing_an_erasure_in_another_database_leaves_no_rows_of_it(
    redis_url: str, redis_prefix: str, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    to = fresh_database("postgresql")
    config = {"type": "redis", "url": redis_url, "key_prefix": redis_prefix}
    store = create_from_endpoints(load_endpoints(endpoints_with_analytics(tmp_path, config, to)))
    engine = engine_of(to)
    try:
        for sender_id in ("alice", "bob", "carol"):
            store.append(sender_id, conversations()[sender_id])
        with projector(store, to) as runner:
            runner.run()  # the tables and the checkpoint row exist from here on
            batch = [e for b in store.subscribe(follow=False) for e in b.events]
            runner.rebuild()

            # the erasure starts while a batch holds the checkpoint: it waits, then deletes
            with runner.transaction() as conn:
                runner._locked_position(conn)
                events = runner._still_stored(batch)
                assert project_batch(conn, events, same_database=False) == len(batch)
                erasing = threading.Thread(
                    target=forget, args=(store, ["alice"]), kwargs={"requested_by": "t"}
                )
                erasing.start()
                erasing.join(1.0)  # gives an erasure that did not wait the time to finish
            erasing.join()
            assert senders_in(dump(engine)) == {"bob", "carol"}

            # a batch read before an erasure and written after it skips the erased one
            runner.rebuild()
            forget(store, ["carol"], requested_by="test")
            with runner.transaction() as conn:
                runner._locked_position(conn)
                events = runner._still_stored(batch)
                assert {e.sender_id for e in events} == {"bob"}
                project_batch(conn, events, same_database=False)
            assert senders_in(dump(engine)) == {"bob"}
    finally:
        engine.dispose()
        store.close()


def test_an_unknown_analytics_key_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yml"
    path.write_text("tracker_store:\n  type: in_memory\nanalytics:\n  url: sqlite://\n  uri: x\n")
    with pytest.raises(ConfigError, match="uri"):
        create_from_endpoints(load_endpoints(path))


def test_retention_redact_reaches_analytics_tables_in_another_database(
    redis_url: str, redis_prefix: str, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    to = fresh_database("postgresql")
    config = {"type": "redis", "url": redis_url, "key_prefix": redis_prefix}
    store = create_from_endpoints(load_endpoints(endpoints_with_analytics(tmp_path, config, to)))
    engine = engine_of(to)
    rules = RedactionSettings(rules=[RedactionRule(detectors=["email", "phone", "credit_card"])])
    try:
        store.append("old", personal_events(BASE - 60 * DAY))
        store.append("fresh", personal_events(BASE))
        project(store, to)
        assert holds_secret(dump(engine))

        settings = RetentionSettings(days=30, action="redact")
        redactor = Redactor.from_settings(rules)
        report = apply_retention(store, settings, redactor=redactor, now=BASE + DAY)
        assert report.expired == ["old"]
        assert senders_in(dump(engine)) == {"fresh"}  # the old rows went with the old log

        project(store, to)  # the redacted log is projected again
        tables = dump(engine)
        assert senders_in(tables) == {"old", "fresh"}
        assert not holds_secret(without(tables, "fresh"))
    finally:
        engine.dispose()
        store.close()
