"""The outbox relay: publishes stored-but-unpublished events, in order, until confirmed.

A store with an outbox records every appended event there in the same atomic write as
the event itself. The relay reads the outbox oldest first, publishes a batch, waits for
the broker to confirm it (``flush``), and only then removes it from the outbox
(``outbox_ack``). A broker that is down or slow only delays publishing: appends never
wait for the relay, and nothing is acknowledged that the broker did not confirm.

At-least-once: an event the broker confirmed is published again only if the process
dies (or the store fails) between the confirm and the ack. Consumers deduplicate by
``(sender_id, seq)``.

Stores without an outbox get a ``BufferOutbox`` (memory of this process): the same
ordering and retries, but what is not yet published when the process exits is lost.

This module is a leaf: it imports only ``errors``. Stores know nothing of it; ``attach``
wires one (``store.on_stored = relay.notify``), as the factory does for a store configured
with a broker.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from eventstore.errors import (
    BrokerAuthenticationError,
    BrokerError,
    EventStoreError,
    PublishError,
)

logger = logging.getLogger(__name__)
#: While the outbox cannot drain, a warning is repeated at most this often (seconds).
OUTAGE_WARNING_SECONDS = 60.0

_live_relays: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()


class OutboxEvent(Protocol):
    """A stored event as the relay sees it (``eventstore.stores.base.StoredEvent``)."""

    @property
    def sender_id(self) -> str: ...

    @property
    def seq(self) -> int: ...

    def as_message(self) -> dict[str, Any]: ...


class Broker(Protocol):
    """What the relay publishes to (``brokers.base.EventBroker``)."""

    #: a monotonic time by which the broker's own retries end (None: no limit)
    deadline: float | None

    def publish_many(self, messages: list[dict[str, Any]]) -> None: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def idle(self) -> None: ...

    def is_ready(self) -> bool: ...

    def close(self) -> None: ...


class Outbox(Protocol):
    """What the relay reads from: a store with ``supports_outbox``, or a ``BufferOutbox``."""

    def outbox_pending(self, limit: int = 500) -> list[Any]: ...

    def outbox_ack(self, events: Sequence[Any]) -> None: ...


class BufferOutbox:
    """An in-process outbox for stores that keep none: lost when the process exits.

    Holds at most ``max_events``; beyond that new events are dropped with an error in the
    log (a broker down for that long needs a store with a durable outbox).
    """

    def __init__(self, max_events: int = 1_000_000) -> None:
        self.max_events = max_events
        self.dropped = 0
        self._events: collections.deque[OutboxEvent] = collections.deque()
        self._lock = threading.Lock()

    def add(self, events: Sequence[OutboxEvent]) -> None:
        """Queue freshly stored events for publishing."""
        with self._lock:
            if len(self._events) + len(events) > self.max_events:
                self.dropped += len(events)
                logger.error(
                    "event broker buffer full (%d events): %d stored events will not be "
                    "published; use a store with a durable outbox",
                    len(self._events),
                    len(events),
                )
                return
            self._events.extend(events)

    def outbox_pending(self, limit: int = 500) -> list[OutboxEvent]:
        with self._lock:
            return [self._events[i] for i in range(min(limit, len(self._events)))]

    def outbox_ack(self, events: Sequence[OutboxEvent]) -> None:
        done = {(e.sender_id, e.seq) for e in events}
        with self._lock:
            while self._events and (self._events[0].sender_id, self._events[0].seq) in done:
                self._events.popleft()

    def discard(self, sender_id: str) -> None:
        """Forget the pending events of a deleted conversation: they are never published."""
        with self._lock:
            self._events = collections.deque(e for e in self._events if e.sender_id != sender_id)

    def __len__(self) -> int:
        return len(self._events)


class _Notice:
    """Messages queued by ``publish_notice``; ``done`` is set once the broker confirmed them."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.done = threading.Event()


class OutboxRelay:
    """Moves events from an outbox to a broker: publish, confirm, then acknowledge.

    ``start()`` runs it in a daemon thread that wakes on ``notify()`` (each append) and
    every ``poll_interval`` seconds (to pick up what other processes stored). While the
    broker fails it retries with exponential backoff from ``min_backoff`` to
    ``max_backoff`` seconds. ``drain()`` publishes everything pending in the caller's
    thread; ``stop(drain_timeout)`` drains, then ends the thread and closes the broker.
    """

    def __init__(
        self,
        outbox: Outbox,
        broker: Broker,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
        flush_timeout: float = 30.0,
        close_broker: bool = True,
        shared: bool = False,
        orphan_after: float | None = None,
    ) -> None:
        self.outbox = outbox
        self.broker = broker
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.flush_timeout = flush_timeout
        self.close_broker = close_broker
        #: the outbox is shared with other processes (a store's): see ``_publishable``
        self.shared = shared
        #: seconds another process's event may wait before this relay publishes it too
        #: (None: twice the poll interval)
        self.orphan_after = orphan_after
        #: events confirmed by the broker and acknowledged, since creation
        self.published = 0
        #: failed publishing attempts, since creation
        self.failures = 0
        self.last_error: BaseException | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline: float | None = None
        self._lock = threading.Lock()  # one batch at a time: per-conversation order
        self._thread: threading.Thread | None = None
        self._outage_logged = False
        self._outage_since = 0.0
        self._outage_warned = 0.0
        self._mine: collections.OrderedDict[tuple[str, int], None] = collections.OrderedDict()
        self._mine_lock = threading.Lock()
        self._first_seen: dict[tuple[str, int], float] = {}
        self._window_full = False
        #: messages that are no stored events (tombstones), published before the next batch
        self._notices: collections.deque[_Notice] = collections.deque()

    _SETTINGS = frozenset(
        {
            "batch_size",
            "poll_interval",
            "min_backoff",
            "max_backoff",
            "flush_timeout",
            "orphan_after",
        }
    )
    #: appended events remembered as this process's own (oldest forgotten first)
    MAX_OWN = 100_000

    def configure(self, **options: Any) -> None:
        """Change settings of a relay, running or not (``batch_size``, ``poll_interval``...)."""
        unknown = set(options) - self._SETTINGS
        if unknown:
            raise TypeError(f"unknown relay settings: {', '.join(sorted(unknown))}")
        for name, value in options.items():
            setattr(self, name, value)

    # -- one batch -----------------------------------------------------------------------
    def run_once(self, own_first: bool = False) -> int:
        """Publish, confirm and acknowledge one batch; return how many events it held.

        ``own_first`` (the background thread on a shared outbox) skips events another
        process appended a moment ago: their own relay publishes them. Raises
        ``BrokerError`` (after acknowledging what the broker did confirm) if the broker
        failed.
        """
        with self._lock:
            self._publish_notices()
            pending = self.outbox.outbox_pending(self.batch_size)
            self._window_full = len(pending) >= self.batch_size
            if own_first and self.shared:
                pending = self._publishable(pending)
            if not pending:
                return 0
            try:
                self.broker.publish_many([event.as_message() for event in pending])
                self.broker.flush(self.flush_timeout)
            except PublishError as exc:
                confirmed = pending[: max(0, min(exc.confirmed, len(pending)))]
                if confirmed:
                    self.outbox.outbox_ack(confirmed)
                    self.published += len(confirmed)
                    self._forget(confirmed)
                raise
            self.outbox.outbox_ack(pending)
            self.published += len(pending)
            self._forget(pending)
            return len(pending)

    def publish_notice(self, messages: list[dict[str, Any]], timeout: float = 10.0) -> None:
        """Publish messages that are no stored events (tombstones) and wait for the confirm.

        They go out after the batch in flight, from the relay's own thread when it runs.
        Raises ``BrokerError`` when the broker has not confirmed them within ``timeout``
        seconds; the relay keeps retrying them in the background until it stops.
        """
        notice = _Notice(messages)
        if not self.running:  # publish here; on failure the caller retries, not the relay
            with self._lock:
                self._notices.append(notice)
                try:
                    self._publish_notices()
                except BaseException:
                    self._notices.remove(notice)
                    raise
            return
        self._notices.append(notice)
        self._wake.set()
        if not notice.done.wait(timeout):
            last = f": {self.last_error}" if self.last_error is not None else ""
            raise BrokerError(
                f"the event broker did not confirm {len(messages)} message(s) within "
                f"{timeout:g} s{last}; the relay keeps retrying while this process runs"
            )

    def _publish_notices(self) -> None:
        """Publish and confirm queued notices, oldest first (caller holds ``_lock``)."""
        while self._notices:
            notice = self._notices[0]
            self.broker.publish_many(notice.messages)
            self.broker.flush(self.flush_timeout)
            self._notices.popleft()
            notice.done.set()

    def _publishable(self, pending: list[OutboxEvent]) -> list[OutboxEvent]:
        """The events of ``pending`` this relay should publish now, order kept.

        Its own (appended in this process), and others' once they have waited
        ``orphan_after`` seconds (their process died or its relay is stuck). A
        conversation stops at its first skipped event, so per-conversation order holds.
        Several processes on one outbox thus publish each event about once.
        """
        now = time.monotonic()
        wait = 2 * self.poll_interval if self.orphan_after is None else self.orphan_after
        seen: dict[tuple[str, int], float] = {}
        blocked: set[str] = set()
        chosen = []
        with self._mine_lock:
            for event in pending:
                key = (event.sender_id, event.seq)
                first = seen[key] = self._first_seen.get(key, now)
                if event.sender_id in blocked:
                    continue
                if key in self._mine or now - first >= wait:
                    chosen.append(event)
                else:
                    blocked.add(event.sender_id)
        self._first_seen = seen
        return chosen

    def _forget(self, events: Sequence[OutboxEvent]) -> None:
        if self.shared:
            with self._mine_lock:
                for event in events:
                    self._mine.pop((event.sender_id, event.seq), None)

    def drain(self, timeout: float | None = None) -> int:
        """Publish everything pending now, retrying with backoff until ``timeout``.

        Returns the number of events published; raises the last ``BrokerError`` if the
        outbox could not be emptied in time (``timeout=None``: no retry at all).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        start = self.published  # counts batches the broker confirmed only in part, too
        backoff = self.min_backoff
        self.broker.deadline = deadline  # the broker's own retries end by then too
        try:
            return self._drain(deadline, start, backoff)
        finally:
            self.broker.deadline = None

    def _drain(self, deadline: float | None, start: int, backoff: float) -> int:
        while True:
            try:
                done = self.run_once()
            except Exception as exc:
                self._failed(exc)
                refused = isinstance(exc, BrokerAuthenticationError)
                if refused or deadline is None or time.monotonic() + backoff > deadline:
                    raise
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self._recovered()
            if done == 0 or (done < self.batch_size and not self.outbox.outbox_pending(1)):
                return self.published - start

    # -- the background thread ------------------------------------------------------------
    def start(self) -> OutboxRelay:
        """Run the relay in a daemon thread (no-op when already running)."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._deadline = None
        self._thread = threading.Thread(
            target=self._run, name=f"eventstore-relay-{type(self.broker).__name__}", daemon=True
        )
        self._thread.start()
        _live_relays.add(self)
        return self

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def notify(self, events: Sequence[OutboxEvent] = ()) -> None:
        """Tell the thread that ``events`` were just stored here (a store's ``on_stored``).

        With a ``BufferOutbox`` they are queued there first; with a store's outbox they are
        in it already (same atomic write).
        """
        if events and isinstance(self.outbox, BufferOutbox):
            self.outbox.add(events)
        if self.shared and events:
            with self._mine_lock:
                self._mine.update(((e.sender_id, e.seq), None) for e in events)
                while len(self._mine) > self.MAX_OWN:
                    self._mine.popitem(last=False)
        self._wake.set()

    def stop(self, drain_timeout: float = 5.0) -> bool:
        """Publish what is pending for up to ``drain_timeout`` s, then end the thread.

        Returns True when the thread ended with nothing left to publish. The broker is
        closed from the relay thread (pika connections belong to one thread).
        """
        _live_relays.discard(self)
        thread = self._thread
        if thread is None or not thread.is_alive():
            if self.close_broker and thread is not None:
                self._close_broker()
            return not self.outbox.outbox_pending(1)
        self._deadline = time.monotonic() + max(drain_timeout, 0.0)
        self._stop.set()
        self._wake.set()
        thread.join(max(drain_timeout, 0.0) + 5.0)
        if thread.is_alive():
            logger.warning("event relay did not stop within %.1f s", drain_timeout)
            return False
        self._thread = None
        try:
            return not self.outbox.outbox_pending(1)
        except Exception:
            return False

    def _run(self) -> None:
        backoff = self.min_backoff
        try:
            while True:
                stopping = self._stop.is_set()
                if stopping and self._deadline is not None and time.monotonic() >= self._deadline:
                    return
                self._wake.clear()  # before reading: an append from now on wakes us again
                try:
                    done = self.run_once(own_first=not stopping)
                except Exception as exc:
                    self._failed(exc)
                    delay = backoff
                    if stopping and self._deadline is not None:
                        delay = min(delay, max(self._deadline - time.monotonic(), 0.0))
                        time.sleep(delay)
                    else:
                        self._stop.wait(delay)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                self._recovered()
                backoff = self.min_backoff
                if done and self._window_full:  # more may be waiting
                    continue
                if stopping:
                    if done == 0:
                        return
                    continue
                if not self._wake.wait(self.poll_interval):
                    self._idle()
        finally:
            if self.close_broker:
                self._close_broker()

    def _idle(self) -> None:
        try:
            self.broker.idle()
        except Exception:
            logger.debug("event broker idle hook failed", exc_info=True)

    def _close_broker(self) -> None:
        try:
            self.broker.close()
        except Exception:
            logger.warning("closing the event broker failed", exc_info=True)

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = exc
        now = time.monotonic()
        if isinstance(exc, BrokerAuthenticationError):
            # the outbox grows until someone fixes the credentials: say so loudly
            if not self._outage_logged or now - self._outage_warned >= OUTAGE_WARNING_SECONDS:
                logger.error("event broker refused the credentials: %s", exc)
                self._outage_warned = now
                if not self._outage_logged:
                    self._outage_since, self._outage_logged = now, True
            return
        if isinstance(exc, EventStoreError):
            if not self._outage_logged:
                logger.warning("event broker unavailable, will retry: %s", exc)
                self._outage_logged = True
                self._outage_since = self._outage_warned = now
            elif now - self._outage_warned >= OUTAGE_WARNING_SECONDS:
                self._outage_warned = now
                logger.warning(
                    "event broker still unavailable after %.0f s (%d failed attempts); stored "
                    "events wait in the outbox: %s",
                    now - self._outage_since,
                    self.failures,
                    exc,
                )
            else:
                logger.debug("event broker still unavailable: %s", exc)
        else:
            logger.error("event relay failed, will retry", exc_info=exc)

    def _recovered(self) -> None:
        if self._outage_logged:
            logger.warning("event broker reachable again")
            self._outage_logged = False


class Publishing(Protocol):
    """The store side of ``attach``: what every ``TrackerStore`` offers."""

    @property
    def supports_outbox(self) -> bool: ...

    @property
    def process_local(self) -> bool: ...

    uses_outbox: bool
    on_stored: Callable[[list[Any]], object] | None

    def outbox_pending(self, limit: int = 500) -> list[Any]: ...

    def outbox_ack(self, events: Sequence[Any]) -> None: ...

    def add_close_hook(self, hook: Callable[[], object]) -> None: ...


_attached: weakref.WeakKeyDictionary[Any, OutboxRelay] = weakref.WeakKeyDictionary()


def attach(store: Publishing, broker: Broker, *, start: bool = True, **options: Any) -> OutboxRelay:
    """Publish what ``store`` stores to ``broker``; return the relay doing it (started).

    A store with ``supports_outbox`` records each appended event in its outbox (same atomic
    write) and the relay reads that outbox, shared with other processes unless the store is
    ``process_local``; others go through a ``BufferOutbox`` in this process. Closing the
    store stops the relay first (publishing what is pending) and closes the broker.
    ``options`` configure ``OutboxRelay`` (poll_interval, batch_size, min_backoff...).
    """
    if store.supports_outbox:
        store.uses_outbox = True
        outbox: Outbox = store
    else:
        outbox = BufferOutbox()
    shared = store.supports_outbox and not store.process_local
    relay = OutboxRelay(outbox, broker, shared=shared, **options)
    store.on_stored = relay.notify
    store.add_close_hook(relay.stop)
    _attached[store] = relay
    if start:
        relay.start()
    return relay


P = TypeVar("P", bound=Publishing)


def with_broker(store: P, broker: Broker, **options: Any) -> P:
    """``store``, after ``attach(store, broker, **options)``: for one-expression setups."""
    attach(store, broker, **options)
    return store


def relay_of(store: object) -> OutboxRelay | None:
    """The relay ``attach`` gave ``store`` (None: its events go to no broker)."""
    return _attached.get(store)


def broker_of(store: object) -> Broker | None:
    """The broker ``store`` publishes to (None: none)."""
    relay = _attached.get(store)
    return relay.broker if relay is not None else None


def run_until(relay: OutboxRelay, stop: threading.Event, drain_timeout: float = 10.0) -> bool:
    """Run ``relay`` in its thread until ``stop`` is set, then drain and stop it."""
    relay.start()
    while not stop.wait(0.5):
        if not relay.running:  # the thread died: start it again rather than go silent
            logger.error("event relay thread ended unexpectedly; restarting it")
            relay.start()
    return relay.stop(drain_timeout)


@atexit.register
def _stop_live_relays() -> None:
    """At interpreter exit, give running relays a moment to publish what is pending."""
    for relay in list(_live_relays):
        try:
            relay.stop(drain_timeout=2.0)
        except Exception:  # never let a relay break interpreter shutdown
            logger.debug("stopping a relay at exit failed", exc_info=True)
