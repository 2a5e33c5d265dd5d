"""RabbitMQ broker via pika (Rasa's ``type: pika``, alias ``rabbitmq``).

Features: a **fanout** exchange (used as it exists, else declared as Rasa 3.6 declares it:
non-durable unless ``exchange_durable``) with durable queues bound to it; persistent
messages (``delivery_mode=2``) as UTF-8 JSON with ``app_id`` = ``$RASA_ENVIRONMENT``;
a transactional channel: a batch is published, then committed with one ``tx.commit``
(RabbitMQ answers ``commit-ok`` only once every message of it is confirmed, i.e. durable
in every queue), so ``publish_many`` costs one round trip per chunk instead of one per
message; lazy connection and reconnection on the next call after a failure, trying
``connection_attempts`` times ``retry_delay_in_seconds`` apart.
Connection string: ``url`` is a host name or an ``amqp://`` / ``amqps://`` URL (its user,
password, port, virtual host and query options win over the separate keys).
TLS: an ``amqps://`` URL, or the environment variables ``RABBITMQ_SSL_CLIENT_CERTIFICATE``
and ``RABBITMQ_SSL_CLIENT_KEY`` (as in Rasa), with optional ``RABBITMQ_SSL_CA_FILE`` and
``RABBITMQ_SSL_KEY_PASSWORD``.
Options: ``url`` (localhost), ``username``, ``password``, ``port`` (5672), ``queues``
(list or string; ``["rasa_core_events"]``), ``exchange_name`` (``rasa-exchange``),
``connection_attempts`` (20), ``retry_delay_in_seconds`` (5),
``should_keep_unpublished_messages`` and ``raise_on_failure`` (accepted for Rasa
compatibility; unpublished events always stay in the store's outbox), ``message_format``
(``eventstore``; ``rasa``: Rasa's exact body and properties), ``exchange_durable`` (false).

A pika ``BlockingConnection`` belongs to one thread: the store's relay thread publishes;
the broker serialises every call with a lock so other threads never interleave with it.
"""

from __future__ import annotations

import copy
import json
import os
import ssl
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from brokers.base import EventBroker, encode_message
from eventstore.config import StrictConfig, secret_value
from eventstore.drivers import require
from eventstore.errors import (
    BrokerAuthenticationError,
    BrokerError,
    BrokerUnavailable,
    ConfigError,
    PublishError,
)

DEFAULT_QUEUE = "rasa_core_events"


class PikaBrokerConfig(StrictConfig):
    """``event_broker: {type: pika}`` keys and Rasa's defaults."""

    url: str = "localhost"
    username: str | None = None
    password: SecretStr | None = None
    port: int = 5672
    queues: list[str] = Field(default_factory=lambda: [DEFAULT_QUEUE])
    exchange_name: str = "rasa-exchange"
    connection_attempts: int = Field(default=20, ge=1)
    retry_delay_in_seconds: float = Field(default=5.0, ge=0)
    should_keep_unpublished_messages: bool = True
    raise_on_failure: bool = False
    #: ``eventstore``: compact UTF-8 JSON with ``seq``/``position``; ``rasa``: Rasa's body
    #: and properties exactly, for consumers with strict schemas.
    message_format: Literal["eventstore", "rasa"] = "eventstore"
    #: Durability of an exchange this broker creates (an existing one is used as it is).
    #: Rasa 3.6 declares ``rasa-exchange`` non-durable and fails on any other declaration.
    exchange_durable: bool = False

    @field_validator("queues", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("queues")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value or any(not q for q in value):
            raise ValueError("must name at least one non-empty queue")
        return value


def connection_parameters(settings: PikaBrokerConfig) -> Any:
    """pika ``ConnectionParameters`` for ``settings`` (Rasa's URL rules, TLS from env)."""
    pika = require("pika", "rabbitmq")
    env_ssl = _ssl_context_from_env()
    if "://" in settings.url:
        parts = urlsplit(settings.url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ConfigError(
                f"event_broker: key 'url' must be a host or an amqp(s):// URL, "
                f"got scheme {parts.scheme!r}"
            )
        try:
            params = pika.URLParameters(settings.url)
        except Exception as exc:  # pika raises ValueError or its own errors
            raise ConfigError(f"event_broker: key 'url' is not a valid AMQP URL: {exc}") from None
        if parts.username is None and settings.username:
            params.credentials = pika.PlainCredentials(
                settings.username, secret_value(settings.password) or ""
            )
        if parts.port is None and parts.scheme == "amqp":
            params.port = settings.port
        if "connection_attempts" not in (parts.query or ""):
            params.connection_attempts = settings.connection_attempts
        if "retry_delay" not in (parts.query or ""):
            params.retry_delay = settings.retry_delay_in_seconds
        if env_ssl is not None:
            params.ssl_options = pika.SSLOptions(env_ssl, params.host)
        return params
    host, port = settings.url, settings.port
    kwargs: dict[str, Any] = {}
    if settings.username:
        kwargs["credentials"] = pika.PlainCredentials(
            settings.username, secret_value(settings.password) or ""
        )
    if env_ssl is not None:
        kwargs["ssl_options"] = pika.SSLOptions(env_ssl, host)
    return pika.ConnectionParameters(
        host=host,
        port=port,
        connection_attempts=settings.connection_attempts,
        retry_delay=settings.retry_delay_in_seconds,
        socket_timeout=10,
        blocked_connection_timeout=60,
        **kwargs,
    )


def _ssl_context_from_env() -> ssl.SSLContext | None:
    """A client TLS context when Rasa's RabbitMQ certificate variables are set."""
    cert = os.environ.get("RABBITMQ_SSL_CLIENT_CERTIFICATE")
    key = os.environ.get("RABBITMQ_SSL_CLIENT_KEY")
    if not (cert and key):
        return None
    context = ssl.create_default_context(cafile=os.environ.get("RABBITMQ_SSL_CA_FILE"))
    try:
        context.load_cert_chain(cert, key, password=os.environ.get("RABBITMQ_SSL_KEY_PASSWORD"))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"RabbitMQ TLS client certificate cannot be loaded: {exc}") from None
    return context


class PikaEventBroker(EventBroker):
    """Publishes to a fanout exchange in transactions, one message per event."""

    Config: ClassVar[type[StrictConfig] | None] = PikaBrokerConfig
    #: messages per ``tx.commit``: a failure re-publishes at most this many confirmed ones
    COMMIT_EVERY: ClassVar[int] = 500

    def __init__(self, settings: PikaBrokerConfig) -> None:
        self.settings = settings
        self.exchange = settings.exchange_name
        self.queues = list(settings.queues)
        self._pika = require("pika", "rabbitmq")
        self._params = connection_parameters(settings)
        self._connection: Any = None
        self._channel: Any = None
        self._lock = threading.RLock()
        self._properties = self._pika.BasicProperties(
            delivery_mode=2,
            content_type="application/json",
            app_id=os.environ.get("RASA_ENVIRONMENT"),
        )

    @classmethod
    def from_settings(cls, settings: Any) -> PikaEventBroker:
        return cls(settings)

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """The one place pika errors become broker errors; a broken link is dropped."""
        exceptions = self._pika.exceptions
        try:
            yield
        except exceptions.ChannelClosedByBroker as exc:  # e.g. a queue refused a message
            self._drop_connection()
            raise BrokerError(
                f"RabbitMQ closed the channel ({what}): {exc.reply_code} {exc.reply_text}"
            ) from exc
        except (exceptions.AMQPError, OSError) as exc:
            self._drop_connection()
            raise BrokerUnavailable(
                f"RabbitMQ at {self._params.host}:{self._params.port} unavailable "
                f"({what}): {type(exc).__name__}"
            ) from exc

    def _connect(self, params: Any) -> Any:
        """A connection, trying ``connection_attempts`` times ``retry_delay`` apart.

        The attempts are made here, one pika attempt each, so that refused credentials
        stop them at once (pika would retry those too) and ``deadline`` bounds them all.
        """
        exceptions = self._pika.exceptions
        refused = (
            exceptions.ProbableAuthenticationError,
            exceptions.AuthenticationError,
            exceptions.ProbableAccessDeniedError,
        )
        attempts = max(1, int(params.connection_attempts))
        for attempt in range(1, attempts + 1):
            once = copy.copy(params)
            once.connection_attempts, once.retry_delay = 1, 0
            if self.deadline is not None:  # no socket wait past the deadline either
                left = max(0.1, self.deadline - time.monotonic())
                once.socket_timeout = min(once.socket_timeout or left, left)
                once.stack_timeout = min(once.stack_timeout or left, left)
            try:
                return self._pika.BlockingConnection(once)
            except refused as exc:
                raise BrokerAuthenticationError(
                    f"RabbitMQ at {params.host}:{params.port} refused the credentials of user "
                    f"{params.credentials.username!r} ({type(exc).__name__}); fix them in "
                    "endpoints.yml: retrying cannot help"
                ) from exc
            except (exceptions.AMQPError, OSError):
                past_deadline = (
                    self.deadline is not None
                    and time.monotonic() + params.retry_delay >= self.deadline
                )
                if attempt == attempts or past_deadline:
                    raise
                time.sleep(params.retry_delay)
        raise AssertionError("unreachable")

    def _ensure_channel(self, params: Any = None) -> Any:
        """The open transactional channel, connecting and declaring the topology if needed."""
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._drop_connection()
        with self._translate("connecting"):
            connection = self._connect(params or self._params)
            try:
                channel = self._exchange_channel(connection)
                for queue in self.queues:
                    channel.queue_declare(queue, durable=True)
                    channel.queue_bind(queue, self.exchange, routing_key="")
                channel.tx_select()  # declarations are not transactional; publishes are
            except BaseException:
                _close_quietly(connection)
                raise
        self._connection, self._channel = connection, channel
        return channel

    def _exchange_channel(self, connection: Any) -> Any:
        """A channel on which the exchange exists: used as declared, or declared here.

        A passive declare first, so an exchange a Rasa pod declared (non-durable) or an
        operator declared (durable) is used as it is, never redeclared with other
        arguments (RabbitMQ would close the channel: 406 PRECONDITION_FAILED). A missing
        one is declared as Rasa declares it (fanout, ``exchange_durable``).
        """
        closed = self._pika.exceptions.ChannelClosedByBroker
        for _ in range(2):
            channel = connection.channel()
            try:
                channel.exchange_declare(self.exchange, passive=True)
                return channel
            except closed as exc:
                if exc.reply_code != 404:
                    raise
            channel = connection.channel()
            try:
                channel.exchange_declare(
                    self.exchange, exchange_type="fanout", durable=self.settings.exchange_durable
                )
                return channel
            except closed as exc:  # someone declared it otherwise meanwhile: use theirs
                if exc.reply_code != 406:
                    raise
        raise BrokerError(f"RabbitMQ exchange {self.exchange!r} keeps changing; try again")

    def _encode(self, message: dict[str, Any]) -> tuple[bytes, Any]:
        """The body and properties of one message, in the configured format."""
        if self.settings.message_format == "eventstore":
            return encode_message(message), self._properties
        event = {k: v for k, v in message.items() if k not in ("seq", "position")}
        properties = self._pika.BasicProperties(  # what Rasa 3.6's aio-pika message carries
            app_id=os.environ.get("RASA_ENVIRONMENT"),
            delivery_mode=2,
            headers={},
            message_id=uuid.uuid4().hex,
            priority=0,
        )
        return json.dumps(event).encode("utf-8"), properties

    def publish(self, message: dict[str, Any]) -> None:
        self.publish_many([message])

    def publish_many(self, messages: Iterable[dict[str, Any]]) -> None:
        """Publish in order, ``COMMIT_EVERY`` messages per transaction, one wait per commit.

        RabbitMQ keeps a transaction's messages until ``tx.commit`` and discards them if
        the channel closes first, so on a failure exactly the committed chunks count as
        confirmed (``PublishError.confirmed``); the rest is published again by the relay.
        Only a chunk whose ``commit-ok`` was lost on the way back can arrive twice.
        """
        bodies = [self._encode(message) for message in messages]  # fail before sending
        committed = 0
        with self._lock:
            try:
                channel = self._ensure_channel()
                publish = channel.basic_publish
                with self._translate("publishing"), self._discard_on_error():
                    for start in range(0, len(bodies), self.COMMIT_EVERY):
                        chunk = bodies[start : start + self.COMMIT_EVERY]
                        for body, properties in chunk:
                            publish(self.exchange, "", body, properties)
                        self._commit(channel)
                        committed += len(chunk)
            except BrokerAuthenticationError:
                raise  # nothing was sent (it fails while connecting); retrying cannot help
            except BrokerError as exc:
                raise PublishError(str(exc), confirmed=committed) from exc

    def _commit(self, channel: Any) -> None:
        """Commit the channel's open transaction; returns once RabbitMQ confirmed it."""
        channel.tx_commit()

    @contextmanager
    def _discard_on_error(self) -> Iterator[None]:
        """Anything escaping mid-chunk closes the link, so RabbitMQ drops the open
        transaction and no half chunk is committed with a later one."""
        try:
            yield
        except BaseException:
            self._drop_connection()
            raise

    def idle(self) -> None:
        """Serve heartbeats while nothing is published, so the broker keeps the link."""
        with self._lock:
            if self._connection is None or not self._connection.is_open:
                return
            try:
                with self._translate("heartbeat"):
                    self._connection.process_data_events(time_limit=0)
            except BrokerError:
                pass  # dropped; the next publish reconnects

    def is_ready(self) -> bool:
        """Connected, or able to connect at the first attempt; never waits for a publish.

        While another thread publishes, the answer is whether its channel is open.
        """
        if not self._lock.acquire(blocking=False):
            channel = self._channel
            return channel is not None and bool(channel.is_open)
        try:
            once = copy.copy(self._params)
            once.connection_attempts, once.retry_delay = 1, 0
            self._ensure_channel(once)
        except BrokerAuthenticationError:
            raise  # not a matter of waiting: say it
        except BrokerError:
            return False
        finally:
            self._lock.release()
        return True

    def _drop_connection(self) -> None:
        if self._connection is not None:
            _close_quietly(self._connection)
        self._connection = None
        self._channel = None

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    def __repr__(self) -> str:
        return (
            f"PikaEventBroker(host={self._params.host!r}, port={self._params.port}, "
            f"exchange={self.exchange!r}, queues={self.queues!r})"
        )


def _close_quietly(connection: Any) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # a broken link cannot be closed cleanly; drop it
        pass
