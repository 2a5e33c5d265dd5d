"""The SQL store's connection to its database: engine setup, errors translated.

``SQLDatabase`` is shared by the store and the ``eventstore db`` commands: it checks the
driver, handles PostgreSQL's ``login_db``, sets SQLite up for concurrent writers (WAL, a
busy timeout, ``BEGIN IMMEDIATE`` for writes) and turns every driver error into an
eventstore error whose text holds no password.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import NullPool, StaticPool

from eventstore.config import secret_value
from eventstore.stores.sql.errors import translate
from eventstore.stores.sql.url import SQLConfig, build_url, require_driver, shown_url

logger = logging.getLogger(__name__)

#: Execution option that makes a SQLite transaction take the write lock at BEGIN.
WRITE_OPTION = "eventstore_write"
#: ``pool_pre_ping``: a pooled connection idle for longer than this many seconds is tested
#: before use; one checked in more recently is handed out as it is (no extra round trip).
PING_AFTER_IDLE = 1.0
_PG_DUPLICATE_DATABASE = "42P04"


class SQLDatabase:
    """An engine over the configured database, plus what safe error messages need."""

    def __init__(self, config: SQLConfig) -> None:
        self.config = config
        self.url: URL = build_url(config)
        require_driver(self.url)
        self.where = f"{self.url.get_backend_name()} database {shown_url(self.url)}"
        self._secret = secret_value(config.password) or self.url.password
        self.memory = self.url.get_backend_name() == "sqlite" and self.url.database in (
            None,
            "",
            ":memory:",
        )
        if config.login_db:
            self._create_database()
        self.engine: Engine = self._create_engine()

    def __repr__(self) -> str:
        return f"SQLDatabase(url={shown_url(self.url)!r})"

    def _create_engine(self) -> Engine:
        if self.url.get_backend_name() == "sqlite":
            options: dict[str, Any] = {
                "connect_args": {
                    "timeout": self.config.sqlite_busy_timeout,
                    "check_same_thread": False,
                }
            }
            if self.memory:
                options["poolclass"] = StaticPool
            engine = create_engine(self.url, **options)
            _setup_sqlite(engine, int(self.config.sqlite_busy_timeout * 1000), wal=not self.memory)
            return engine
        engine = create_engine(
            self.url,
            pool_size=self.config.pool_size,
            max_overflow=self.config.max_overflow,
            pool_timeout=self.config.pool_timeout,
            pool_recycle=self.config.pool_recycle,
        )
        if self.config.pool_pre_ping:
            _ping_when_idle(engine, PING_AFTER_IDLE)
        return engine

    def _create_database(self) -> None:
        """PostgreSQL ``login_db``: connect there and create the target database if missing."""
        target = self.url.database
        if self.url.get_backend_name() != "postgresql":
            logger.warning("login_db is only used with PostgreSQL; ignored for %s", self.where)
            return
        login_url = self.url.set(database=self.config.login_db)
        engine = create_engine(login_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with self.translate(f"creating database {target!r}"), engine.connect() as conn:
                found = conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target}
                ).scalar()
                if not found:
                    quoted = engine.dialect.identifier_preparer.quote(str(target))
                    logger.info("creating database %s via %s", target, shown_url(login_url))
                    try:
                        conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
                    except DBAPIError as exc:  # another process created it meanwhile
                        if getattr(exc.orig, "sqlstate", None) != _PG_DUPLICATE_DATABASE:
                            raise
        finally:
            engine.dispose()

    def translate(self, action: str) -> AbstractContextManager[None]:
        """Driver errors inside become ``BackendUnavailable`` naming ``action`` (``errors``)."""
        return translate(action, self.where, self._secret)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _ping_when_idle(engine: Engine, idle: float) -> None:
    """SQLAlchemy's pre-ping, only for connections idle longer than ``idle`` seconds.

    A connection that fails the ping is replaced by a fresh one (the pool's
    ``DisconnectionError`` protocol), so a restarted server is reconnected transparently;
    a busy pool, whose connections come straight back, pays no round trip per checkout.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["eventstore_checkin"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get("eventstore_checkin")
        if last is not None and time.monotonic() - last < idle:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"pre-ping failed: {exc}") from exc


def _setup_sqlite(engine: Engine, busy_ms: int, wal: bool) -> None:
    """WAL, a busy timeout, and transactions eventstore begins itself (IMMEDIATE to write)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the "begin" hook below emits BEGIN
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
