"""The store contract every backend passes (a custom one too): appends, versions, trackers,
replace, keys, delete, queries, bad input. Tests use fresh random conversation ids, so the
store may hold other data.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from typing import Any

import pytest

from eventstore.errors import ConcurrencyError, EventValidationError
from eventstore.stores.base import EventQuery, TrackerStore
from eventstore.testing.builders import action, bot, new_id, seqs, session_start, turn, user
from eventstore.testing.pro import ProEventsContract
from eventstore.tracker import Tracker


class TrackerStoreContract(ProEventsContract):
    """Behaviour every tracker store must show. Provide a ``store`` fixture."""

    #: Threads racing on one conversation in the concurrency tests.
    writers = 8
    appends_per_writer = 5

    @pytest.fixture
    def store(self) -> TrackerStore:
        raise NotImplementedError("provide a 'store' fixture")

    # -- append and read -----------------------------------------------------------
    def test_append_returns_new_version_and_reads_back(self, store: TrackerStore) -> None:
        sid = new_id()
        assert store.version(sid) == 0
        assert store.append(sid, turn(1)) == 4
        assert store.append(sid, [action("action_listen")]) == 5
        events = store.read(sid)
        assert [e["event"] for e in events] == ["user", "action", "bot", "action", "action"]
        assert store.read(sid, after=3) == events[3:]
        assert seqs(store, sid) == [1, 2, 3, 4, 5]
        assert store.version(sid) == 5

    def test_events_round_trip_every_key(self, store: TrackerStore) -> None:
        sid = new_id()
        event = user('grüße 👋 "quoted" \\ \u2028', ts=1700000001.123456789)
        event["metadata"] = {"model_id": "m", "nested": {"list": [1, 2.5, None, True]}}
        event["custom_extra"] = {"kept": "yes"}
        odd = {"event": "cancel_reminder", "name": "r1", "intent": "remind", "timestamp": 1.5}
        store.append(sid, [event, odd])
        assert store.read(sid) == [event, odd]

    def test_timestamps_keep_full_double_precision(self, store: TrackerStore) -> None:
        sid = new_id()
        stamps = [1700000001.123456789, 1700000001.1234567, 1e-7, 2**40 + 0.5]
        store.append(sid, [action("a", ts=t) for t in stamps])
        assert [e["timestamp"] for e in store.read(sid)] == stamps
        assert [e.timestamp for e in store.query(EventQuery(sender_id=sid))] == stamps

    def test_missing_timestamp_is_set_to_now(self, store: TrackerStore) -> None:
        sid = new_id()
        before = time.time()
        store.append(sid, [{"event": "pause"}])
        stamp = store.read(sid)[0]["timestamp"]
        assert before <= stamp <= time.time() + 1

    def test_multi_event_append_is_all_or_nothing(self, store: TrackerStore) -> None:
        sid = new_id()
        store.append(sid, turn(1))
        with pytest.raises(EventValidationError) as info:
            store.append(sid, [action("ok"), action("ok2"), {"event": "slot", "value": 1}])
        assert info.value.index == 2
        assert info.value.field == "name"
        assert store.version(sid) == 4
        assert len(store.read(sid)) == 4

    # -- optimistic concurrency ----------------------------------------------------
    def test_stale_expected_version_raises_and_stores_nothing(self, store: TrackerStore) -> None:
        sid = new_id()
        assert store.append(sid, turn(1), expected_version=0) == 4
        with pytest.raises(ConcurrencyError) as info:
            store.append(sid, turn(2), expected_version=2)
        assert info.value.expected == 2
        with pytest.raises(ConcurrencyError):
            store.append(sid, turn(2), expected_version=0)
        assert store.version(sid) == 4
        assert store.append(sid, turn(2), expected_version=4) == 8
        assert seqs(store, sid) == list(range(1, 9))

    def test_expected_version_on_missing_conversation(self, store: TrackerStore) -> None:
        sid = new_id()
        with pytest.raises(ConcurrencyError):
            store.append(sid, [action("a")], expected_version=3)
        assert not store.exists(sid)
        assert sid not in set(store.keys())

    def test_threads_with_retries_leave_no_gap_and_no_duplicate(self, store: TrackerStore) -> None:
        sid = new_id()
        conflicts: list[int] = []
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for i in range(self.appends_per_writer):
                    while True:
                        version = store.version(sid)
                        try:
                            store.append(sid, [action(f"w{n}-{i}")], expected_version=version)
                            break
                        except ConcurrencyError:
                            conflicts.append(n)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(self.writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        total = self.writers * self.appends_per_writer
        assert seqs(store, sid) == list(range(1, total + 1))
        names = sorted(e["name"] for e in store.read(sid))
        expected = sorted(
            f"w{n}-{i}" for n in range(self.writers) for i in range(self.appends_per_writer)
        )
        assert names == expected

    def test_unversioned_appends_from_threads_all_land(self, store: TrackerStore) -> None:
        sid = new_id()

        def writer(n: int) -> None:
            for i in range(self.appends_per_writer):
                store.append(sid, [action(f"w{n}-{i}"), action(f"w{n}-{i}-b")])

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(self.writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = self.writers * self.appends_per_writer * 2
        assert seqs(store, sid) == list(range(1, total + 1))
        events = store.read(sid)
        # each append's two events stay adjacent
        for first, second in zip(events[::2], events[1::2], strict=True):
            assert second["name"] == first["name"] + "-b"

    # -- trackers ------------------------------------------------------------------
    def test_retrieve_returns_current_session_and_full_tracker_all(
        self, store: TrackerStore
    ) -> None:
        sid = new_id()
        for s in range(3):
            store.append(sid, session_start() + turn(s))
        full = store.retrieve_full_tracker(sid)
        assert full is not None
        assert len(full.events) == 21
        assert full.version == 21
        current = store.retrieve(sid)
        assert current is not None
        assert [e["event"] for e in current.events] == [
            "session_started",
            "action",
            "user",
            "action",
            "bot",
            "action",
        ]
        assert current.events[2]["text"] == "message 2"
        assert current.version == 21
        assert store.retrieve(new_id()) is None
        assert store.retrieve_full_tracker(new_id()) is None

    def test_save_appends_only_unsaved_events(self, store: TrackerStore) -> None:
        sid = new_id()
        store.append(sid, session_start() + turn(0))
        tracker = store.retrieve(sid)
        assert tracker is not None
        tracker.update_with_events(turn(1))
        assert store.save(tracker) == 11
        assert tracker.version == 11
        assert tracker.unsaved_events == []
        assert store.save(tracker) == 11  # nothing new: nothing written
        assert len(store.read(sid)) == 11
        assert [e.get("text") for e in store.read(sid)[-4:]] == ["message 1", None, "reply 1", None]

    def test_save_of_a_stale_tracker_conflicts(self, store: TrackerStore) -> None:
        sid = new_id()
        store.append(sid, turn(0))
        first = store.retrieve(sid)
        second = store.retrieve(sid)
        assert first is not None and second is not None
        first.update(action("from_first"))
        second.update(action("from_second"))
        store.save(first)
        with pytest.raises(ConcurrencyError):
            store.save(second)
        assert [e["name"] for e in store.read(sid)[4:]] == ["from_first"]

    def test_get_or_create_tracker(self, store: TrackerStore) -> None:
        sid = new_id()
        tracker = store.get_or_create_tracker(sid)
        assert [e["name"] for e in tracker.events] == ["action_listen"]
        assert store.version(sid) == 1
        again = store.get_or_create_tracker(sid)
        assert again.version == 1
        assert len(store.read(sid)) == 1

    def test_fresh_tracker_from_new_conversation_saves(self, store: TrackerStore) -> None:
        sid = new_id()
        tracker = Tracker(sid)
        tracker.update_with_events(turn(0))
        assert store.save(tracker) == 4
        assert store.read(sid) == tracker.events

    # -- the tracker cache (a loaded tracker plus the log's tail) ----------------------
    def test_retrieve_sees_events_appended_after_it_was_cached(self, store: TrackerStore) -> None:
        sid = new_id()
        store.append(sid, turn(0))
        first = store.retrieve(sid)
        assert first is not None
        first.update(action("unsaved, never stored"))
        store.append(sid, turn(1))  # another writer
        again = store.retrieve(sid)
        assert again is not None
        assert again.version == 8 and len(again.events) == 8
        assert again.events == store.read(sid)
        assert again.unsaved_events == []

    def test_retrieve_after_a_new_session_in_the_tail(self, store: TrackerStore) -> None:
        sid = new_id()
        store.append(sid, session_start() + turn(0))
        assert store.retrieve(sid) is not None
        store.append(sid, session_start() + turn(1))
        current = store.retrieve(sid)
        assert current is not None
        assert current.events[0]["event"] == "session_started"
        assert len(current.events) == 6 and current.version == 14

    def test_retrieve_after_delete_and_recreate(self, store: TrackerStore) -> None:
        sid = new_id()
        store.append(sid, turn(0) + turn(1))
        assert store.retrieve(sid) is not None
        store.delete(sid)
        assert store.retrieve(sid) is None
        store.append(sid, turn(0) + turn(1) + turn(2))
        recreated = store.retrieve(sid)
        assert recreated is not None
        assert recreated.events == store.read(sid) and recreated.version == 12

    def test_saved_tracker_then_retrieve_is_consistent(self, store: TrackerStore) -> None:
        sid = new_id()
        tracker = store.get_or_create_tracker(sid)
        for i in range(5):
            tracker.update_with_events(turn(i))
            store.save(tracker)
            tracker = store.retrieve(sid)  # type: ignore[assignment]
            assert tracker is not None
            assert tracker.events == store.read(sid)
        assert tracker.version == 21

    # -- replace (HTTP PUT) ----------------------------------------------------------
    def test_replace_swaps_the_whole_log(self, store: TrackerStore) -> None:
        sid = new_id()
        store.append(sid, session_start() + turn(0) + session_start() + turn(1))
        fresh = [*turn(7), *session_start(), user("after the new session")]
        assert store.replace(sid, fresh, expected_version=14) == 8
        assert store.read(sid) == [
            {**e, "timestamp": got["timestamp"]}
            for e, got in zip(fresh, store.read(sid), strict=True)
        ]
        assert seqs(store, sid) == list(range(1, 9))
        current = store.retrieve(sid)
        assert current is not None and current.version == 8
        assert [e["event"] for e in current.events] == ["session_started", "action", "user"]
        assert store.append(sid, [action("next")], expected_version=8) == 9

    def test_replace_with_a_stale_version_changes_nothing(self, store: TrackerStore) -> None:
        sid = new_id()
        store.append(sid, turn(0))
        before = store.read(sid)
        with pytest.raises(ConcurrencyError):
            store.replace(sid, turn(1), expected_version=3)
        with pytest.raises(EventValidationError):
            store.replace(sid, [action("ok"), {"event": "bogus"}], expected_version=4)
        assert store.read(sid) == before

    def test_replace_with_nothing_empties_the_conversation(self, store: TrackerStore) -> None:
        sid = new_id()
        store.append(sid, turn(0))
        assert store.replace(sid, [], expected_version=4) == 0
        assert store.read(sid) == []
        assert not store.exists(sid)

    def test_replace_is_atomic_for_readers(self, store: TrackerStore) -> None:
        sid = new_id()
        old = [action(f"old-{i}") for i in range(30)]
        new = [action(f"new-{i}") for i in range(30)]
        store.append(sid, old)
        seen: list[list[str]] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                seen.append([e["name"] for e in store.read(sid)])

        thread = threading.Thread(target=reader)
        thread.start()
        version = 30
        for round_ in range(6):
            batch = new if round_ % 2 == 0 else old
            version = store.replace(sid, batch, expected_version=version)
        stop.set()
        thread.join()
        whole = ({e["name"] for e in old}, {e["name"] for e in new})
        for names in seen:  # a reader sees one whole log or the other, never a mix or a part
            assert len(names) == 30 and set(names) in whole, names[:5]

    # -- keys, exists, delete ------------------------------------------------------
    def test_keys_exists_and_delete(self, store: TrackerStore) -> None:
        a, b = new_id(), new_id()
        store.append(a, turn(0))
        store.append(b, turn(0) + turn(1))
        keys = set(store.keys())
        assert {a, b} <= keys
        assert store.exists(a) and store.exists(b)
        assert store.delete(b) == 8
        assert not store.exists(b)
        assert b not in set(store.keys())
        assert store.read(b) == []
        assert store.retrieve(b) is None
        assert store.delete(b) == 0
        assert store.append(b, [action("again")]) == 1  # a deleted conversation restarts at 1
        assert store.read(a) != []

    # -- query ---------------------------------------------------------------------
    def test_a_nan_time_bound_is_refused(self, store: TrackerStore) -> None:
        """NaN bounds no time: one answer on every backend (refused), never all or none."""
        store.append(new_id(), [user("x", ts=100.0)])
        with pytest.raises(EventValidationError, match="since is NaN"):
            list(store.query(EventQuery(since=math.nan)))
        with pytest.raises(EventValidationError, match="until is NaN"):
            list(store.query(EventQuery(until=math.nan)))

    def test_query_filters(self, store: TrackerStore) -> None:
        a, b = new_id(), new_id()
        tag = uuid.uuid4().hex[:8]
        store.append(a, [user("x", intent=f"buy_{tag}", ts=100.0), action(f"act_{tag}", ts=200.0)])
        store.append(b, [user("y", intent=f"buy_{tag}", ts=300.0), bot("z")])
        store.append(a, [user("w", intent=f"sell_{tag}", ts=400.0)])

        by_intent = list(store.query(EventQuery(intent=f"buy_{tag}")))
        assert [(e.sender_id, e.seq) for e in by_intent] == [(a, 1), (b, 1)]
        assert all(e.type_name == "user" for e in by_intent)

        by_action = list(store.query(EventQuery(action=f"act_{tag}")))
        assert [(e.sender_id, e.seq) for e in by_action] == [(a, 2)]

        of_a = list(store.query(EventQuery(sender_id=a)))
        assert [e.seq for e in of_a] == [1, 2, 3]
        assert [e.data["timestamp"] for e in of_a] == [100.0, 200.0, 400.0]

        typed = list(store.query(EventQuery(sender_id=a, type_name="user")))
        assert [e.seq for e in typed] == [1, 3]

        window = list(store.query(EventQuery(sender_id=a, since=150.0, until=400.0)))
        assert [e.seq for e in window] == [2, 3]

        limited = list(store.query(EventQuery(sender_id=a, limit=2)))
        assert [e.seq for e in limited] == [1, 2]

        message = of_a[0].as_message()
        assert message["sender_id"] == a and message["seq"] == 1 and message["event"] == "user"

    def test_positions_follow_the_has_positions_flag(self, store: TrackerStore) -> None:
        """A backend without positions says so and invents none; one with them fills each."""
        a = new_id()
        store.append(a, [user("1"), user("2")])
        events = list(store.query(EventQuery(sender_id=a)))
        assert [e.position is not None for e in events] == [store.has_positions] * 2

    def test_capability_contracts_match_the_flags(self, store: TrackerStore) -> None:
        """This test class mixes in exactly the contracts the store's flags claim, and the
        query contract every backend runs."""
        from eventstore.testing import CAPABILITIES
        from eventstore.testing.query import QueryContract

        assert isinstance(self, QueryContract), "mix QueryContract in: every backend runs it"

        claimed = {flag for flag in CAPABILITIES if getattr(type(store), flag)}
        mixed = {flag for flag, contract in CAPABILITIES.items() if isinstance(self, contract)}
        assert mixed == claimed

    # -- bad input -----------------------------------------------------------------
    @pytest.mark.parametrize(
        ("events", "field"),
        [
            ([{"event": "no_such_type"}], "event"),
            ([{"text": "no type"}], "event"),
            ([{"event": "slot", "name": 5, "value": 1}], "name"),
            ([{"event": "action", "name": "a", "confidence": "high"}], "confidence"),
            ([{"event": "user", "text": "hi", "timestamp": "yesterday"}], "timestamp"),
            (["not a dict"], None),
            ([{"event": "bot", "text": "x" * (10 * 1024 * 1024)}], "text"),
        ],
    )
    def test_bad_events_are_refused_and_nothing_is_stored(
        self, store: TrackerStore, events: list[Any], field: str | None
    ) -> None:
        sid = new_id()
        store.append(sid, turn(0))
        with pytest.raises(EventValidationError) as info:
            store.append(sid, [action("fine"), *events])
        assert info.value.index == 1
        assert info.value.field == field
        assert store.version(sid) == 4
        assert len(store.read(sid)) == 4

    @pytest.mark.parametrize("sender_id", ["", "x" * 1000, None, 42, "a\x00b"])
    def test_bad_sender_ids_are_refused(self, store: TrackerStore, sender_id: Any) -> None:
        with pytest.raises(EventValidationError) as info:
            store.append(sender_id, [action("a")])
        assert info.value.field == "sender_id"

    def test_a_non_list_body_is_refused(self, store: TrackerStore) -> None:
        with pytest.raises(EventValidationError):
            store.append(new_id(), "user")  # type: ignore[arg-type]
        with pytest.raises(EventValidationError):
            store.append(new_id(), 17)  # type: ignore[arg-type]
