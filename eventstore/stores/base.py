"""The store contract: a few primitives per backend, everything else built on them here.

A backend implements ``_append``, ``read``, ``_session_start``, ``keys``, ``delete`` and
``query``. The base class validates input, builds trackers (``retrieve``,
``retrieve_full_tracker``, ``save``, ``get_or_create_tracker``) and hands stored events to
the event broker, only after they are durably stored.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from eventstore.errors import ConcurrencyError, EventValidationError
from eventstore.events import MAX_EVENT_BYTES, validate_events, validate_sender_id
from eventstore.tracker import Tracker

if TYPE_CHECKING:
    from brokers.base import EventBroker
    from eventstore.config import StrictConfig
    from eventstore.relay import OutboxRelay

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as stored: its conversation, its seq there, and its global position."""

    sender_id: str
    seq: int
    data: dict[str, Any] = field(compare=True)
    position: int | None = None

    @property
    def timestamp(self) -> float:
        return float(self.data.get("timestamp") or 0.0)

    @property
    def type_name(self) -> str:
        return str(self.data.get("event"))

    def as_message(self) -> dict[str, Any]:
        """The broker/API body: Rasa's ``{"sender_id", **event}`` plus ``seq`` and ``position``."""
        body: dict[str, Any] = {"sender_id": self.sender_id, **self.data, "seq": self.seq}
        if self.position is not None:
            body["position"] = self.position
        return body


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of ``TrackerStore.query``; every one is optional and they combine with AND."""

    sender_id: str | None = None
    type_name: str | None = None
    intent: str | None = None
    action: str | None = None
    since: float | None = None  # timestamp >= since
    until: float | None = None  # timestamp <= until
    after_position: int | None = None  # position > after_position (backends with positions)
    limit: int | None = None

    def matches(self, event: StoredEvent) -> bool:
        """Whether ``event`` passes the filters (for backends that filter in Python)."""
        from eventstore.events import action_name, intent_name

        data = event.data
        return not (
            (self.sender_id is not None and event.sender_id != self.sender_id)
            or (self.type_name is not None and data.get("event") != self.type_name)
            or (self.intent is not None and intent_name(data) != self.intent)
            or (self.action is not None and action_name(data) != self.action)
            or (self.since is not None and event.timestamp < self.since)
            or (self.until is not None and event.timestamp > self.until)
            or (
                self.after_position is not None
                and (event.position is None or event.position <= self.after_position)
            )
        )


class TrackerCache:
    """The last trackers this process loaded or saved, least recently used dropped first.

    Entries are private copies: callers get copies too, so nothing they do reaches the
    cache. Size 0 disables it.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, Tracker] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sender_id: str) -> Tracker | None:
        """A copy of the cached tracker, or None."""
        with self._lock:
            tracker = self._entries.get(sender_id)
            if tracker is None:
                return None
            self._entries.move_to_end(sender_id)
        return tracker.copy()

    def put(self, tracker: Tracker) -> None:
        """Cache a copy of a tracker whose events are all stored."""
        if self.size <= 0 or tracker.unsaved_events:
            return
        entry = tracker.copy()
        with self._lock:
            self._entries[tracker.sender_id] = entry
            self._entries.move_to_end(tracker.sender_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, sender_id: str) -> None:
        """Drop a conversation's entry (it was replaced or deleted)."""
        with self._lock:
            self._entries.pop(sender_id, None)


class TrackerStore(ABC):
    """Base class of every tracker store, built-in or custom.

    Subclasses set ``Config`` (a ``StrictConfig``) to be created from endpoints.yml with
    validated keys; without one, the section's keys are passed to ``__init__`` as-is.
    """

    Config: ClassVar[type[StrictConfig] | None] = None
    #: Whether ``query`` results carry a global ``position`` (resumable consumers).
    has_positions: ClassVar[bool] = False

    def __init__(
        self,
        event_broker: EventBroker | None = None,
        max_event_bytes: int = MAX_EVENT_BYTES,
        tracker_cache_size: int = 1000,
    ) -> None:
        self.event_broker = event_broker
        self.max_event_bytes = max_event_bytes
        self._trackers = TrackerCache(tracker_cache_size)
        self._relay: OutboxRelay | None = None
        self._relay_lock = threading.Lock()

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], event_broker: EventBroker | None = None
    ) -> TrackerStore:
        """Create the store from its endpoints.yml section (without ``type``)."""
        if cls.Config is None:
            custom = cls(event_broker=event_broker, **config)
            if event_broker is not None:
                custom.start_relay()
            return custom
        from eventstore.config import parse_config

        settings = parse_config(cls.Config, config, "tracker_store")
        store = cls.from_settings(settings, event_broker)
        size = getattr(settings, "tracker_cache_size", None)
        if size is not None:
            store._trackers.size = size
        if event_broker is not None:  # publish what an earlier process stored and left
            store.start_relay()
        return store

    @classmethod
    def from_settings(cls, settings: Any, event_broker: EventBroker | None = None) -> TrackerStore:
        """Create the store from a validated ``Config`` instance."""
        raise NotImplementedError(f"{cls.__name__} must implement from_settings")

    # -- primitives every backend implements ---------------------------------------
    @abstractmethod
    def _append(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        """Store ``events`` at seqs version+1.. atomically and return them as stored.

        With ``expected_version``, a log at another version raises ``ConcurrencyError`` and
        stores nothing; without it, the events go after whatever the log holds.
        """

    @abstractmethod
    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        """The events of the conversation with seq > ``after``, in seq order."""

    @abstractmethod
    def version(self, sender_id: str) -> int:
        """The seq of the conversation's last event, 0 when there is none."""

    @abstractmethod
    def _session_start(self, sender_id: str) -> int:
        """The seq of the last ``session_started`` event, 0 when there is none."""

    @abstractmethod
    def keys(self) -> Iterator[str]:
        """Every conversation id that has at least one event."""

    @abstractmethod
    def delete(self, sender_id: str) -> int:
        """Remove the whole conversation; return the number of events removed."""

    @abstractmethod
    def query(self, query: EventQuery) -> Iterator[StoredEvent]:
        """Stored events matching ``query``: by position (or by conversation, then seq)."""

    def close(self) -> None:
        """Release connections; the store is unusable afterwards.

        Stops the outbox relay first (publishing what is pending for a few seconds).
        Backends that override ``close`` call ``super().close()`` before closing their
        own connections.
        """
        self.stop_relay()

    # -- the outbox: stored-but-unpublished events ---------------------------------
    #: Backends that keep a durable outbox set this; ``_append`` then records each stored
    #: event there in the same atomic write whenever ``uses_outbox`` is true.
    supports_outbox: ClassVar[bool] = False

    @property
    def uses_outbox(self) -> bool:
        """Whether appends record events in the outbox (a broker is attached)."""
        return self.event_broker is not None and self.supports_outbox

    def outbox_pending(self, limit: int = 500) -> list[StoredEvent]:
        """Up to ``limit`` stored events not yet confirmed by the broker, oldest first.

        Per conversation they come in seq order. Backends with ``supports_outbox`` override.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no outbox")

    def outbox_ack(self, events: Sequence[StoredEvent]) -> None:
        """Remove events the broker has confirmed from the outbox."""
        raise NotImplementedError(f"{type(self).__name__} keeps no outbox")

    # -- built on the primitives ----------------------------------------------------
    def append(
        self,
        sender_id: str,
        events: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        expected_version: int | None = None,
    ) -> int:
        """Validate and store ``events`` atomically, publish them, and return the new version.

        A bad event raises ``EventValidationError``; a stale ``expected_version`` raises
        ``ConcurrencyError``; either way nothing is stored.
        """
        validate_sender_id(sender_id)
        checked = validate_events(events, self.max_event_bytes)
        _check_expected_version(expected_version)
        if not checked:
            current = self.version(sender_id)
            if expected_version is not None and expected_version != current:
                raise ConcurrencyError(sender_id, expected_version, current)
            return current
        stored = self._append(sender_id, checked, expected_version)
        self._publish(stored)
        return stored[-1].seq

    def replace(
        self,
        sender_id: str,
        events: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        expected_version: int | None = None,
    ) -> int:
        """Replace the conversation's whole log with ``events`` (seqs restart at 1).

        Validated like ``append``; a stale ``expected_version`` raises ``ConcurrencyError``
        and changes nothing. The new events are published. Returns the new version.
        """
        validate_sender_id(sender_id)
        checked = validate_events(events, self.max_event_bytes)
        _check_expected_version(expected_version)
        self._trackers.forget(sender_id)
        stored = self._replace(sender_id, checked, expected_version)
        self._publish(stored)
        return stored[-1].seq if stored else 0

    def _replace(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        """Delete the log and store ``events`` from seq 1; backends override to be atomic.

        This default checks the version, deletes, then appends at version 0: a writer that
        slips in between makes the append raise ``ConcurrencyError`` after the delete.
        Backends with transactions (or a lock) override it to do all of it in one step.
        """
        if expected_version is not None:
            current = self.version(sender_id)
            if current != expected_version:
                raise ConcurrencyError(sender_id, expected_version, current)
        self.delete(sender_id)
        if not events:
            return []
        return self._append(sender_id, events, 0)

    def _publish(self, stored: list[StoredEvent]) -> None:
        """Wake the relay that publishes freshly stored events; never fails the append.

        With an outbox the events are already recorded there (same atomic write); without
        one they go to the relay's in-process buffer, lost if the process exits first.
        """
        if self.event_broker is None or not stored:
            return
        try:
            relay = self.start_relay()
            if relay is None:
                return
            if not self.uses_outbox:
                from eventstore.relay import BufferOutbox

                if isinstance(relay.outbox, BufferOutbox):
                    relay.outbox.add(stored)
            relay.notify(stored)
        except Exception:  # the events are stored; the relay or `eventstore relay` retries
            logger.exception("handing %d stored events to the event relay failed", len(stored))

    @property
    def relay(self) -> OutboxRelay | None:
        """The relay publishing this store's events (None before it starts, or no broker)."""
        return getattr(self, "_relay", None)

    def start_relay(self, **options: Any) -> OutboxRelay | None:
        """Start (once) the background relay from the outbox to the broker.

        Called when the store is created from config with a broker and on the first append;
        ``options`` (poll_interval, batch_size, min_backoff...) configure ``OutboxRelay``,
        also one already running.
        """
        if self.event_broker is None:
            return None
        from eventstore.relay import BufferOutbox, OutboxRelay

        if getattr(self, "_relay_lock", None) is None:  # a subclass skipped our __init__
            self._relay_lock = threading.Lock()
            self._relay = None
        with self._relay_lock:
            if self._relay is None:
                outbox = self if self.uses_outbox else BufferOutbox()
                self._relay = OutboxRelay(
                    outbox, self.event_broker, shared=self.uses_outbox, **options
                )
            else:
                self._relay.configure(**options)
            if not self._relay.running:
                self._relay.start()
            return self._relay

    def stop_relay(self, drain_timeout: float = 5.0) -> bool:
        """Stop the relay after publishing pending events for up to ``drain_timeout`` s.

        Returns True when nothing was left unpublished (also when no relay ran).
        """
        relay = self.relay
        if relay is None:  # never started: nothing pending here, but release the broker
            if self.event_broker is not None:
                self.event_broker.close()
            return True
        return relay.stop(drain_timeout)

    def read_all(self, sender_id: str) -> list[dict[str, Any]]:
        """Every event of the conversation, in order."""
        return self.read(sender_id, 0)

    def exists(self, sender_id: str) -> bool:
        """Whether the conversation has any stored event."""
        return self.version(sender_id) > 0

    def retrieve(self, sender_id: str) -> Tracker | None:
        """The current session: events from the last ``session_started`` on (all if none).

        A conversation this process loaded or saved recently is rebuilt from its cached
        tracker plus the log's tail, so a turn costs the same at event 10 and at 10,000.
        """
        tracker = self._retrieve_cached(sender_id)
        if tracker is None:
            tracker = self._load_session(sender_id)
            if tracker is None:
                self._trackers.forget(sender_id)
                return None
        self._trackers.put(tracker)
        return tracker

    def _load_session(self, sender_id: str) -> Tracker | None:
        """Read and replay the current session; backends may override to use fewer trips."""
        start = self._session_start(sender_id)
        after = max(start - 1, 0)
        events = self.read(sender_id, after)
        if not events:
            return None
        return Tracker.from_events(sender_id, events, version=after + len(events))

    def _retrieve_cached(self, sender_id: str) -> Tracker | None:
        """The cached tracker brought up to date with the tail, or None to load afresh.

        The tail is read from the cached version's own event on: if that event is no longer
        the same (the conversation was deleted or replaced), or a new session started, the
        cache is not used.
        """
        cached = self._trackers.get(sender_id)
        if cached is None:
            return None
        tail = self.read(sender_id, cached.version - 1)
        if not tail or tail[0] != cached.last_stored_event:
            return None
        new = tail[1:]
        if any(event.get("event") == "session_started" for event in new):
            return None
        cached.extend_stored(new, cached.version + len(new))
        return cached

    def retrieve_full_tracker(self, sender_id: str) -> Tracker | None:
        """Every session of the conversation."""
        events = self.read(sender_id, 0)
        if not events:
            return None
        return Tracker.from_events(sender_id, events, version=len(events))

    def save(self, tracker: Tracker) -> int:
        """Append the tracker's unsaved events, checked against the version it was loaded at."""
        new = tracker.unsaved_events
        if not new:
            return tracker.version
        version = self.append(tracker.sender_id, new, expected_version=tracker.version)
        tracker.mark_saved(version)
        if tracker.events:
            self._trackers.put(tracker)
        return version

    def get_or_create_tracker(self, sender_id: str, append_action_listen: bool = True) -> Tracker:
        """The current session, or a new conversation (stored at once, as Rasa does)."""
        tracker = self.retrieve(sender_id)
        if tracker is not None:
            return tracker
        validate_sender_id(sender_id)
        tracker = Tracker(sender_id)
        if append_action_listen:
            tracker.update({"event": "action", "name": "action_listen"})
            self.save(tracker)
        return tracker

    def __enter__(self) -> TrackerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_expected_version(expected_version: Any) -> None:
    """Refuse an ``expected_version`` that is not a non-negative integer."""
    if expected_version is not None and (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or expected_version < 0
    ):
        raise EventValidationError(
            f"expected_version must be a non-negative integer, got {expected_version!r}",
            field="expected_version",
        )
