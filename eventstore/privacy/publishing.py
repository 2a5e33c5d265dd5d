"""Publish-only redaction: a broker wrapper that redacts every message on its way out.

The store keeps the original events; only what leaves through the broker (the relay's
batches, ``eventstore export``) is redacted. Tombstones carry no personal data and pass
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from brokers.base import EventBroker


class RedactingBroker(EventBroker):
    """Wraps ``inner``: ``publish``/``publish_many`` hand it redacted copies of messages."""

    def __init__(
        self, inner: EventBroker, redact: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        self.inner = inner
        self.redact = redact

    @property
    def deadline(self) -> float | None:
        """The wrapped broker's deadline (the relay sets it on this wrapper)."""
        return self.inner.deadline

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        self.inner.deadline = value

    def publish(self, message: dict[str, Any]) -> None:
        self.inner.publish(self.redact(message))

    def publish_many(self, messages: Iterable[dict[str, Any]]) -> None:
        self.inner.publish_many([self.redact(message) for message in messages])

    def flush(self, timeout: float | None = None) -> None:
        self.inner.flush(timeout)

    def is_ready(self) -> bool:
        return self.inner.is_ready()

    def idle(self) -> None:
        self.inner.idle()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # settings and counters of the wrapped broker
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"RedactingBroker({self.inner!r})"
