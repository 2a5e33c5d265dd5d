"""The store contract on MongoDB (a SecantusDB server over a socket), one collection each."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from eventstore.stores.mongo.store import MongoTrackerStore
from eventstore.testing import (
    OutboxContract,
    PositionsContract,
    QueryContract,
    SnapshotContract,
    TrackerStoreContract,
)
from tests.servers.mongo import MONGO_TEST_DB


class TestMongoStore(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    collection = f"contract_{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def store(self, mongo_url: str) -> Iterator[MongoTrackerStore]:
        store = MongoTrackerStore.from_config(
            {"url": mongo_url, "db": MONGO_TEST_DB, "collection": self.collection}
        )
        assert isinstance(store, MongoTrackerStore)
        with store:
            yield store


class TestMongoStoreWithoutQueryIndexes(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    """``query_indexes: false`` changes cost, never results."""

    collection = f"contract_lean_{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def store(self, mongo_url: str) -> Iterator[MongoTrackerStore]:
        settings = {"url": mongo_url, "db": MONGO_TEST_DB, "collection": self.collection}
        store = MongoTrackerStore.from_config(settings | {"query_indexes": False})
        assert isinstance(store, MongoTrackerStore)
        with store:
            yield store
