"""SQL broker: message bodies as rows of a table of its own (Rasa's ``type: sql``).

Features: one transaction per batch (all rows of a ``publish_many`` or none); any
SQLAlchemy dialect the SQL store supports (SQLite, PostgreSQL, MySQL/MariaDB, Oracle).
The table is ``event_broker_events`` (``id``, ``sender_id``, ``data``), not Rasa's
``events``, so the broker can share the tracker store's database.
Connection string: ``url`` used verbatim when it holds ``://``, else built from
``dialect``, ``username``, ``password``, ``url`` (host), ``port`` and ``db``.
Options: ``dialect`` (sqlite), ``url``, ``port``, ``db`` (events.db), ``username``,
``password``, ``query``, ``table_name`` (event_broker_events).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from pydantic import SecretStr, field_validator
from sqlalchemy.dialects import mysql

from brokers.base import EventBroker, message_json
from eventstore.config import StrictConfig, secret_value
from eventstore.errors import BrokerError, BrokerUnavailable, ConfigError, PublishError
from eventstore.stores.sql.url import require_driver, shown_url, with_driver


class SQLBrokerConfig(StrictConfig):
    """``event_broker: {type: sql}`` keys (Rasa's, plus ``query`` and ``table_name``)."""

    dialect: str = "sqlite"
    url: str | None = None
    port: int | None = None
    db: str = "events.db"
    username: str | None = None
    password: SecretStr | None = None
    query: dict[str, str] = {}
    table_name: str = "event_broker_events"

    @field_validator("table_name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError("must be a plain identifier")
        return value


def build_url(settings: SQLBrokerConfig) -> sa.URL:
    """The SQLAlchemy URL for ``settings``, as Rasa builds it, with installed drivers."""
    if settings.url and "://" in settings.url:
        try:
            url = sa.make_url(settings.url)
        except (sa.exc.ArgumentError, ValueError):  # the message would echo the password
            raise ConfigError("event_broker: key 'url' is not a valid database URL") from None
    else:
        host, port = settings.url, settings.port
        if host and ":" in host and port is None:
            host, _, raw = host.rpartition(":")
            port = int(raw) if raw.isdigit() else None
        url = sa.URL.create(
            settings.dialect,
            username=settings.username,
            password=secret_value(settings.password),
            host=host,
            port=port,
            database=settings.db,
            query=settings.query,
        )
    url = with_driver(url)
    require_driver(url)
    return url


def broker_table(metadata: sa.MetaData, name: str = "event_broker_events") -> sa.Table:
    """The broker's table: autoincrement ``id``, ``sender_id``, ``data`` (the JSON body)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, sa.Sequence(f"{name}_seq", optional=True), primary_key=True),
        sa.Column("sender_id", sa.String(255), nullable=False, index=True),
        sa.Column("data", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")),
    )


class SQLEventBroker(EventBroker):
    """Inserts one row per message, one transaction per ``publish_many``."""

    Config: ClassVar[type[StrictConfig] | None] = SQLBrokerConfig

    def __init__(self, url: str | sa.URL, table_name: str = "event_broker_events") -> None:
        self.url = sa.make_url(url) if isinstance(url, str) else url
        self.metadata = sa.MetaData()
        self.table = broker_table(self.metadata, table_name)
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> SQLEventBroker:
        return cls(build_url(settings), table_name=settings.table_name)

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """The one place database errors become broker errors (no password in messages)."""
        try:
            yield
        except sa.exc.OperationalError as exc:
            raise BrokerUnavailable(
                f"SQL broker: {what} failed: {shown_url(self.url)} unreachable"
            ) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise BrokerError(
                f"SQL broker: {what} failed on {shown_url(self.url)}: {type(exc).__name__}"
            ) from exc

    @property
    def engine(self) -> sa.Engine:
        """The engine, created (and the table with it) on first use."""
        with self._lock:
            if self._engine is None:
                with self._translate("connecting"):
                    engine = sa.create_engine(self.url, pool_pre_ping=True)
                    try:
                        self.metadata.create_all(engine, checkfirst=True)
                    except BaseException:
                        engine.dispose()
                        raise
                self._engine = engine
            return self._engine

    def publish(self, message: dict[str, Any]) -> None:
        self.publish_many([message])

    def publish_many(self, messages: Iterable[dict[str, Any]]) -> None:
        rows = [{"sender_id": m["sender_id"], "data": message_json(m)} for m in messages]
        if not rows:
            return
        try:
            with self._translate(f"inserting {len(rows)} messages"), self.engine.begin() as conn:
                conn.execute(self.table.insert(), rows)
        except BrokerError as exc:
            raise PublishError(str(exc), confirmed=0) from exc

    def is_ready(self) -> bool:
        try:
            with self._translate("ping"), self.engine.connect() as conn:
                conn.execute(sa.select(sa.literal(1)))
        except BrokerError:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def __repr__(self) -> str:
        return f"SQLEventBroker(url={shown_url(self.url)!r})"
