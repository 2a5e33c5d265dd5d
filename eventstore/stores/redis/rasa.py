"""Read-only reader for Rasa's Redis layout: key ``tracker:<id>`` (``<P>:tracker:<id>`` with
``key_prefix: P``), value ``{"events": [...], "name": "<id>"}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from eventstore.config import StrictConfig, secret_value
from eventstore.drivers import require
from eventstore.errors import BackendUnavailable, ConfigError
from eventstore.secrets import mask_url
from eventstore.stores.rasa_layout import RasaLayoutReader
from eventstore.stores.redis.errors import translate


class RasaRedisConfig(StrictConfig):
    """Rasa's ``type: redis`` keys (``url`` is the host, as in Rasa)."""

    host: str = Field(default="localhost", alias="url")
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: SecretStr | None = None
    key_prefix: str | None = None
    record_exp: float | None = None  # accepted for compatibility; reading ignores it
    use_ssl: bool = False
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_ca_certs: str | None = None
    socket_timeout: float = 10.0


class RasaRedisReader(RasaLayoutReader):
    """Rasa's Redis layout: a JSON blob ``{"events", "name"}`` per ``[P:]tracker:<id>`` key."""

    Config: ClassVar[type[StrictConfig] | None] = RasaRedisConfig

    def __init__(
        self,
        client: Any,
        key_prefix: str | None = None,
        *,
        where: str = "localhost:6379",
        password: str | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self._where, self._password = where, password
        # as Rasa: an alphanumeric prefix P gives "P:tracker:", anything else "tracker:"
        if key_prefix and key_prefix.isalnum():
            self.prefix = f"{key_prefix}:tracker:"
        elif key_prefix:
            raise ConfigError(
                f"tracker_store: key_prefix {key_prefix!r} must be alphanumeric "
                "(Rasa ignores other prefixes; write none to read 'tracker:<id>')"
            )
        else:
            self.prefix = "tracker:"

    @classmethod
    def from_settings(cls, settings: Any) -> RasaRedisReader:
        redis = require("redis", "redis")
        options: dict[str, Any] = {
            "username": settings.username,
            "password": secret_value(settings.password),
            "socket_timeout": settings.socket_timeout,
            "socket_connect_timeout": settings.socket_timeout,
        }
        if settings.use_ssl:
            options.update(
                ssl=True,
                ssl_keyfile=settings.ssl_keyfile,
                ssl_certfile=settings.ssl_certfile,
                ssl_ca_certs=settings.ssl_ca_certs,
            )
        if "://" in settings.host:  # a redis:// URL (an extension: Rasa takes a host name)
            options = {k: v for k, v in options.items() if v is not None}
            client = redis.Redis.from_url(settings.host, **options)
            where, password = mask_url(settings.host), urlsplit(settings.host).password
        else:
            client = redis.Redis(host=settings.host, port=settings.port, db=settings.db, **options)
            where, password = f"{settings.host}:{settings.port}", None
        password = secret_value(settings.password) or password
        return cls(client, settings.key_prefix, where=where, password=password)

    def _translate(self, doing: str) -> AbstractContextManager[None]:
        """The store's translator: driver errors name the server and ``doing``, no password."""
        return translate(f"{doing} (Rasa's layout)", self._where, self._password)

    def _load(self, sender_id: str) -> list[dict[str, Any]] | None:
        with self._translate(f"reading {sender_id!r}"):
            raw = self.client.get(self.prefix + sender_id)
        if raw is None:
            return None
        try:
            blob = json.loads(raw)
        except ValueError as exc:
            raise BackendUnavailable(
                f"Rasa-layout Redis: key {self.prefix + sender_id!r} is not JSON"
            ) from exc
        events = blob.get("events") if isinstance(blob, dict) else None
        return events if isinstance(events, list) else []

    def keys(self) -> Iterator[str]:
        """Ids from a SCAN over ``[P:]tracker:*`` (never ``KEYS``, which blocks Redis)."""
        pattern = _glob_escape(self.prefix) + "*"
        cut = len(self.prefix.encode("utf-8"))
        with self._translate("listing conversations"):
            for key in self.client.scan_iter(match=pattern, count=1000):
                yield key[cut:].decode("utf-8")

    def close(self) -> None:
        self.client.close()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
