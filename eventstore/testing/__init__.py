"""The store contract suite, shipped so that any backend (a custom one too) can run it.

One contract per capability. Every backend runs ``TrackerStoreContract`` and
``QueryContract``, plus the contract of each capability flag its class claims
(``CAPABILITIES``); ``TrackerStoreContract`` checks that the two agree::

    class TestMyStore(TrackerStoreContract, QueryContract, PositionsContract):
        @pytest.fixture
        def store(self):
            s = MyStore(...)
            yield s
            s.close()

Tests use fresh random conversation ids, so the store may hold other data. Event builders
(``new_id``, ``user``, ``action``, ``turn``, ...) come with it.
"""

from __future__ import annotations

from eventstore.testing.builders import action, bot, new_id, seqs, session_start, turn, user
from eventstore.testing.outbox import OutboxContract
from eventstore.testing.positions import PositionsContract
from eventstore.testing.query import QueryContract
from eventstore.testing.snapshots import SnapshotContract
from eventstore.testing.stores import TrackerStoreContract

#: Capability flag of ``TrackerStore`` -> the contract a backend claiming it must pass.
CAPABILITIES: dict[str, type] = {
    "has_positions": PositionsContract,
    "supports_outbox": OutboxContract,
    "supports_snapshots": SnapshotContract,
}

__all__ = [
    "CAPABILITIES",
    "OutboxContract",
    "PositionsContract",
    "QueryContract",
    "SnapshotContract",
    "TrackerStoreContract",
    "action",
    "bot",
    "new_id",
    "seqs",
    "session_start",
    "turn",
    "user",
]
