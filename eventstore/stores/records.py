"""What stores hand out and take in: a stored event, and a query over events."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventstore.errors import EventValidationError


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


#: Integer bounds of a query are clamped to this range (64-bit, as every backend stores).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of ``TrackerStore.query``; every one is optional and they combine with AND.

    It validates itself, so every backend sees the same query: a non-number or NaN time
    bound and a non-integer position or limit raise ``EventValidationError`` naming the
    field; ``after_position`` and ``limit`` are clamped to 64 bits. ``matches_nothing``
    recognises a query no event can pass (a limit of 0 or less, ``since`` after ``until``,
    nothing after the largest position, a window at infinity).
    """

    sender_id: str | None = None
    type_name: str | None = None
    intent: str | None = None
    action: str | None = None
    since: float | None = None  # timestamp >= since
    until: float | None = None  # timestamp <= until
    after_position: int | None = None  # position > after_position (backends with positions)
    limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("sender_id", "type_name", "intent", "action"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise EventValidationError(
                    f"must be a string, got {type(value).__name__}", field=name
                )
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise EventValidationError(
                    f"must be a number, got {type(value).__name__}", field=name
                )
            if math.isnan(value):
                raise EventValidationError(f"{name} is NaN, which bounds no time", field=name)
        for name in ("after_position", "limit"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise EventValidationError(
                    f"must be an integer, got {type(value).__name__}", field=name
                )
            object.__setattr__(self, name, min(max(value, INT64_MIN), INT64_MAX))

    @property
    def matches_nothing(self) -> bool:
        """Whether no event can pass the filters, whatever the store holds."""
        return (
            (self.limit is not None and self.limit <= 0)
            or (self.after_position is not None and self.after_position >= INT64_MAX)
            or (self.since is not None and self.since == math.inf)
            or (self.until is not None and self.until == -math.inf)
            or (self.since is not None and self.until is not None and self.since > self.until)
        )

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


class EventSource(Protocol):
    """What can be read like a store, and nothing more: every ``TrackerStore``, and the
    read-only readers of the layouts Rasa wrote (``layout: rasa``)."""

    @property
    def has_positions(self) -> bool: ...

    @property
    def process_local(self) -> bool: ...

    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]: ...

    def version(self, sender_id: str) -> int: ...

    def keys(self) -> Iterator[str]: ...

    def query(self, query: EventQuery) -> Iterator[StoredEvent]: ...

    def close(self) -> None: ...
