"""The store contract on DynamoDB: the moto endpoint over HTTP, a fresh table per class."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventstore.stores.dynamo import DynamoTrackerStore
from eventstore.testing import TrackerStoreContract
from tests.servers.dynamo import DynamoServer, unique_table


@pytest.fixture(scope="class")
def contract_table() -> str:
    return unique_table("contract")


class TestDynamoStore(TrackerStoreContract):
    @pytest.fixture
    def store(
        self, dynamo_server: DynamoServer, contract_table: str
    ) -> Iterator[DynamoTrackerStore]:
        store = DynamoTrackerStore.from_config(dynamo_server.store_config(contract_table))
        assert isinstance(store, DynamoTrackerStore)
        with store:
            yield store
