"""Contract of backends with ``supports_outbox``: appends record each event in the outbox
(same atomic write) once a publisher asks for it; acknowledged events leave it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventstore.stores.base import StoredEvent, TrackerStore
from eventstore.testing.builders import new_id, session_start, turn


def _pending_of(store: TrackerStore, senders: set[str]) -> list[StoredEvent]:
    return [e for e in store.outbox_pending(10_000) if e.sender_id in senders]


class OutboxContract:
    """Mix into a ``TrackerStoreContract`` subclass whose store has ``supports_outbox``."""

    @pytest.fixture
    def outbox_store(self, store: TrackerStore) -> TrackerStore:
        """The store, with no publisher draining its outbox (override if ``store`` has one)."""
        return store

    @pytest.fixture
    def recording(self, outbox_store: TrackerStore) -> Iterator[TrackerStore]:
        """The store with outbox recording on (what ``relay.attach`` turns on)."""
        outbox_store.uses_outbox = True
        try:
            yield outbox_store
        finally:
            outbox_store.uses_outbox = False

    def test_appended_events_wait_in_the_outbox_in_seq_order(self, recording: TrackerStore) -> None:
        a, b = new_id(), new_id()
        recording.append(a, [*session_start(), *turn(1)])
        recording.append(b, turn(1))
        recording.append(a, turn(2))
        pending = _pending_of(recording, {a, b})
        assert [e.seq for e in pending if e.sender_id == a] == list(range(1, 12))
        assert [e.seq for e in pending if e.sender_id == b] == [1, 2, 3, 4]
        assert pending[0].data == recording.read(pending[0].sender_id)[pending[0].seq - 1]
        recording.outbox_ack(pending)  # leave no work for a publisher of this database
        assert _pending_of(recording, {a, b}) == []

    def test_acknowledged_events_leave_the_outbox(self, recording: TrackerStore) -> None:
        a = new_id()
        recording.append(a, turn(1))
        pending = _pending_of(recording, {a})
        recording.outbox_ack(pending[:2])
        assert [e.seq for e in _pending_of(recording, {a})] == [3, 4]
        recording.outbox_ack(pending)
        recording.outbox_ack(pending)  # acknowledging twice is harmless
        assert _pending_of(recording, {a}) == []
        assert recording.version(a) == 4  # the events themselves stay

    def test_without_a_publisher_nothing_is_recorded(self, outbox_store: TrackerStore) -> None:
        a = new_id()
        outbox_store.append(a, turn(1))
        assert _pending_of(outbox_store, {a}) == []
