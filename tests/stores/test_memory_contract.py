"""The store contract on the in-memory default store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventstore.stores.memory import InMemoryTrackerStore
from eventstore.testing import (
    OutboxContract,
    PositionsContract,
    QueryContract,
    SnapshotContract,
    TrackerStoreContract,
)


class TestInMemoryStore(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    @pytest.fixture
    def store(self) -> Iterator[InMemoryTrackerStore]:
        with InMemoryTrackerStore() as store:
            yield store
