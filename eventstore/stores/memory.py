"""In-memory store: the default, a dict of per-conversation event lists in this process.

Features: the full store contract, global positions, thread-safe appends, snapshots.
Options: none. History is lost when the process exits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from eventstore.config import StoreSettings, StrictConfig
from eventstore.errors import ConcurrencyError
from eventstore.events import MAX_EVENT_BYTES
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore


class InMemoryConfig(StoreSettings):
    """``type: in_memory`` takes no options."""


class InMemoryTrackerStore(TrackerStore):
    """Conversations kept in a dict ``sender_id -> [StoredEvent]``, guarded by one lock."""

    Config: ClassVar[type[StrictConfig] | None] = InMemoryConfig
    has_positions: ClassVar[bool] = True
    supports_outbox: ClassVar[bool] = True
    supports_snapshots: ClassVar[bool] = True
    process_local: ClassVar[bool] = True

    def __init__(
        self, settings: InMemoryConfig | None = None, *, max_event_bytes: int = MAX_EVENT_BYTES
    ) -> None:
        self.settings = settings if settings is not None else InMemoryConfig()
        super().__init__(max_event_bytes, self.settings.tracker_cache_size)
        self.use_store_settings(self.settings)
        self._logs: dict[str, list[StoredEvent]] = {}
        self._session_starts: dict[str, int] = {}
        self._position = 0
        self._lock = threading.Lock()
        self._outbox: dict[tuple[str, int], StoredEvent] = {}
        self._snapshots: dict[str, str] = {}
        self._checkpoints: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> InMemoryTrackerStore:
        return cls(settings)

    def _append(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        with self._lock:
            log = self._logs.setdefault(sender_id, [])
            current = len(log)
            if expected_version is not None and expected_version != current:
                if not log:
                    del self._logs[sender_id]
                raise ConcurrencyError(sender_id, expected_version, current)
            stored = []
            for offset, event in enumerate(events, start=1):
                self._position += 1
                stored.append(StoredEvent(sender_id, current + offset, event, self._position))
                if event.get("event") == "session_started":
                    self._session_starts[sender_id] = current + offset
            log.extend(stored)
            if self.uses_outbox:
                self._outbox.update(((e.sender_id, e.seq), e) for e in stored)
            return stored

    def _replace(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        """Check, drop and store under the one lock: no other thread sees a half-replaced log."""
        with self._lock:
            current = len(self._logs.get(sender_id, ()))
            if expected_version is not None and expected_version != current:
                raise ConcurrencyError(sender_id, expected_version, current)
            self._logs.pop(sender_id, None)
            self._session_starts.pop(sender_id, None)
            self._snapshots.pop(sender_id, None)
            stored = []
            for seq, event in enumerate(events, start=1):
                self._position += 1
                stored.append(StoredEvent(sender_id, seq, event, self._position))
                if event.get("event") == "session_started":
                    self._session_starts[sender_id] = seq
            if stored:
                self._logs[sender_id] = stored
            if self.uses_outbox:
                self._outbox.update(((e.sender_id, e.seq), e) for e in stored)
            return stored

    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            log = self._logs.get(sender_id, ())
            return [e.data for e in log[max(after, 0) :]]

    def version(self, sender_id: str) -> int:
        return len(self._logs.get(sender_id, ()))

    def _session_start(self, sender_id: str) -> int:
        return self._session_starts.get(sender_id, 0)

    def keys(self) -> Iterator[str]:
        with self._lock:
            ids = list(self._logs)
        return iter(ids)

    def delete(self, sender_id: str) -> int:
        return self._delete(sender_id, None)

    def delete_at_version(self, sender_id: str, version: int) -> int:
        return self._delete(sender_id, version)

    def _delete(self, sender_id: str, expected: int | None) -> int:
        self._forget_snapshot(sender_id)
        with self._lock:
            current = len(self._logs.get(sender_id, ()))
            if expected is not None and current != expected:
                raise ConcurrencyError(sender_id, expected, current)
            self._session_starts.pop(sender_id, None)
            self._snapshots.pop(sender_id, None)
            removed = self._logs.pop(sender_id, ())
            for event in removed:  # never published once deleted
                self._outbox.pop((sender_id, event.seq), None)
            return len(removed)

    def _read_snapshot(self, sender_id: str) -> str | None:
        return self._snapshots.get(sender_id)

    def _write_snapshot(self, sender_id: str, version: int, data: str) -> None:
        with self._lock:
            if len(self._logs.get(sender_id, ())) >= version:
                self._snapshots[sender_id] = data

    def _query(self, query: EventQuery) -> Iterator[StoredEvent]:
        with self._lock:
            if query.sender_id is not None:
                candidates = list(self._logs.get(query.sender_id, ()))
            else:
                candidates = sorted(
                    (e for log in self._logs.values() for e in log), key=lambda e: e.position or 0
                )
        count = 0
        for event in candidates:
            if query.limit is not None and count >= query.limit:
                return
            if query.matches(event):
                count += 1
                yield event

    def load_checkpoint(self, name: str) -> int | None:
        return self._checkpoints.get(name)

    def save_checkpoint(self, name: str, position: int) -> None:
        self._checkpoints[name] = position

    def outbox_pending(self, limit: int = 500) -> list[StoredEvent]:
        with self._lock:
            pending = sorted(self._outbox.values(), key=lambda e: e.position or 0)
        return pending[:limit]

    def outbox_ack(self, events: Sequence[StoredEvent]) -> None:
        with self._lock:
            for event in events:
                self._outbox.pop((event.sender_id, event.seq), None)
