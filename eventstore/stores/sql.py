"""SQL store on SQLAlchemy 2 Core: Rasa's ``events`` table plus ``seq``; ``id`` is the position.

Features: the full store contract, global positions (``events.id``), a durable outbox
(``event_outbox``), Alembic migrations, reading databases Rasa wrote (after
``eventstore db upgrade``). Dialects: sqlite (default, file ``rasa.db``), postgresql
(psycopg 3), mysql/mariadb (pymysql), oracle (oracledb).

Connection string: ``url: postgresql://user:pw@host:5432/db`` (a full URL), or Rasa's keys
``dialect``, ``url`` (host or ``host:port``), ``port``, ``db``, ``username``, ``password``,
``login_db`` (PostgreSQL: connect there and create ``db`` if missing), ``query``.

Options: ``pool_size``, ``max_overflow``, ``pool_timeout``, ``pool_recycle``,
``pool_pre_ping``, ``sqlite_busy_timeout`` (see ``SQLConfig``).

An append is one transaction: read the sender's max(seq), check ``expected_version``,
insert every row in one executemany (plus the outbox rows), commit. The unique
(sender_id, seq) index turns a lost race into ``ConcurrencyError`` (or an internal retry
when no version was given). SQLite files run in WAL mode and appends take the write lock
up front (``BEGIN IMMEDIATE``), so concurrent writers queue instead of failing.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    delete,
    false,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from eventstore.config import StrictConfig
from eventstore.errors import (
    BackendUnavailable,
    ConcurrencyError,
)
from eventstore.events import MAX_EVENT_BYTES, action_name, intent_name
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.stores.sql_engine import WRITE_OPTION, SQLDatabase
from eventstore.stores.sql_migrate import ensure_schema
from eventstore.stores.sql_schema import event_outbox, events
from eventstore.stores.sql_url import SQLConfig, masked
from eventstore.tracker import Tracker

#: Rows fetched per round trip when streaming ``query`` and ``keys`` results.
STREAM_BATCH = 500
# Driver error codes: unique violation, and transient conflicts worth retrying.
_PG_UNIQUE = "23505"
_PG_RETRY = {"40001", "40P01"}  # serialization failure, deadlock
_MYSQL_UNIQUE = 1062
_MYSQL_RETRY = {1213, 1205}  # deadlock, lock wait timeout
_ORA_UNIQUE = "ORA-00001"
#: First key of the PostgreSQL advisory locks that serialise writers of one conversation.
_PG_LOCK_CLASS = 0x65767473
_MAX_INT64 = 2**63 - 1


class _Retry(Exception):
    """An append lost a race that is safe to run again."""


class SQLTrackerStore(TrackerStore):
    """Conversations as rows of Rasa's ``events`` table, one row per event."""

    Config: ClassVar[type[StrictConfig] | None] = SQLConfig
    has_positions: ClassVar[bool] = True
    supports_outbox: ClassVar[bool] = True

    def __init__(
        self,
        config: SQLConfig | None = None,
        event_broker: Any = None,
        *,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_attempts: int = 100,
    ) -> None:
        self.config = config if config is not None else SQLConfig()
        super().__init__(event_broker, max_event_bytes, self.config.tracker_cache_size)
        self.max_attempts = max_attempts
        self.db = SQLDatabase(self.config)
        self.url: URL = self.db.url
        self.engine: Engine = self.db.engine
        #: Serialises every operation on an in-memory SQLite database (one shared connection).
        self._serial: threading.RLock | None = threading.RLock() if self.db.memory else None
        try:
            with self.db.translate("preparing the schema"):
                ensure_schema(self.engine, self.db.where)
        except BaseException:
            self.db.dispose()
            raise
        if self.engine.dialect.name in ("mysql", "mariadb"):
            # MariaDB >= 10.3 has sequences, and SQLAlchemy would then use the Oracle-only
            # optional ``events_seq``; ids come from AUTO_INCREMENT, as in Rasa's table.
            self.engine.dialect.supports_sequences = False

    @classmethod
    def from_settings(cls, settings: Any, event_broker: Any = None) -> SQLTrackerStore:
        return cls(settings, event_broker)

    @classmethod
    def from_url(cls, url: str, event_broker: Any = None, **options: Any) -> SQLTrackerStore:
        """A store over the database at ``url`` (``sqlite:///file.db``, ``postgresql://...``)."""
        return cls(SQLConfig(url=url, **options), event_broker)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={masked(self.url)!r})"

    # -- connections -------------------------------------------------------------------
    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[Connection]:
        """A connection in a transaction, committed on success (rolled back on error)."""
        if self._serial is not None:
            self._serial.acquire()
        try:
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        finally:
            if self._serial is not None:
                self._serial.release()

    # -- append --------------------------------------------------------------------------
    def _rows(self, events_: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        # names already passed validate_event: at most 255 characters, no NUL, valid unicode
        for data in events_:
            intent, name = intent_name(data), action_name(data)
            rows.append(
                {
                    "type_name": data["event"],
                    "timestamp": float(data["timestamp"]),
                    "intent_name": intent,
                    "action_name": name,
                    "data": json.dumps(data),
                }
            )
        return rows

    def _append(
        self, sender_id: str, events_: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        return self._write(sender_id, events_, expected_version, replace=False)

    def _replace(
        self, sender_id: str, events_: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        """Delete the log and store ``events_`` from seq 1, in one transaction."""
        return self._write(sender_id, events_, expected_version, replace=True)

    def _write(
        self,
        sender_id: str,
        events_: list[dict[str, Any]],
        expected_version: int | None,
        replace: bool,
    ) -> list[StoredEvent]:
        """Append (or replace) with internal retries of lost races and deadlocks."""
        rows = self._rows(events_)
        for attempt in range(self.max_attempts):
            try:
                with self.db.translate(f"writing to {sender_id!r}"):
                    return self._append_once(sender_id, events_, rows, expected_version, replace)
            except _Retry:
                _backoff(attempt)
        raise BackendUnavailable(
            f"appending to {sender_id!r} on {self.db.where} lost {self.max_attempts} races "
            "in a row; try again"
        )

    def _append_once(
        self,
        sender_id: str,
        events_: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        expected_version: int | None,
        replace: bool = False,
    ) -> list[StoredEvent]:
        try:
            with self._connect(write=True) as conn:
                current = self._lock_version(conn, sender_id)
                if expected_version is not None and expected_version != current:
                    raise ConcurrencyError(sender_id, expected_version, current)
                if replace:
                    self._delete_rows(conn, sender_id)
                    current = 0
                params = [
                    {**row, "sender_id": sender_id, "seq": current + offset}
                    for offset, row in enumerate(rows, start=1)
                ]
                ids = self._insert(conn, sender_id, current, params) if params else []
                if self.uses_outbox and params:
                    conn.execute(
                        insert(event_outbox),
                        [
                            {"event_id": i, "sender_id": sender_id, "seq": p["seq"]}
                            for i, p in zip(ids, params, strict=True)
                        ],
                    )
        except DBAPIError as exc:
            if _is_unique_violation(exc):
                if expected_version is not None:
                    raise ConcurrencyError(sender_id, expected_version, None) from exc
                raise _Retry from exc
            if _is_transient(exc):
                raise _Retry from exc
            raise
        return [
            StoredEvent(sender_id, p["seq"], data, position)
            for p, data, position in zip(params, events_, ids, strict=True)
        ]

    def _insert(
        self, conn: Connection, sender_id: str, current: int, params: list[dict[str, Any]]
    ) -> list[int]:
        """Insert the rows in one executemany and return their ids in seq order.

        The ids of a batch are read back by (sender_id, seq) (the writer holds the
        conversation): with psycopg that is about twice as fast as an INSERT .. RETURNING
        batch in "insertmanyvalues" form, and it works on every dialect.
        """
        if len(params) == 1 and conn.dialect.insert_returning:
            stmt = insert(events).returning(events.c.id)
            return list(conn.execute(stmt, params).scalars())
        conn.execute(insert(events), params)
        return list(
            conn.execute(
                select(events.c.id)
                .where(events.c.sender_id == sender_id, events.c.seq > current)
                .order_by(events.c.seq)
            ).scalars()
        )

    @classmethod
    def _lock_version(cls, conn: Connection, sender_id: str) -> int:
        """The conversation's version, read so that other writers of it wait for this one.

        PostgreSQL: a transaction advisory lock on the sender id; MySQL/MariaDB: a locking
        read of the last row (its next-key lock also blocks inserts after it); SQLite: the
        transaction already holds the database's write lock (``BEGIN IMMEDIATE``). Without
        it, an append that read the version just before a replace or delete committed
        would add its events after a gap.
        """
        dialect = conn.dialect.name
        if dialect == "postgresql":
            key = func.hashtext(literal(sender_id, String))
            conn.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_CLASS, key)))
        elif dialect in ("mysql", "mariadb"):
            last = (
                select(events.c.seq)
                .where(events.c.sender_id == sender_id)
                .order_by(events.c.seq.desc())
                .limit(1)
                .with_for_update()
            )
            return int(conn.execute(last).scalar() or 0)
        return cls._max_seq(conn, sender_id)

    @staticmethod
    def _max_seq(conn: Connection, sender_id: str) -> int:
        stmt = select(func.max(events.c.seq)).where(events.c.sender_id == sender_id)
        return int(conn.execute(stmt).scalar() or 0)

    # -- reads ---------------------------------------------------------------------------
    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        stmt = (
            select(events.c.data)
            .where(events.c.sender_id == sender_id, events.c.seq > after)
            .order_by(events.c.seq)
        )
        with self.db.translate(f"reading {sender_id!r}"), self._connect() as conn:
            rows = conn.execute(stmt).scalars().all()
        return [json.loads(row) for row in rows]

    def version(self, sender_id: str) -> int:
        with self.db.translate(f"reading the version of {sender_id!r}"), self._connect() as conn:
            return self._max_seq(conn, sender_id)

    def _session_start(self, sender_id: str) -> int:
        stmt = select(func.max(events.c.seq)).where(
            events.c.sender_id == sender_id, events.c.type_name == "session_started"
        )
        with self.db.translate(f"reading the session of {sender_id!r}"), self._connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def _load_session(self, sender_id: str) -> Tracker | None:
        """The current session in one query: rows from the last ``session_started`` on."""
        stmt = session_statement(sender_id)
        with self.db.translate(f"reading {sender_id!r}"), self._connect() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            return None
        data = [json.loads(row.data) for row in rows]
        return Tracker.from_events(sender_id, data, version=int(rows[-1].seq))

    def keys(self) -> Iterator[str]:
        stmt = select(events.c.sender_id).distinct()
        for row in self._stream(stmt, "listing conversations"):
            yield row.sender_id

    def query(self, query: EventQuery) -> Iterator[StoredEvent]:
        stmt = query_statement(query)
        for row in self._stream(stmt, "querying events"):
            yield StoredEvent(row.sender_id, row.seq, json.loads(row.data), row.id)

    def _stream(self, stmt: Select[Any], action: str) -> Iterator[Any]:
        """Rows of ``stmt`` fetched in batches (a server-side cursor where the driver has one)."""
        with self.db.translate(action), self._connect() as conn:
            if self.db.memory:  # one shared connection: do not hold it while the caller iterates
                rows = conn.execute(stmt).all()
            else:
                result = conn.execution_options(yield_per=STREAM_BATCH).execute(stmt)
                try:
                    yield from result
                finally:  # a consumer that stops early: end the cursor before the rollback
                    result.close()
                return
        yield from rows

    # -- delete and outbox ---------------------------------------------------------------
    def delete(self, sender_id: str) -> int:
        for attempt in range(self.max_attempts):
            try:
                with self.db.translate(f"deleting {sender_id!r}"):
                    try:
                        with self._connect(write=True) as conn:
                            self._lock_version(conn, sender_id)
                            return self._delete_rows(conn, sender_id)
                    except DBAPIError as exc:
                        if _is_transient(exc):  # a deadlock with a concurrent append
                            raise _Retry from exc
                        raise
            except _Retry:
                _backoff(attempt)
        raise BackendUnavailable(f"deleting {sender_id!r} on {self.db.where} kept deadlocking")

    @staticmethod
    def _delete_rows(conn: Connection, sender_id: str) -> int:
        """Delete the conversation's events and their pending outbox rows."""
        conn.execute(delete(event_outbox).where(event_outbox.c.sender_id == sender_id))
        return int(conn.execute(delete(events).where(events.c.sender_id == sender_id)).rowcount)

    def outbox_pending(self, limit: int = 500) -> list[StoredEvent]:
        stmt = (
            select(events.c.id, events.c.sender_id, events.c.seq, events.c.data)
            .join(event_outbox, event_outbox.c.event_id == events.c.id)
            .order_by(event_outbox.c.id)
            .limit(max(limit, 0))
        )
        with self.db.translate("reading the outbox"), self._connect() as conn:
            rows = conn.execute(stmt).all()
        return [StoredEvent(r.sender_id, r.seq, json.loads(r.data), r.id) for r in rows]

    def outbox_ack(self, events_: Sequence[StoredEvent]) -> None:
        ids = [e.position for e in events_ if e.position is not None]
        with self.db.translate("acknowledging outbox events"), self._connect(write=True) as conn:
            for start in range(0, len(ids), STREAM_BATCH):
                chunk = ids[start : start + STREAM_BATCH]
                conn.execute(delete(event_outbox).where(event_outbox.c.event_id.in_(chunk)))

    def close(self) -> None:
        super().close()  # stops the outbox relay first
        self.db.dispose()


def _backoff(attempt: int) -> None:
    """Sleep a random while (growing with ``attempt``, at most 50 ms) before a retry."""
    time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))


def _storable(value: str) -> bool:
    """Whether a string can be sent to every driver: no NUL, encodable as UTF-8."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_unique_violation(exc: DBAPIError) -> bool:
    """Whether the driver error is a duplicate key (the (sender_id, seq) index)."""
    if not isinstance(exc, IntegrityError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _PG_UNIQUE:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] == _MYSQL_UNIQUE:
        return True
    message = str(orig)
    return "UNIQUE constraint failed" in message or _ORA_UNIQUE in message


def _is_transient(exc: DBAPIError) -> bool:
    """Deadlocks, serialization failures and a busy SQLite: the transaction may run again."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _PG_RETRY:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _MYSQL_RETRY:
        return True
    return "database is locked" in str(orig)


def session_statement(sender_id: str) -> Select[Any]:
    """seq and data of the current session: from the last ``session_started`` (or seq 1)."""
    start = (
        select(func.max(events.c.seq))
        .where(events.c.sender_id == sender_id, events.c.type_name == "session_started")
        .scalar_subquery()
    )
    return (
        select(events.c.seq, events.c.data)
        .where(events.c.sender_id == sender_id, events.c.seq >= func.coalesce(start, 1))
        .order_by(events.c.seq)
    )


def query_statement(query: EventQuery) -> Select[Any]:
    """The SELECT behind ``query``: filters on indexed columns, by id (by seq for one sender)."""
    stmt = select(events.c.id, events.c.sender_id, events.c.seq, events.c.data)
    column_filters = (
        (events.c.sender_id, query.sender_id),
        (events.c.type_name, query.type_name),
        (events.c.intent_name, query.intent),
        (events.c.action_name, query.action),
    )
    for column, value in column_filters:
        if value is None:
            continue
        # no stored name holds NUL or a lone surrogate (appends refuse them), and drivers
        # cannot send them: such a filter matches nothing
        stmt = stmt.where(column == value if _storable(value) else false())
    # Bounds no column can hold are decided here, not sent to the driver (which would fail
    # on NaN, infinities or integers past 64 bits).
    if query.since is not None:
        stmt = _time_bound(stmt, float(query.since), lower=True)
    if query.until is not None:
        stmt = _time_bound(stmt, float(query.until), lower=False)
    if query.after_position is not None:
        after = int(query.after_position)
        if after >= _MAX_INT64:
            stmt = stmt.where(false())
        elif after >= -_MAX_INT64:  # bound as BIGINT: PostgreSQL would cast it to the id's int4
            stmt = stmt.where(events.c.id > literal(after, BigInteger))
    stmt = stmt.order_by(events.c.seq if query.sender_id is not None else events.c.id)
    if query.limit is not None:
        stmt = stmt.limit(min(max(int(query.limit), 0), _MAX_INT64))
    return stmt


def _time_bound(stmt: Select[Any], bound: float, lower: bool) -> Select[Any]:
    """``timestamp >= bound`` (``<=`` for an upper bound); NaN and infinities in Python."""
    if math.isnan(bound):
        return stmt.where(false())  # nothing compares with NaN
    if math.isinf(bound):  # since=-inf / until=+inf filter nothing; the others match nothing
        return stmt if (bound < 0) == lower else stmt.where(false())
    column = events.c.timestamp
    return stmt.where(column >= bound if lower else column <= bound)
