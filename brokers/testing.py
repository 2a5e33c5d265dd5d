"""The broker contract suite, shipped so that any broker (a custom one too) can run it.

Subclass ``EventBrokerContract`` in a test module and provide two fixtures:

- ``broker``: the broker under test, publishing to a destination no other test uses;
- ``consume``: a ``Consumer``, i.e. ``consume(count, timeout) -> list[dict]``, which reads
  the message bodies that reached that destination with the broker's plain client library
  (pika, kafka-python, a SQL select, reading the file), in delivery order, returning once
  ``count`` new messages arrived or ``timeout`` seconds passed. Each call continues where
  the previous one stopped.

::

    class TestMyBroker(EventBrokerContract):
        @pytest.fixture
        def broker(self): ...
        @pytest.fixture
        def consume(self): ...

The suite checks that every message arrives exactly once, in order per conversation,
with the documented body, both when published directly and through a store's relay.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import pytest

from brokers.base import EventBroker
from eventstore.relay import attach, relay_of
from eventstore.stores.base import StoredEvent, TrackerStore

#: seconds a consumer waits for messages that should arrive
ARRIVAL_TIMEOUT = 20.0
#: seconds a consumer waits to confirm that no further (duplicate) message arrives
QUIET_TIMEOUT = 0.5


class Consumer(Protocol):
    """Reads delivered bodies with the plain client: ``consume(count, timeout)``."""

    def __call__(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[dict[str, Any]]: ...


def new_sender(prefix: str = "s") -> str:
    """A conversation id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def stored_events(
    senders: Iterable[str], per_sender: int, *, start_position: int = 1
) -> list[StoredEvent]:
    """Events of several conversations, interleaved round-robin, with seqs and positions."""
    ids = list(senders)
    events = []
    position = start_position
    for seq in range(1, per_sender + 1):
        for sender in ids:
            data = {
                "event": "user" if seq % 2 else "bot",
                "timestamp": 1_700_000_000.0 + position / 1000,
                "text": f"message {seq} of {sender}",
                "metadata": {"n": seq},
            }
            events.append(StoredEvent(sender, seq, data, position))
            position += 1
    return events


def wait_until(condition: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {timeout} s: {what or condition}")
        time.sleep(0.005)


def assert_delivered_once_in_order(
    received: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> None:
    """Every expected body arrived exactly once, unchanged, in order per conversation."""
    keys = [(m.get("sender_id"), m.get("seq")) for m in received]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"delivered more than once: {sorted(duplicates)[:5]}"
    by_key = {(m["sender_id"], m["seq"]): m for m in expected}
    missing = [k for k in by_key if k not in set(keys)]
    assert not missing, f"{len(missing)} messages never arrived, e.g. {missing[:5]}"
    unexpected = [k for k in keys if k not in by_key]
    assert not unexpected, f"unexpected messages: {unexpected[:5]}"
    for message in received:
        assert message == by_key[(message["sender_id"], message["seq"])]
    per_sender: dict[str, list[int]] = {}
    for sender, seq in keys:
        per_sender.setdefault(str(sender), []).append(int(seq))  # type: ignore[arg-type]
    for sender, seqs in per_sender.items():
        assert seqs == sorted(seqs), f"conversation {sender} out of order: {seqs[:20]}"


class EventBrokerContract:
    """Behaviour every event broker must show; see the module docstring for fixtures."""

    @pytest.fixture
    def broker(self) -> EventBroker:
        raise NotImplementedError("provide a 'broker' fixture")

    @pytest.fixture
    def consume(self) -> Consumer:
        raise NotImplementedError("provide a 'consume' fixture")

    @pytest.fixture
    def store_factory(self) -> Callable[[EventBroker], TrackerStore]:
        """The store used by the end-to-end tests (override to use another backend)."""
        from eventstore.stores.memory import InMemoryTrackerStore

        def publishing(broker: EventBroker) -> TrackerStore:
            store = InMemoryTrackerStore()
            attach(store, broker)
            return store

        return publishing

    def test_one_message_arrives_with_the_documented_body(
        self, broker: EventBroker, consume: Consumer
    ) -> None:
        sender = new_sender()
        event = StoredEvent(
            sender, 1, {"event": "action", "name": "action_listen", "timestamp": 1.5}, 42
        )
        broker.publish(event.as_message())
        broker.flush(10)
        received = consume(1)
        assert received == [
            {
                "sender_id": sender,
                "event": "action",
                "name": "action_listen",
                "timestamp": 1.5,
                "seq": 1,
                "position": 42,
            }
        ]
        assert consume(1, QUIET_TIMEOUT) == []

    def test_publish_many_delivers_each_once_in_order_per_conversation(
        self, broker: EventBroker, consume: Consumer
    ) -> None:
        senders = [new_sender() for _ in range(4)]
        expected = [e.as_message() for e in stored_events(senders, 25)]
        broker.publish_many(expected[:40])
        broker.publish_many(expected[40:])
        broker.flush(10)
        received = consume(len(expected))
        assert_delivered_once_in_order(received, expected)
        assert consume(1, QUIET_TIMEOUT) == []

    def test_body_without_position_and_with_unicode(
        self, broker: EventBroker, consume: Consumer
    ) -> None:
        sender = new_sender("ü-ñ")
        data = {
            "event": "user",
            "text": "héllo 👋 — 你好",
            "parse_data": {"intent": {"name": "greet", "confidence": 0.93}, "entities": []},
            "metadata": {"nested": {"list": [1, 2.5, None, True]}},
            "timestamp": 1_700_000_000.123456,
        }
        message = StoredEvent(sender, 3, data).as_message()
        assert "position" not in message
        broker.publish(message)
        broker.flush(10)
        assert consume(1) == [message]

    def test_large_batch(self, broker: EventBroker, consume: Consumer) -> None:
        senders = [new_sender() for _ in range(10)]
        expected = [e.as_message() for e in stored_events(senders, 100)]
        broker.publish_many(expected)
        broker.flush(30)
        assert_delivered_once_in_order(consume(len(expected)), expected)

    def test_is_ready_and_close_twice(self, broker: EventBroker) -> None:
        broker.publish(StoredEvent(new_sender(), 1, {"event": "restart"}).as_message())
        broker.flush(10)
        assert broker.is_ready() is True
        broker.close()
        broker.close()

    def test_store_publishes_every_appended_event(
        self,
        broker: EventBroker,
        consume: Consumer,
        store_factory: Callable[[EventBroker], TrackerStore],
    ) -> None:
        """Appends from several threads reach the broker through the relay, in seq order."""
        store = store_factory(broker)
        senders = [new_sender() for _ in range(5)]

        def talk(sender: str) -> None:
            for i in range(10):
                store.append(
                    sender,
                    [
                        {"event": "user", "text": f"hi {i}", "timestamp": 1.0 + i},
                        {"event": "action", "name": "utter_hi", "timestamp": 1.0 + i},
                    ],
                )

        threads = [threading.Thread(target=talk, args=(s,)) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        relay = relay_of(store)
        assert relay is not None and relay.stop(drain_timeout=30) is True
        expected = [e.as_message() for s in senders for e in _stored(store, s)]
        assert len(expected) == 5 * 20
        assert_delivered_once_in_order(consume(len(expected)), expected)
        assert consume(1, QUIET_TIMEOUT) == []
        store.close()


def _stored(store: TrackerStore, sender_id: str) -> list[StoredEvent]:
    from eventstore.stores.base import EventQuery

    return list(store.query(EventQuery(sender_id=sender_id)))
