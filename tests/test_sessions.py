"""Conversation policy: a new conversation gets a session start, and a lost race to start
it appends after the winner (``eventstore.sessions.append_turn``)."""

from __future__ import annotations

import pytest

from eventstore.errors import ConcurrencyError, EventValidationError
from eventstore.sessions import append_turn, starts_session
from eventstore.stores.memory import InMemoryTrackerStore
from eventstore.testing import new_id, session_start, user


def kinds(store: InMemoryTrackerStore, sid: str) -> list[str]:
    return [f"{e['event']}:{e.get('name') or ''}" for e in store.read(sid)]


START = ["action:action_session_start", "session_started:", "action:action_listen"]


def test_a_new_conversation_gets_a_session_start_then_the_turn() -> None:
    store, sid = InMemoryTrackerStore(), new_id()
    appended = append_turn(store, sid, [user("hi")])
    assert kinds(store, sid) == [*START, "user:"]
    assert (appended.version, appended.stored) == (4, 4)
    again = append_turn(store, sid, [user("again")])  # not new any more: no prefix
    assert (again.version, again.stored) == (5, 1)


def test_no_prefix_when_the_turn_starts_the_session_or_the_caller_says_so() -> None:
    store = InMemoryTrackerStore()
    own = new_id()
    turn = [*session_start(), user("hi")]
    assert starts_session(turn)
    assert append_turn(store, own, turn).stored == len(turn)
    exact = new_id()
    assert append_turn(store, exact, [user("hi")], start_session=False).stored == 1
    assert kinds(store, exact) == ["user:"]


class RacedStore(InMemoryTrackerStore):
    """The real in-memory store; another writer starts the conversation right after each
    of the first ``races`` version reads, as a second process would."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def version(self, sender_id: str) -> int:
        current = super().version(sender_id)
        if self.races > 0:
            self.races -= 1
            self.append(sender_id, [*session_start(), user("other writer")])
        return current


def test_a_lost_race_to_start_the_conversation_appends_after_the_winner() -> None:
    store, sid = RacedStore(races=1), new_id()
    appended = append_turn(store, sid, [user("mine")])
    # the winner's start, its turn, then ours: one session start, no duplicate
    assert kinds(store, sid) == [*START, "user:", "user:"]
    assert store.read(sid)[-1]["text"] == "mine"
    assert appended.stored == 1 and appended.version == 5


def test_an_explicit_expected_version_is_never_retried() -> None:
    store, sid = InMemoryTrackerStore(), new_id()
    append_turn(store, sid, [user("first")])
    with pytest.raises(ConcurrencyError):
        append_turn(store, sid, [user("stale")], expected_version=0)
    assert len(store.read(sid)) == 4


def test_a_bad_event_is_named_by_its_place_in_the_turn() -> None:
    store, sid = InMemoryTrackerStore(), new_id()
    with pytest.raises(EventValidationError) as info:
        append_turn(store, sid, [user("ok"), {"event": "no-such-event"}])
    assert info.value.index == 1
    assert store.version(sid) == 0
