"""The shared base of the read-only readers for the layouts Rasa itself wrote.

Rasa keeps one blob per conversation (rasa-compat.md §3); each backend's folder holds its
reader (``redis/rasa.py``, ``mongo/rasa.py``, ``dynamo/rasa.py``). A reader is a narrow
read-only ``EventSource`` (read, version, keys, query, close), so ``eventstore migrate``,
``export`` and ``events`` read it like any store: seq is the event's index + 1, there is no
position. Select one with ``layout: rasa`` in the ``tracker_store:`` section. Rasa's SQL
table is not read here: ``eventstore db upgrade`` upgrades it in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from eventstore.config import StrictConfig
from eventstore.errors import ConfigError
from eventstore.stores.records import EventQuery, StoredEvent

#: ``layout:`` values that select these readers (``eventstore`` is the native layout).
RASA_LAYOUTS = frozenset({"rasa"})
#: Readers of the layouts Rasa wrote (``layout: rasa``), by the store type they read.
RASA_READERS: dict[str, str] = {
    "redis": "eventstore.stores.redis.rasa:RasaRedisReader",
    "mongod": "eventstore.stores.mongo.rasa:RasaMongoReader",
    "dynamo": "eventstore.stores.dynamo.rasa:RasaDynamoReader",
}


class RasaLayoutReader:
    """Base of the readers: events of one conversation come from one blob; writes refused."""

    Config: ClassVar[type[StrictConfig] | None] = None
    has_positions: ClassVar[bool] = False
    process_local: ClassVar[bool] = False
    _cache: tuple[str, list[dict[str, Any]]] | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> RasaLayoutReader:
        """Create the reader from its validated ``Config``."""
        raise NotImplementedError

    def keys(self) -> Iterator[str]:
        """Every conversation id Rasa stored."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the client."""

    def __enter__(self) -> RasaLayoutReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self, sender_id: str) -> list[dict[str, Any]] | None:
        """The conversation's event list as Rasa stored it, or None if there is none."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Forget the last blob read (``migrate --follow`` reads each one again per pass)."""
        self._cache = None

    def _events(self, sender_id: str) -> list[dict[str, Any]]:
        # ``migrate`` asks for the version and then the events: keep the last blob read.
        if self._cache is not None and self._cache[0] == sender_id:
            return self._cache[1]
        loaded = self._load(sender_id) or []
        events = [e for e in loaded if isinstance(e, dict) and "event" in e]
        self._cache = (sender_id, events)
        return events

    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        return list(self._events(sender_id)[max(after, 0) :])

    def version(self, sender_id: str) -> int:
        return len(self._events(sender_id))

    def query(self, query: EventQuery) -> Iterator[StoredEvent]:
        if query.matches_nothing:
            return
        ids = [query.sender_id] if query.sender_id is not None else self.keys()
        count = 0
        for sid in ids:
            for seq, data in enumerate(self._events(sid), start=1):
                event = StoredEvent(sid, seq, data)
                if query.matches(event):
                    if query.limit is not None and count >= query.limit:
                        return
                    count += 1
                    yield event

    def append(self, sender_id: str, events: Any, expected_version: int | None = None) -> int:
        """Refused: Rasa's layout is only read (``eventstore migrate`` copies it over)."""
        raise ConfigError(f"{type(self).__name__} reads Rasa's layout and is read-only")

    def delete(self, sender_id: str) -> int:
        raise ConfigError(f"{type(self).__name__} reads Rasa's layout and is read-only")
