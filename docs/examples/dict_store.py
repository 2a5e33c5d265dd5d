"""A custom tracker store in one small module: conversations in a dict, guarded by a lock.

Run by the tests against eventstore's shipped contracts (see docs/custom-store.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

from eventstore import (
    ConcurrencyError,
    EventQuery,
    StoredEvent,
    StoreSettings,
    StrictConfig,
    TrackerStore,
)


class DictSettings(StoreSettings):
    """``tracker_store: {type: mypackage.dict_store.DictStore, label: ...}``."""

    label: str = "dict"


class DictStore(TrackerStore):
    """Each conversation a list of event dicts; seq = index + 1."""

    Config: ClassVar[type[StrictConfig] | None] = DictSettings

    def __init__(self, settings: DictSettings | None = None) -> None:
        self.settings = settings if settings is not None else DictSettings()
        super().__init__(tracker_cache_size=self.settings.tracker_cache_size)
        self._logs: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> DictStore:
        return cls(settings)

    # The base class validates every input once, then calls these primitives.
    def _append(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        with self._lock:  # check and write in one step: all or nothing
            log = self._logs.get(sender_id, [])
            if expected_version is not None and expected_version != len(log):
                raise ConcurrencyError(sender_id, expected_version, len(log))
            start = len(log)
            self._logs[sender_id] = [*log, *events]
        return [StoredEvent(sender_id, start + i, e) for i, e in enumerate(events, 1)]

    def _replace(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        # the default deletes, then appends: a reader in between would see an empty log
        with self._lock:
            current = len(self._logs.get(sender_id, []))
            if expected_version is not None and expected_version != current:
                raise ConcurrencyError(sender_id, expected_version, current)
            self._logs[sender_id] = list(events)
        return [StoredEvent(sender_id, i, e) for i, e in enumerate(events, 1)]

    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._logs.get(sender_id, [])[max(after, 0) :])

    def version(self, sender_id: str) -> int:
        with self._lock:
            return len(self._logs.get(sender_id, []))

    def _session_start(self, sender_id: str) -> int:
        events = self.read(sender_id)
        starts = [i for i, e in enumerate(events, 1) if e.get("event") == "session_started"]
        return starts[-1] if starts else 0

    def keys(self) -> Iterator[str]:
        with self._lock:
            return iter([sid for sid, log in self._logs.items() if log])

    def delete(self, sender_id: str) -> int:
        with self._lock:
            return len(self._logs.pop(sender_id, []))

    def _query(self, query: EventQuery) -> Iterator[StoredEvent]:
        # no global positions: one conversation in seq order, several by timestamp
        ids = [query.sender_id] if query.sender_id is not None else list(self.keys())
        events = [
            StoredEvent(sid, seq, e) for sid in ids for seq, e in enumerate(self.read(sid), 1)
        ]
        if query.sender_id is None:
            events.sort(key=lambda e: (e.timestamp, e.sender_id, e.seq))
        matching = (e for e in events if query.matches(e))
        return iter(list(matching)[: query.limit] if query.limit is not None else list(matching))
