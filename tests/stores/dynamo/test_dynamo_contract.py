"""The store contract on DynamoDB: the moto endpoint over HTTP, a fresh table per test.

A table per test, dropped after it: moto answers a Query by walking every item of the
table, so a table shared by the class makes each test slower than the one before."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress

import pytest

from eventstore.stores.dynamo.store import DynamoTrackerStore
from eventstore.testing import (
    OutboxContract,
    QueryContract,
    SnapshotContract,
    TrackerStoreContract,
)
from tests.servers.dynamo import DynamoServer, unique_table


class TestDynamoStore(TrackerStoreContract, QueryContract, OutboxContract, SnapshotContract):
    snapshot_turns = 6  # ~40 events, a snapshot or two: moto takes ~50 ms a request

    @pytest.fixture
    def store(self, dynamo_server: DynamoServer) -> Iterator[DynamoTrackerStore]:
        table = unique_table("contract")
        store = DynamoTrackerStore.from_config(dynamo_server.store_config(table))
        assert isinstance(store, DynamoTrackerStore)
        with store:
            yield store
        with suppress(Exception):  # the test may never have created it
            dynamo_server.client().delete_table(TableName=table)
