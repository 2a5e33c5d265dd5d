"""The event broker contract: publish message bodies, in the order given.

A message is the JSON body of one stored event (``StoredEvent.as_message()``)::

    {"sender_id": "alice", "event": "user", "timestamp": ..., ..., "seq": 7, "position": 412}

Rasa's body (``{"sender_id", **event}``) plus ``seq`` (1, 2, 3 ... per conversation) and
``position`` (global, where the store has one), so consumers can deduplicate by
``(sender_id, seq)`` and resume. Brokers never reorder what one call hands them.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from eventstore.config import StrictConfig
from eventstore.errors import BrokerError, PublishError

__all__ = ["EventBroker", "PublishError", "encode_message", "message_json"]


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def message_json(message: Mapping[str, Any]) -> str:
    """The compact JSON text of a message body (UTF-8 characters kept as they are)."""
    return _ENCODER.encode(message)


def encode_message(message: Mapping[str, Any]) -> bytes:
    """The UTF-8 JSON bytes of a message body, as every broker sends it."""
    return _ENCODER.encode(message).encode("utf-8")


class EventBroker(ABC):
    """Base class of every event broker, built-in or custom.

    A message is the JSON body of one stored event: ``{"sender_id", **event, "seq",
    "position"?}``. Subclasses set ``Config`` to be created from endpoints.yml.

    Contract: ``publish``/``publish_many`` return once the broker accepted the messages
    (or raise ``BrokerError``; ``PublishError.confirmed`` tells how many leading messages
    were accepted); ``flush`` waits until everything accepted is confirmed durable by the
    broker and raises ``BrokerError`` if some of it was not. A broker is used from one
    thread at a time (the relay's); it connects lazily and reconnects on the next call
    after a failure.
    """

    Config: ClassVar[type[StrictConfig] | None] = None
    #: ``time.monotonic()`` by which a call gives up its own retries (connection attempts,
    #: socket waits); set by ``OutboxRelay.drain(timeout)`` so every timeout flag holds.
    deadline: float | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EventBroker:
        """Create the broker from its endpoints.yml section (without ``type``)."""
        if cls.Config is None:
            return cls(**config)
        from eventstore.config import parse_config

        return cls.from_settings(parse_config(cls.Config, config, "event_broker"))

    @classmethod
    def from_settings(cls, settings: Any) -> EventBroker:
        """Create the broker from a validated ``Config`` instance."""
        raise NotImplementedError(f"{cls.__name__} must implement from_settings")

    @abstractmethod
    def publish(self, message: dict[str, Any]) -> None:
        """Publish one message; raise ``BrokerError`` if it was not accepted."""

    def publish_many(self, messages: Iterable[dict[str, Any]]) -> None:
        """Publish several messages in order (brokers may batch them).

        On a failure, raise ``PublishError`` with the number of leading messages accepted.
        """
        for done, message in enumerate(messages):
            try:
                self.publish(message)
            except PublishError:
                raise
            except BrokerError as exc:
                raise PublishError(str(exc), confirmed=done) from exc

    def flush(self, timeout: float | None = None) -> None:  # noqa: B027 - optional hook
        """Wait until every message published so far is confirmed by the broker."""

    def is_ready(self) -> bool:
        """Whether the broker is reachable now."""
        return True

    def idle(self) -> None:  # noqa: B027 - optional hook
        """Called by the relay when it has nothing to publish (keep a connection alive)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release connections."""

    def __enter__(self) -> EventBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
