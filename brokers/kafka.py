"""Kafka broker via kafka-python (Rasa's ``type: kafka``).

Features: ``acks=all`` with the idempotent producer (no duplicates or reordering from
the producer's own retries); one conversation always goes to one partition, so its events
stay in order: ``partition_by_sender`` keys each record by its sender id (Kafka's
partitioner then picks the partition), and without it records carry no key, as in Rasa,
and the partition is chosen from a CRC32 of the sender id; header ``RASA_ENVIRONMENT``
(``$RASA_ENVIRONMENT`` or ``RASA_ENVIRONMENT_NOT_SET``, as Rasa). ``publish`` only
queues the message (blocking at most ``max_block_ms`` when the broker is unknown);
``flush`` waits for the broker's acknowledgements and names what failed. After a
failure the producer is replaced, since kafka-python's does not always recover.
Connection string: ``url`` = bootstrap servers (``host:port``, comma-separated or a list).
Options: ``topic`` (rasa_core_events), ``client_id``, ``partition_by_sender`` (false),
``security_protocol`` (PLAINTEXT here; Rasa's default is SASL_PLAINTEXT), ``sasl_username``,
``sasl_password``, ``sasl_mechanism`` (PLAIN), ``ssl_cafile``, ``ssl_certfile``,
``ssl_keyfile``, ``ssl_check_hostname`` (false), ``queue_size`` (accepted, unused),
``max_block_ms`` (5000: the longest a call waits for an unknown or unreachable broker),
``delivery_timeout_ms`` (30000).
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from brokers.base import EventBroker, encode_message
from eventstore.config import StrictConfig, secret_value
from eventstore.drivers import require
from eventstore.errors import BrokerError, BrokerUnavailable, PublishError


class KafkaBrokerConfig(StrictConfig):
    """``event_broker: {type: kafka}`` keys (Rasa's, plus two producer timeouts)."""

    url: list[str]
    topic: str = "rasa_core_events"
    client_id: str | None = None
    partition_by_sender: bool = False
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_mechanism: str = "PLAIN"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = False
    queue_size: int | None = None
    max_block_ms: int = Field(default=5000, ge=0)
    delivery_timeout_ms: int = Field(default=30000, ge=1000)

    @field_validator("url", mode="before")
    @classmethod
    def _servers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("url")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one bootstrap server")
        return value


def producer_options(settings: KafkaBrokerConfig) -> dict[str, Any]:
    """Keyword arguments for ``kafka.KafkaProducer`` from the broker settings."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.url,
        "acks": "all",
        "enable_idempotence": True,
        "max_block_ms": settings.max_block_ms,
        "bootstrap_timeout_ms": max(settings.max_block_ms, 1000),
        "delivery_timeout_ms": settings.delivery_timeout_ms,
        "request_timeout_ms": min(10000, settings.delivery_timeout_ms),
        "reconnect_backoff_max_ms": 2000,
        "security_protocol": settings.security_protocol,
    }
    if settings.client_id:
        options["client_id"] = settings.client_id
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = secret_value(settings.sasl_password)
    if settings.security_protocol.endswith("SSL"):
        options["ssl_cafile"] = settings.ssl_cafile
        options["ssl_certfile"] = settings.ssl_certfile
        options["ssl_keyfile"] = settings.ssl_keyfile
        options["ssl_check_hostname"] = settings.ssl_check_hostname
    return options


class KafkaEventBroker(EventBroker):
    """Sends one record per message to ``topic``; ``flush`` confirms them in order."""

    Config: ClassVar[type[StrictConfig] | None] = KafkaBrokerConfig

    def __init__(self, settings: KafkaBrokerConfig) -> None:
        self.settings = settings
        self.topic = settings.topic
        self._kafka = require("kafka", "kafka")
        self._options = producer_options(settings)
        self._producer: Any = None
        self._futures: list[Any] = []
        self._lock = threading.RLock()
        environment = os.environ.get("RASA_ENVIRONMENT") or "RASA_ENVIRONMENT_NOT_SET"
        self._headers = [("RASA_ENVIRONMENT", environment.encode("utf-8"))]

    @classmethod
    def from_settings(cls, settings: Any) -> KafkaEventBroker:
        return cls(settings)

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """The one place kafka-python errors become broker errors."""
        errors = self._kafka.errors
        unavailable = tuple(
            getattr(errors, name)
            for name in ("NoBrokersAvailable", "KafkaConnectionError", "KafkaTimeoutError")
            if hasattr(errors, name)  # kafka-python 2.x and 3.x name them differently
        )
        try:
            yield
        except unavailable as exc:
            self._drop_producer()
            raise BrokerUnavailable(
                f"Kafka at {','.join(self.settings.url)} unavailable ({what})"
            ) from exc
        except errors.KafkaError as exc:
            self._drop_producer()
            raise BrokerError(f"Kafka {what} failed: {type(exc).__name__}: {exc}") from exc

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            with self._translate("connecting"):
                self._producer = self._kafka.KafkaProducer(**self._bounded(self._options))
        return self._producer

    def _left(self) -> float | None:
        """Seconds left before ``deadline`` (at least 0.1), or None without one."""
        return None if self.deadline is None else max(0.1, self.deadline - time.monotonic())

    def _bounded(self, options: dict[str, Any]) -> dict[str, Any]:
        """The producer options, with every blocking wait cut to what ``deadline`` leaves."""
        left = self._left()
        if left is None:
            return options
        ms = max(int(left * 1000), 100)
        keys = ("max_block_ms", "bootstrap_timeout_ms")
        return {**options, **{key: min(options[key], ms) for key in keys}}

    def publish(self, message: dict[str, Any]) -> None:
        self.publish_many([message])

    def publish_many(self, messages: Iterable[dict[str, Any]]) -> None:
        """Queue the messages; a failure confirms what it can and raises ``PublishError``."""
        by_sender = self.settings.partition_by_sender
        with self._lock:
            try:
                producer = self._ensure_producer()
                send, pending = producer.send, self._futures
                with self._translate("sending"):
                    partitions = None if by_sender else self._partitions(producer)
                    for message in messages:
                        sender = str(message["sender_id"]).encode("utf-8")
                        pending.append(
                            send(
                                self.topic,
                                value=encode_message(message),
                                key=sender if by_sender else None,
                                partition=None
                                if partitions is None
                                else partitions[zlib.crc32(sender) % len(partitions)],
                                headers=self._headers,
                            )
                        )
            except BrokerError as exc:
                confirmed = self._settle(timeout=2.0)
                raise PublishError(str(exc), confirmed=confirmed) from exc

    def _partitions(self, producer: Any) -> list[int]:
        """The topic's partitions (waits up to ``max_block_ms`` for metadata; may create it)."""
        partitions = producer.partitions_for(self.topic)
        if not partitions:
            raise BrokerUnavailable(f"Kafka topic {self.topic!r} has no partitions available")
        return sorted(partitions)

    def flush(self, timeout: float | None = None) -> None:
        """Wait for the broker to acknowledge everything sent; raise naming the first failure."""
        with self._lock:
            if not self._futures:
                return
            total = len(self._futures)
            left = self._left()
            if left is not None:  # the relay's deadline bounds an unbounded flush too
                timeout = left if timeout is None else min(timeout, left)
            confirmed = self._settle(timeout)
            if confirmed < total:
                raise PublishError(
                    f"Kafka confirmed {confirmed} of {total} messages sent to {self.topic!r}",
                    confirmed=confirmed,
                )

    def _settle(self, timeout: float | None) -> int:
        """Wait for pending sends; return how many leading ones succeeded, forget them all."""
        futures, self._futures = self._futures, []
        if not futures:
            return 0
        producer = self._producer
        if producer is not None:
            with suppress(self._kafka.errors.KafkaError):  # the futures tell what happened
                producer.flush(timeout=timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        confirmed = 0
        for future in futures:
            if not future.is_done:
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0.01)
                try:
                    future.get(timeout=remaining)
                except Exception:  # timeout or delivery error: stop at the first failure
                    break
            if future.failed():
                break
            confirmed += 1
        if confirmed < len(futures):
            self._drop_producer()
        return confirmed

    def is_ready(self) -> bool:
        """Whether the cluster answers for the topic (waits at most ``max_block_ms``).

        While another thread publishes, the answer is whether a producer is connected.
        """
        if not self._lock.acquire(blocking=False):
            return self._producer is not None
        try:
            producer = self._ensure_producer()
            with self._translate("checking readiness"):
                return bool(producer.partitions_for(self.topic))
        except BrokerError:
            return False
        finally:
            self._lock.release()

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with suppress(Exception):  # a broken producer may fail to close; drop it anyway
                producer.close(timeout=0)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None and self._futures:
                with suppress(Exception):
                    self._settle(timeout=5.0)
            self._drop_producer()

    def __repr__(self) -> str:
        return f"KafkaEventBroker(url={self.settings.url!r}, topic={self.topic!r})"
