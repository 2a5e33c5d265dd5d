"""Contract of backends with ``has_positions``: a global, increasing position per event."""

from __future__ import annotations

import uuid

from eventstore.stores.base import EventQuery, TrackerStore
from eventstore.testing.builders import new_id, user


class PositionsContract:
    """Mix into a ``TrackerStoreContract`` subclass whose store has ``has_positions``."""

    def test_query_positions_resume(self, store: TrackerStore) -> None:
        a, b = new_id(), new_id()
        tag = uuid.uuid4().hex[:8]
        store.append(a, [user("1", intent=tag)])
        store.append(b, [user("2", intent=tag)])
        store.append(a, [user("3", intent=tag)])
        events = list(store.query(EventQuery(intent=tag)))
        positions = [e.position or 0 for e in events]
        assert [e.data["text"] for e in events] == ["1", "2", "3"]
        assert all(e.position is not None for e in events)
        assert positions == sorted(positions) and len(set(positions)) == 3
        rest = list(store.query(EventQuery(intent=tag, after_position=positions[0])))
        assert [e.data["text"] for e in rest] == ["2", "3"]

    def test_a_position_below_64_bits_filters_nothing(self, store: TrackerStore) -> None:
        a = new_id()
        store.append(a, [user("1"), user("2")])
        found = list(store.query(EventQuery(sender_id=a, after_position=-(2**80))))
        assert [e.seq for e in found] == [1, 2]
