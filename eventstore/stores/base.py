"""The store contract: a few primitives per backend, everything else built on them here.

A backend implements ``_append``, ``read``, ``_session_start``, ``keys``, ``delete`` and
``query``. The base class validates input, builds trackers (``retrieve``,
``retrieve_full_tracker``, ``save``, ``get_or_create_tracker``) and hands stored events to
``on_stored``, only after they are durably stored. Stores know nothing of who listens:
the factory wires a publisher to them.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from eventstore.errors import ConcurrencyError, EventValidationError, NoPositionsError
from eventstore.events import (
    MAX_EVENT_BYTES,
    UnknownEvents,
    validate_events,
    validate_sender_id,
)
from eventstore.snapshots import (
    SNAPSHOT_EVERY,
    SnapshotError,
    SnapshotVersions,
    SnapshotWriter,
    restore,
)
from eventstore.stores.records import INT64_MAX, INT64_MIN, EventQuery, EventSource, StoredEvent
from eventstore.tracker import DEFAULT_SLOTS, Tracker

if TYPE_CHECKING:
    from eventstore.config import StrictConfig
    from eventstore.feed import Subscription

logger = logging.getLogger(__name__)


class TrackerCache:
    """The last trackers this process loaded or saved, least recently used dropped first.

    Entries are copies and callers get copies, so nothing they do reaches the cache; a copy
    shares the (immutable) events, so neither costs O(events). Size 0 disables it.
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
        if self.size <= 0 or tracker._stored != len(tracker):
            return
        tracker._share()
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
    #: Redacts each validated event before it is stored (``privacy.redaction``, set by the
    #: factory); it never changes seq, timestamps or names.
    redact_before_store: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Backends that store tracker snapshots set this and implement ``_read_snapshot``,
    #: ``_write_snapshot``, and remove them in ``delete`` and ``_replace``.
    supports_snapshots: ClassVar[bool] = False
    #: Events past the last snapshot before a new one is written (0: no snapshots).
    snapshot_every: int = SNAPSHOT_EVERY
    #: Whether the data lives in this process only (no other process can read it).
    process_local: ClassVar[bool] = False
    #: Called with the events of each durable write (never fails the write).
    on_stored: Callable[[list[StoredEvent]], object] | None = None
    #: Whether appends also record events in the outbox (set by whoever reads it).
    uses_outbox: bool = False

    def __init__(
        self,
        max_event_bytes: int = MAX_EVENT_BYTES,
        tracker_cache_size: int = 1000,
    ) -> None:
        self.max_event_bytes = max_event_bytes
        self._trackers = TrackerCache(tracker_cache_size)
        self._close_hooks: list[Callable[[], object]] = []
        self._erasure_hooks: list[Callable[[str], object]] = []
        #: ``refuse`` or ``keep`` event types this version does not know (``StoreSettings``).
        self.unknown_events: UnknownEvents = "refuse"

    def use_store_settings(self, settings: Any) -> None:
        """Apply the settings the contract itself uses (``tracker_cache_size``,
        ``snapshot_every``); each constructor that takes a config calls it, so a store
        built directly honours them as one built by ``from_config`` does."""
        size = getattr(settings, "tracker_cache_size", None)
        if size is not None:
            self._trackers.size = size
        every = getattr(settings, "snapshot_every", None)
        if every is not None:
            self.snapshot_every = every
        unknown = getattr(settings, "unknown_events", None)
        if unknown is not None:
            self.unknown_events = unknown

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrackerStore:
        """Create the store from its endpoints.yml section (without ``type``)."""
        if cls.Config is None:
            return cls(**config)
        from eventstore.config import parse_config

        settings = parse_config(cls.Config, config, "tracker_store")
        store = cls.from_settings(settings)
        store.use_store_settings(settings)
        return store

    @classmethod
    def from_settings(cls, settings: Any) -> TrackerStore:
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

    def delete_at_version(self, sender_id: str, version: int) -> int:
        """``delete`` only while the log is at ``version`` (else ``ConcurrencyError``), for
        retention; built-in backends do it atomically, this default checks first."""
        current = self.version(sender_id)
        if current != version:
            raise ConcurrencyError(sender_id, version, current)
        return self.delete(sender_id)

    def exclusive(self, name: str, seconds: float) -> AbstractContextManager[bool]:
        """A lock for maintenance jobs, yielding whether it was taken (never waits); held in
        the backend's server for ``seconds`` at most. This default is per process."""
        from eventstore.stores.locks import local_lock

        return local_lock(f"{type(self).__name__}:{id(self)}:{name}")

    def query(self, query: EventQuery) -> Iterator[StoredEvent]:
        """Stored events matching ``query``: by position (or by conversation, then seq).

        The query validated itself; one that matches nothing is answered here, the same on
        every backend, without asking the backend.
        """
        if not isinstance(query, EventQuery):
            raise EventValidationError(
                f"must be an EventQuery, got {type(query).__name__}", field="query"
            )
        if query.matches_nothing:
            return iter(())
        return self._query(query)

    @abstractmethod
    def _query(self, query: EventQuery) -> Iterator[StoredEvent]:
        """The backend's answer to a valid query that may match something."""

    def add_close_hook(self, hook: Callable[[], object]) -> None:
        """Run ``hook`` when the store closes, before its connections are released."""
        if not hasattr(self, "_close_hooks"):  # a subclass skipped our __init__
            self._close_hooks = []
        self._close_hooks.append(hook)

    def add_erasure_hook(self, hook: Callable[[str], object]) -> None:
        """Run ``hook(sender_id)`` after ``forget`` or retention deleted a conversation, so
        copies kept outside the store (analytics tables in another database) go too."""
        if not hasattr(self, "_erasure_hooks"):  # a subclass skipped our __init__
            self._erasure_hooks = []
        self._erasure_hooks.append(hook)

    @property
    def erasure_hooks(self) -> list[Callable[[str], object]]:
        """What runs after a conversation is erased (see ``add_erasure_hook``)."""
        return list(getattr(self, "_erasure_hooks", []))

    def close(self) -> None:
        """Release connections; the store is unusable afterwards.

        Runs the close hooks first (a publisher drains what is pending). Backends that
        override ``close`` call ``super().close()`` before closing their own connections.
        Queued snapshots are written first (for up to a few seconds).
        """
        writer = self.__dict__.get("_snapshot_writer")
        if writer is not None:
            writer.close()
        hooks, self._close_hooks = getattr(self, "_close_hooks", []), []
        for hook in hooks:
            try:
                hook()
            except Exception:
                logger.exception("a close hook of %s failed", type(self).__name__)

    # -- snapshots: a cache of the log in the store (see eventstore/snapshots.py) ---
    def _read_snapshot(self, sender_id: str) -> str | None:
        """The conversation's stored snapshot (JSON), or None."""
        raise NotImplementedError(f"{type(self).__name__} keeps no snapshots")

    def _write_snapshot(self, sender_id: str, version: int, data: str) -> None:
        """Store ``data`` as the conversation's snapshot at ``version``, replacing any.

        Nothing is stored when the log no longer reaches ``version`` (it was deleted or
        replaced meanwhile): no snapshot outlives its log.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no snapshots")

    @property
    def _snapshots_on(self) -> bool:
        return self.supports_snapshots and self.snapshot_every > 0

    def _snapshot_state(self) -> tuple[SnapshotWriter, SnapshotVersions]:
        """This store's snapshot writer and known snapshot versions (created once)."""
        state = self.__dict__.get("_snapshot_writer")
        if state is None:
            with _SNAPSHOT_SETUP:
                if "_snapshot_writer" not in self.__dict__:
                    self.__dict__["_snapshot_versions"] = SnapshotVersions()
                    self.__dict__["_snapshot_writer"] = SnapshotWriter(self._write_snapshot)
        return self.__dict__["_snapshot_writer"], self.__dict__["_snapshot_versions"]

    def _forget_snapshot(self, sender_id: str) -> None:
        """Before a delete or replace: drop this process's pending snapshot of the
        conversation (waiting for one being written) and what it knew of it."""
        self._trackers.forget(sender_id)
        if "_snapshot_writer" in self.__dict__:
            writer, versions = self._snapshot_state()
            writer.discard(sender_id)
            versions.forget(sender_id)

    def _maybe_snapshot(self, tracker: Tracker) -> None:
        """Queue a snapshot of ``tracker`` when it ran ``snapshot_every`` events past the
        last one; the background writer stores it, no turn waits for it."""
        if not self._snapshots_on or tracker.version < self.snapshot_every:
            return
        writer, versions = self._snapshot_state()
        if versions.due(tracker, self.snapshot_every):
            writer.submit(tracker.copy())

    def flush_snapshots(self, timeout: float = 10.0) -> bool:
        """Wait until queued snapshots are written (tests, benchmarks); False on timeout."""
        if "_snapshot_writer" not in self.__dict__:
            return True
        return self._snapshot_state()[0].flush(timeout)

    def _retrieve_snapshot(self, sender_id: str) -> Tracker | None:
        """The current session from the stored snapshot plus the log's tail, or None.

        None when there is no usable snapshot: none, corrupt, another format, or the log
        no longer holds the snapshot's last event at its version, or a new session
        started in the tail. The caller then replays the log.
        """
        if not self._snapshots_on:
            return None
        data = self._read_snapshot(sender_id)
        if data is None:
            return None

        def load(after: int, count: int) -> list[dict[str, Any]]:
            return self.read(sender_id, after)[:count]

        versions = self._snapshot_state()[1]
        try:
            tracker = restore(sender_id, data, load, DEFAULT_SLOTS)
        except SnapshotError as exc:
            logger.info("ignoring the snapshot of %r: %s", sender_id, exc)
            versions.forget(sender_id)  # write a good one after the replay
            return None
        tail = self.read(sender_id, tracker.version - 1)
        new = tail[1:]
        if (
            not tail
            or tail[0] != tracker.last_stored_event
            or any(event.get("event") == "session_started" for event in new)
        ):
            versions.forget(sender_id)
            return None
        versions.seen(sender_id, tracker.version)
        tracker.extend_stored(new, tracker.version + len(new))
        return tracker

    # -- the outbox: stored-but-unpublished events ---------------------------------
    #: Backends that keep a durable outbox set this; ``_append`` then records each stored
    #: event there in the same atomic write whenever ``uses_outbox`` is true.
    supports_outbox: ClassVar[bool] = False

    def outbox_pending(self, limit: int = 500) -> list[StoredEvent]:
        """Up to ``limit`` stored events not yet confirmed by the broker, oldest first.

        Per conversation they come in seq order. Backends with ``supports_outbox`` override.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no outbox")

    def outbox_ack(self, events: Sequence[StoredEvent]) -> None:
        """Remove events the broker has confirmed from the outbox."""
        raise NotImplementedError(f"{type(self).__name__} keeps no outbox")

    # -- subscriptions: checkpoints by name (stores with positions) --------------------
    def load_checkpoint(self, name: str) -> int | None:
        """The position subscription ``name`` saved last, None when it never saved one."""
        raise self._no_checkpoints()

    def save_checkpoint(self, name: str, position: int) -> None:
        """Record that subscription ``name`` has processed every event up to ``position``."""
        raise self._no_checkpoints()

    def _no_checkpoints(self) -> Exception:
        if not self.has_positions:
            return NoPositionsError(type(self).__name__)
        return NotImplementedError(f"{type(self).__name__} keeps no subscription checkpoints")

    def subscribe(
        self, name: str | None = None, after: int | None = None, **options: Any
    ) -> Subscription:
        """Every stored event in position order, in batches, catch-up then live.

        ``name`` keeps a checkpoint in the store (resumed when ``after`` is None);
        ``options``: ``batch_size``, ``follow``, ``poll_interval``. See ``eventstore.feed``.
        """
        from eventstore.feed import Subscription

        return Subscription(self, name, after, **options)

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
        checked = self._checked(events)
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
        checked = self._checked(events)
        _check_expected_version(expected_version)
        self._forget_snapshot(sender_id)
        stored = self._replace(sender_id, checked, expected_version)
        self._publish(stored)
        return stored[-1].seq if stored else 0

    def _checked(
        self, events: Sequence[Mapping[str, Any]] | Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The events validated, then redacted when the store redacts before storing."""
        checked = validate_events(events, self.max_event_bytes, self.unknown_events)
        if self.redact_before_store is not None:
            checked = [self.redact_before_store(event) for event in checked]
        return checked

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
        """Hand freshly stored events to ``on_stored``; never fails the append.

        With an outbox the events are already recorded there (same atomic write), so a
        publisher that misses them here still finds them.
        """
        callback = self.on_stored
        if callback is None or not stored:
            return
        try:
            callback(stored)
        except Exception:  # the events are stored; the outbox (if any) keeps them
            logger.exception("on_stored failed for %d stored events", len(stored))

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
            tracker = self._retrieve_snapshot(sender_id) or self._load_session(sender_id)
            if tracker is None:
                self._trackers.forget(sender_id)
                return None
        self._trackers.put(tracker)
        self._maybe_snapshot(tracker)
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
        if len(tracker):
            self._trackers.put(tracker)
            self._maybe_snapshot(tracker)
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


_SNAPSHOT_SETUP = threading.Lock()


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


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "EventQuery",
    "EventSource",
    "StoredEvent",
    "TrackerCache",
    "TrackerStore",
]
