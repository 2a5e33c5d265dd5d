"""The event broker contract: publish message bodies, in the order given."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from eventstore.config import StrictConfig


class EventBroker(ABC):
    """Base class of every event broker, built-in or custom.

    A message is the JSON body of one stored event: ``{"sender_id", **event, "seq",
    "position"?}``. Subclasses set ``Config`` to be created from endpoints.yml.
    """

    Config: ClassVar[type[StrictConfig] | None] = None

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
        """Publish several messages in order (brokers may batch them)."""
        for message in messages:
            self.publish(message)

    def flush(self, timeout: float | None = None) -> None:  # noqa: B027 - optional hook
        """Wait until every message published so far is confirmed by the broker."""

    def is_ready(self) -> bool:
        """Whether the broker is reachable now."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release connections."""
