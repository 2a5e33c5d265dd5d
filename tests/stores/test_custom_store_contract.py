"""The store contract on a custom store loaded by dotted path, as operators configure one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventstore import TrackerStore, create_tracker_store
from eventstore.testing import (
    OutboxContract,
    PositionsContract,
    QueryContract,
    SnapshotContract,
    TrackerStoreContract,
)


class TestCustomStoreByPath(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    @pytest.fixture
    def store(self) -> Iterator[TrackerStore]:
        with create_tracker_store({"type": "tests.stores.custom_store.ListTrackerStore"}) as store:
            yield store
