"""Contract of backends with ``supports_snapshots``: snapshots are a cache, never the truth."""

from __future__ import annotations

from typing import Any

import pytest

from eventstore.stores.base import TrackerStore
from eventstore.testing.builders import action, bot, new_id, session_start, turn, user
from eventstore.tracker import Tracker


def _varied_turn(i: int) -> list[dict[str, Any]]:
    """A turn touching most of the state: slots, entities, a form, a rewind now and then."""
    events = [
        user(f"message {i}", intent="order", entities=[{"entity": "n", "value": i}]),
        {"event": "slot", "name": "counter", "value": i},
        action("order_form"),
        {"event": "active_loop", "name": "order_form" if i % 3 else None},
        bot(f"reply {i}"),
        action("action_listen"),
    ]
    if i % 7 == 3:
        events += [user("oops", intent="nlu_fallback"), {"event": "rewind"}]
    return events


def _full_replay(store: TrackerStore, sender_id: str) -> Tracker:
    """The current session replayed from the log alone (what a snapshot must equal)."""
    events = store.read(sender_id)
    starts = [i for i, e in enumerate(events) if e["event"] == "session_started"]
    start = starts[-1] if starts else 0
    return Tracker.from_events(sender_id, events[start:], version=len(events))


class SnapshotContract:
    """Snapshots on a backend that keeps them: a cache of the log, never the truth.

    Mix into a ``TrackerStoreContract`` subclass whose store has ``supports_snapshots``.
    Each test turns the tracker cache off, so every ``retrieve`` is what a process that
    never saw the conversation does.
    """

    #: Bot turns per conversation (a few snapshots each); a backend whose test server is
    #: slow (moto) may use fewer, as long as a snapshot is written more than once.
    snapshot_turns: int = 30

    def _conversation(self, store: TrackerStore) -> str:
        """A conversation built by bot turns (retrieve, update, save), snapshots flushed."""
        turns = self.snapshot_turns
        store._trackers.size = 0
        store.snapshot_every = 20
        sid = new_id("snap")
        store.append(sid, [action("action_listen"), *session_start()])
        for i in range(turns):
            tracker = store.retrieve(sid)
            assert tracker is not None
            tracker.update_with_events(_varied_turn(i))
            store.save(tracker)
        assert store.flush_snapshots()
        return sid

    def test_retrieve_from_the_snapshot_equals_a_full_replay(self, store: TrackerStore) -> None:
        sid = self._conversation(store)
        assert store._read_snapshot(sid) is not None
        tracker = store.retrieve(sid)
        assert tracker is not None
        assert tracker._head is not None  # built from the snapshot, events not read yet
        replay = _full_replay(store, sid)
        assert tracker.version == replay.version == store.version(sid)
        assert tracker.current_state("NONE") == replay.current_state("NONE")
        assert tracker.applied_events() == replay.applied_events()
        assert tracker.current_state("ALL") == replay.current_state("ALL")
        assert tracker.events == store.read(sid, 2)  # from the session_started event on

    def test_turns_after_a_snapshot_save_and_stay_consistent(self, store: TrackerStore) -> None:
        sid = self._conversation(store)
        turns = self.snapshot_turns
        for i in range(turns, turns + min(turns, 10)):
            tracker = store.retrieve(sid)
            assert tracker is not None
            tracker.update_with_events(_varied_turn(i))
            store.save(tracker)
        assert store.flush_snapshots()
        tracker = store.retrieve(sid)
        assert tracker is not None
        assert tracker.current_state("ALL") == _full_replay(store, sid).current_state("ALL")

    def test_a_new_session_after_the_snapshot_starts_from_it(self, store: TrackerStore) -> None:
        sid = self._conversation(store)
        store.append(sid, [*session_start(), user("hello again")])
        tracker = store.retrieve(sid)
        assert tracker is not None
        assert [e["event"] for e in tracker.events] == ["session_started", "action", "user"]
        assert tracker.current_state("ALL") == _full_replay(store, sid).current_state("ALL")

    @pytest.mark.parametrize(
        "corrupt",
        [
            "not json {",
            "[1, 2]",
            '{"format": 1}',
            "format-0",  # a real snapshot of an older replay format
            "bad-slots",  # a real snapshot with a field of the wrong type
        ],
    )
    def test_a_corrupt_or_older_snapshot_is_ignored_and_rebuilt(
        self, store: TrackerStore, corrupt: str
    ) -> None:
        import json

        sid = self._conversation(store)
        good = store._read_snapshot(sid)
        assert good is not None
        state = json.loads(good)
        if corrupt == "format-0":
            corrupt = json.dumps({**state, "format": 0, "slots": {"counter": "poison"}})
        elif corrupt == "bad-slots":
            corrupt = json.dumps({**state, "slots": ["poison"]})
        store._write_snapshot(sid, state["version"], corrupt)
        tracker = store.retrieve(sid)
        assert tracker is not None
        assert tracker.current_state("ALL") == _full_replay(store, sid).current_state("ALL")
        last = self.snapshot_turns - 1
        assert tracker.get_slot("counter") == last
        assert store.flush_snapshots()  # the retrieve queued a fresh snapshot in its place
        rebuilt = json.loads(store._read_snapshot(sid) or "{}")
        assert rebuilt.get("format") == state["format"] and rebuilt["slots"]["counter"] == last

    def test_a_snapshot_that_no_longer_matches_the_log_is_ignored(
        self, store: TrackerStore
    ) -> None:
        sid = self._conversation(store)
        old = store._read_snapshot(sid)
        assert old is not None
        # the log is replaced by another process; a stale snapshot written back by a slow
        # writer must not leak the old conversation's state into the new one
        store.replace(sid, [*session_start(), *turn(1), *turn(2)] * 30)
        store._write_snapshot(sid, store.version(sid), str(old))
        tracker = store.retrieve(sid)
        assert tracker is not None
        assert tracker.current_state("ALL") == _full_replay(store, sid).current_state("ALL")
        assert tracker.get_slot("counter") is None

    def test_delete_removes_the_snapshot(self, store: TrackerStore) -> None:
        sid = self._conversation(store)
        assert store._read_snapshot(sid) is not None
        store.delete(sid)
        assert store._read_snapshot(sid) is None
        store.append(sid, turn(1))
        tracker = store.retrieve(sid)
        assert tracker is not None and tracker.version == 4
        assert tracker.get_slot("counter") is None

    def test_replace_removes_the_snapshot(self, store: TrackerStore) -> None:
        sid = self._conversation(store)
        assert store._read_snapshot(sid) is not None
        store.replace(sid, [*session_start(), *turn(1)])
        assert store._read_snapshot(sid) is None
        tracker = store.retrieve(sid)
        assert tracker is not None
        assert tracker.current_state("ALL") == _full_replay(store, sid).current_state("ALL")

    def test_no_snapshot_is_written_for_a_deleted_conversation(self, store: TrackerStore) -> None:
        sid = self._conversation(store)
        data = store._read_snapshot(sid)
        assert data is not None
        store.delete(sid)
        store._write_snapshot(sid, 10, data)  # a writer that was late
        assert store._read_snapshot(sid) is None

    def test_snapshots_off_reads_the_log_alone(self, store: TrackerStore) -> None:
        sid = self._conversation(store)
        store.snapshot_every = 0
        tracker = store.retrieve(sid)
        assert tracker is not None and tracker._head is None
        assert tracker.current_state("ALL") == _full_replay(store, sid).current_state("ALL")
