"""Read-only readers for the layouts Rasa itself wrote, so a Rasa deployment can move over.

Rasa keeps one blob per conversation (rasa-compat.md §3):

- Redis: key ``tracker:<id>`` (``<P>:tracker:<id>`` with ``key_prefix: P``), value
  ``{"events": [...], "name": "<id>"}``;
- MongoDB: one document per conversation in ``conversations``, with an ``events`` array;
- DynamoDB: one item per conversation in ``states``, ``{sender_id, events: [...]}``, numbers
  as Decimals (read back as floats; integral values as ints).

Each reader is a ``TrackerStore`` that refuses writes, so ``eventstore migrate`` (and
``export``) read it like any store: seq is the event's index + 1, there is no position.
Select one with ``layout: rasa`` in the ``tracker_store:`` section. Rasa's SQL table is not
read here: ``eventstore db upgrade`` upgrades it in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, SecretStr

from eventstore.config import StrictConfig, parse_config, secret_value
from eventstore.drivers import require
from eventstore.errors import BackendUnavailable, ConfigError
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore

#: ``layout:`` values that select these readers (``eventstore`` is the native layout).
RASA_LAYOUTS = frozenset({"rasa"})


class RasaLayoutReader(TrackerStore):
    """Base of the readers: events of one conversation come from one blob; writes refused."""

    _cache: tuple[str, list[dict[str, Any]]] | None = None

    def _load(self, sender_id: str) -> list[dict[str, Any]] | None:
        """The conversation's event list as Rasa stored it, or None if there is none."""
        raise NotImplementedError

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

    def _session_start(self, sender_id: str) -> int:
        events = self._events(sender_id)
        for index in range(len(events) - 1, -1, -1):
            if events[index].get("event") == "session_started":
                return index + 1
        return 0

    def query(self, query: EventQuery) -> Iterator[StoredEvent]:
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

    def _append(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        raise ConfigError(f"{type(self).__name__} reads Rasa's layout and is read-only")

    def delete(self, sender_id: str) -> int:
        raise ConfigError(f"{type(self).__name__} reads Rasa's layout and is read-only")


# -- Redis ---------------------------------------------------------------------------------
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


@contextmanager
def _redis_errors() -> Iterator[None]:
    redis = require("redis", "redis")
    try:
        yield
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Rasa-layout Redis: {exc}") from exc


class RasaRedisReader(RasaLayoutReader):
    """Rasa's Redis layout: a JSON blob ``{"events", "name"}`` per ``[P:]tracker:<id>`` key."""

    Config: ClassVar[type[StrictConfig] | None] = RasaRedisConfig

    def __init__(self, client: Any, key_prefix: str | None = None) -> None:
        super().__init__()
        self.client = client
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
    def from_settings(cls, settings: Any, event_broker: Any = None) -> RasaRedisReader:
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
        else:
            client = redis.Redis(host=settings.host, port=settings.port, db=settings.db, **options)
        return cls(client, settings.key_prefix)

    def _load(self, sender_id: str) -> list[dict[str, Any]] | None:
        with _redis_errors():
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
        with _redis_errors():
            for key in self.client.scan_iter(match=pattern, count=1000):
                yield key[cut:].decode("utf-8")

    def close(self) -> None:
        self.client.close()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


# -- MongoDB -------------------------------------------------------------------------------
class RasaMongoConfig(StrictConfig):
    """Rasa's ``type: mongod`` keys (options go in the ``url``)."""

    host: str = Field(default="mongodb://localhost:27017", alias="url")
    db: str = "rasa"
    username: str | None = None
    password: SecretStr | None = None
    auth_source: str = "admin"
    collection: str = "conversations"
    timeout_ms: int = 10_000


@contextmanager
def _mongo_errors() -> Iterator[None]:
    pymongo = require("pymongo", "mongo")
    try:
        yield
    except pymongo.errors.PyMongoError as exc:
        raise BackendUnavailable(f"Rasa-layout MongoDB: {exc}") from exc


class RasaMongoReader(RasaLayoutReader):
    """Rasa's Mongo layout: one document per conversation, its events in an ``events`` array."""

    Config: ClassVar[type[StrictConfig] | None] = RasaMongoConfig

    def __init__(self, client: Any, db: str, collection: str) -> None:
        super().__init__()
        self.client = client
        self.collection = client[db][collection]

    @classmethod
    def from_settings(cls, settings: Any, event_broker: Any = None) -> RasaMongoReader:
        pymongo = require("pymongo", "mongo")
        options: dict[str, Any] = {"serverSelectionTimeoutMS": settings.timeout_ms}
        if settings.username is not None:
            options.update(
                username=settings.username,
                password=secret_value(settings.password),
                authSource=settings.auth_source,
            )
        client = pymongo.MongoClient(settings.host, **options)
        return cls(client, settings.db, settings.collection)

    def _load(self, sender_id: str) -> list[dict[str, Any]] | None:
        with _mongo_errors():
            doc = self.collection.find_one({"sender_id": sender_id}, {"events": 1})
            if doc is None and sender_id.isdigit():  # Rasa 1.x stored numeric ids as ints
                doc = self.collection.find_one({"sender_id": int(sender_id)}, {"events": 1})
        if doc is None:
            return None
        events = doc.get("events")
        return events if isinstance(events, list) else []

    def keys(self) -> Iterator[str]:
        """Every document's ``sender_id`` (projected; documents are not loaded whole)."""
        with _mongo_errors():
            for doc in self.collection.find({}, {"sender_id": 1, "_id": 0}):
                if doc.get("sender_id") is not None:
                    yield str(doc["sender_id"])

    def close(self) -> None:
        self.client.close()


# -- DynamoDB ------------------------------------------------------------------------------
class RasaDynamoConfig(StrictConfig):
    """Rasa's ``type: dynamo`` keys; ``endpoint_url`` and keys are for non-AWS endpoints."""

    table_name: str = Field("states", validation_alias=AliasChoices("table_name", "tablename"))
    region: str = "us-east-1"
    endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None


@contextmanager
def _dynamo_errors() -> Iterator[None]:
    botocore = require("botocore.exceptions", "dynamo")
    try:
        yield
    except (botocore.BotoCoreError, botocore.ClientError) as exc:
        raise BackendUnavailable(f"Rasa-layout DynamoDB: {exc}") from exc


def from_dynamo(value: Any) -> Any:
    """Undo Rasa's float -> Decimal: Decimals become floats (integral ones ints), recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


class RasaDynamoReader(RasaLayoutReader):
    """Rasa's Dynamo layout: one item ``{sender_id, events}`` per conversation."""

    Config: ClassVar[type[StrictConfig] | None] = RasaDynamoConfig

    def __init__(self, table: Any) -> None:
        super().__init__()
        self.table = table

    @classmethod
    def from_settings(cls, settings: Any, event_broker: Any = None) -> RasaDynamoReader:
        boto3 = require("boto3", "dynamo")
        resource = boto3.resource(
            "dynamodb",
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=secret_value(settings.aws_secret_access_key),
            aws_session_token=secret_value(settings.aws_session_token),
        )
        return cls(resource.Table(settings.table_name))

    def _load(self, sender_id: str) -> list[dict[str, Any]] | None:
        conditions = require("boto3.dynamodb.conditions", "dynamo")
        with _dynamo_errors():
            page = self.table.query(
                KeyConditionExpression=conditions.Key("sender_id").eq(sender_id),
                ScanIndexForward=False,
                Limit=1,
            )
        items = page.get("Items") or []
        if not items:
            return None
        events = from_dynamo(items[0].get("events") or [])
        for event in events:  # Rasa's timestamps are floats; keep them so
            if isinstance(event, dict) and isinstance(event.get("timestamp"), int):
                event["timestamp"] = float(event["timestamp"])
        return events if isinstance(events, list) else []

    def keys(self) -> Iterator[str]:
        """Ids from a paginated scan projecting ``sender_id`` (as Rasa lists them)."""
        seen_last: set[str] = set()
        args: dict[str, Any] = {"ProjectionExpression": "sender_id"}
        while True:
            with _dynamo_errors():
                page = self.table.scan(**args)
            current: set[str] = set()
            for item in page.get("Items", []):
                sid = str(item["sender_id"])
                if sid not in seen_last and sid not in current:  # 2.8 items share a sender
                    current.add(sid)
                    yield sid
            seen_last = current
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


READERS: dict[str, type[RasaLayoutReader]] = {
    "redis": RasaRedisReader,
    "mongod": RasaMongoReader,
    "dynamo": RasaDynamoReader,
}


def open_store(section: Mapping[str, Any] | None, where: str = "tracker_store") -> TrackerStore:
    """A store from a ``tracker_store:`` section; ``layout: rasa`` picks a Rasa-layout reader.

    Without ``layout`` (or with ``layout: eventstore``) this is ``create_tracker_store``.
    """
    from eventstore.factory import create_tracker_store
    from eventstore.registry import STORE_ALIASES

    if section is None:
        raise ConfigError(f"{where}: the tracker_store section is missing")
    settings = dict(section)
    layout = settings.pop("layout", None)
    if layout is None or str(layout).lower() == "eventstore":
        return create_tracker_store(settings)
    if str(layout).lower() not in RASA_LAYOUTS:
        raise ConfigError(f"{where}: unknown layout {layout!r} (known: eventstore, rasa)")
    type_name = str(settings.pop("store_type", None) or settings.pop("type", None) or "")
    settings.pop("type", None)
    key = STORE_ALIASES.get(type_name.lower(), type_name.lower())
    if key == "sql":
        raise ConfigError(
            f"{where}: a Rasa SQL database is upgraded in place with 'eventstore db upgrade'; "
            "then use it without 'layout: rasa'"
        )
    reader = READERS.get(key)
    if reader is None:
        raise ConfigError(
            f"{where}: layout: rasa reads types {', '.join(sorted(READERS))}, "
            f"not {type_name or 'an empty type'!r}"
        )
    config = reader.Config
    assert config is not None
    return reader.from_settings(parse_config(config, settings, where))
