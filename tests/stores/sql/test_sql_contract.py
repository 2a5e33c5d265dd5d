"""The store contract on SQLite (a temporary file), PostgreSQL and MariaDB, real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.testing import (
    OutboxContract,
    PositionsContract,
    QueryContract,
    SnapshotContract,
    TrackerStoreContract,
)


class TestSQLiteStore(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLTrackerStore]:
        store = SQLTrackerStore.from_url(f"sqlite:///{tmp_path / 'events.db'}")
        yield store
        store.close()


class TestPostgreSQLStore(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    @pytest.fixture
    def store(self, postgres_url: str) -> Iterator[SQLTrackerStore]:
        store = SQLTrackerStore.from_url(postgres_url)
        yield store
        store.close()


class TestMariaDBStore(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    @pytest.fixture
    def store(self, mysql_url: str) -> Iterator[SQLTrackerStore]:
        store = SQLTrackerStore.from_url(mysql_url)
        yield store
        store.close()


class TestSQLiteMemoryStore(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    """``db: ":memory:"``: one private database shared by every thread of the store."""

    @pytest.fixture
    def store(self) -> Iterator[SQLTrackerStore]:
        store = SQLTrackerStore.from_url("sqlite://")
        yield store
        store.close()
