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

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Select,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError

from eventstore.config import StrictConfig
from eventstore.errors import (
    BackendUnavailable,
    ConcurrencyError,
    ConfigError,
    DecryptionError,
)
from eventstore.events import MAX_EVENT_BYTES, action_name, intent_name
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.stores.common import backoff
from eventstore.stores.sql import feed as sql_feed
from eventstore.stores.sql import locks
from eventstore.stores.sql.analytics_schema import delete_analytics
from eventstore.stores.sql.engine import WRITE_OPTION, SQLDatabase
from eventstore.stores.sql.errors import is_transient, is_unique_violation
from eventstore.stores.sql.migrate import ensure_schema
from eventstore.stores.sql.schema import event_outbox, events, tracker_snapshots
from eventstore.stores.sql.statements import (
    CURRENT_SESSION,
    FOLDED_MAX_ROWS,
    READ_AFTER,
    folded_append_statement,
    query_statement,
)
from eventstore.stores.sql.triggers import PG_LOCK_CLASS
from eventstore.stores.sql.url import SQLConfig, shown_url
from eventstore.tracker import Tracker

if TYPE_CHECKING:
    from eventstore.privacy.crypto import EventCipher

#: Rows fetched per round trip when streaming ``query`` and ``keys`` results.
STREAM_BATCH = 500


class _Retry(Exception):
    """An append lost a race that is safe to run again."""


class SQLTrackerStore(TrackerStore):
    """Conversations as rows of Rasa's ``events`` table, one row per event."""

    Config: ClassVar[type[StrictConfig] | None] = SQLConfig
    has_positions: ClassVar[bool] = True
    supports_outbox: ClassVar[bool] = True
    supports_snapshots: ClassVar[bool] = True

    def __init__(
        self,
        config: SQLConfig | None = None,
        *,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_attempts: int = 100,
    ) -> None:
        self.config = config if config is not None else SQLConfig()
        super().__init__(max_event_bytes, self.config.tracker_cache_size)
        self.use_store_settings(self.config)
        self.max_attempts = max_attempts
        #: encrypts the ``data`` column (``encryption_keys_env``); None: plain JSON
        self.cipher: EventCipher | None = None
        if self.config.encryption_keys_env:
            from eventstore.privacy.crypto import EventCipher

            self.cipher = EventCipher.from_env(self.config.encryption_keys_env)
        self.db = SQLDatabase(self.config)
        self.url: URL = self.db.url
        self.engine: Engine = self.db.engine
        #: Serialises every operation on an in-memory SQLite database (one shared connection).
        self._serial: threading.RLock | None = threading.RLock() if self.db.memory else None
        try:
            with self.db.translate("preparing the schema"):
                ensure_schema(self.engine, self.db.where)
                with self.engine.begin() as conn:
                    sql_feed.ensure_gate_row(conn)
        except BaseException:
            self.db.dispose()
            raise
        if self.engine.dialect.name in ("mysql", "mariadb"):
            # MariaDB >= 10.3 has sequences, and SQLAlchemy would then use the Oracle-only
            # optional ``events_seq``; ids come from AUTO_INCREMENT, as in Rasa's table.
            self.engine.dialect.supports_sequences = False

    @classmethod
    def from_settings(cls, settings: Any) -> SQLTrackerStore:
        return cls(settings)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLTrackerStore:
        """A store over the database at ``url`` (``sqlite:///file.db``, ``postgresql://...``)."""
        return cls(SQLConfig(url=url, **options))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={shown_url(self.url)!r})"

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
    def _encode(self, data: dict[str, Any], sender_id: str) -> str:
        """The ``data`` column's value: the event's JSON, encrypted when a key is set."""
        text_ = json.dumps(data)
        return text_ if self.cipher is None else self.cipher.encrypt(text_, sender_id)

    def _decode(self, value: str, sender_id: str) -> dict[str, Any]:
        """The event of a ``data`` value (``DecryptionError`` if the keys do not open it)."""
        if self.cipher is not None:
            value = self.cipher.decrypt(value, sender_id)
        event: dict[str, Any] = json.loads(value)
        return event

    def _rows(self, events_: list[dict[str, Any]], sender_id: str) -> list[dict[str, Any]]:
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
                    "data": self._encode(data, sender_id),
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
        rows = self._rows(events_, sender_id)
        for attempt in range(self.max_attempts):
            try:
                with self.db.translate(f"writing to {sender_id!r}"):
                    return self._append_once(sender_id, events_, rows, expected_version, replace)
            except _Retry:
                backoff(attempt)
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
                if self._folds(conn, rows, replace):
                    return self._folded_append(conn, sender_id, events_, rows, expected_version)
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
            if is_unique_violation(exc):
                if expected_version is not None:
                    raise ConcurrencyError(sender_id, expected_version, None) from exc
                raise _Retry from exc
            if is_transient(exc):
                raise _Retry from exc
            raise
        return [
            StoredEvent(sender_id, p["seq"], data, position)
            for p, data, position in zip(params, events_, ids, strict=True)
        ]

    @staticmethod
    def _folds(conn: Connection, rows: list[dict[str, Any]], replace: bool) -> bool:
        """Whether this append reads the version inside its INSERT (PostgreSQL, small)."""
        return (
            conn.dialect.name == "postgresql" and not replace and 0 < len(rows) <= FOLDED_MAX_ROWS
        )

    def _folded_append(
        self,
        conn: Connection,
        sender_id: str,
        events_: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        expected_version: int | None,
    ) -> list[StoredEvent]:
        """Lock, then one INSERT that numbers the rows after ``max(seq)`` and returns them.

        Two statements instead of four (lock, max, insert, ids). A stale
        ``expected_version`` shows in the returned seqs and raises ``ConcurrencyError``,
        which rolls the insert back.
        """
        locks.lock(conn, sender_id)
        stored = sorted(conn.execute(*folded_append_statement(sender_id, rows)).all(), key=_seq)
        current = stored[0].seq - 1
        if expected_version is not None and expected_version != current:
            raise ConcurrencyError(sender_id, expected_version, current)
        if self.uses_outbox:
            conn.execute(
                insert(event_outbox),
                [{"event_id": r.id, "sender_id": sender_id, "seq": r.seq} for r in stored],
            )
        return [
            StoredEvent(sender_id, r.seq, data, r.id)
            for r, data in zip(stored, events_, strict=True)
        ]

    def _insert(
        self, conn: Connection, sender_id: str, current: int, params: list[dict[str, Any]]
    ) -> list[int]:
        """Insert the rows in one executemany and return their ids in seq order.

        MariaDB (10.5+) returns them from the INSERT itself, in the rows' order: one round
        trip less (1.2x faster 5-event appends, bench/README.md). Elsewhere the ids of a
        batch are read back by (sender_id, seq) (the writer holds the conversation): with
        psycopg that is about twice as fast as an INSERT .. RETURNING batch in
        "insertmanyvalues" form, and it works on every dialect.
        """
        dialect = conn.dialect
        ordered = (
            dialect.name == "mysql" and dialect.insert_executemany_returning_sort_by_parameter_order
        )
        if (len(params) == 1 and dialect.insert_returning) or ordered:
            stmt = insert(events).returning(events.c.id, sort_by_parameter_order=ordered)
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

        PostgreSQL: a transaction advisory lock on the sender id; MySQL/MariaDB: the
        conversation's row in ``event_locks``, locked before anything is read, so the
        transaction's snapshot is taken after the previous writer committed; SQLite: the
        transaction already holds the database's write lock (``BEGIN IMMEDIATE``). Without
        it, an append that read the version just before a replace or delete committed
        would add its events after a gap. Rows Rasa's own SQLTrackerStore inserts take the
        same locks in the database (``sql.triggers``). PostgreSQL and
        MySQL also enter the feed gate here, before any id is taken (``sql.feed``).
        """
        locks.lock(conn, sender_id)
        return locks.max_seq(conn, sender_id)

    # -- reads ---------------------------------------------------------------------------
    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        params = {"sender_id": sender_id, "after": after}
        with self.db.translate(f"reading {sender_id!r}"), self._connect() as conn:
            rows = conn.execute(READ_AFTER, params).scalars().all()
        return [self._decode(row, sender_id) for row in rows]

    def version(self, sender_id: str) -> int:
        with self.db.translate(f"reading the version of {sender_id!r}"), self._connect() as conn:
            return locks.max_seq(conn, sender_id)

    def _session_start(self, sender_id: str) -> int:
        stmt = select(func.max(events.c.seq)).where(
            events.c.sender_id == sender_id, events.c.type_name == "session_started"
        )
        with self.db.translate(f"reading the session of {sender_id!r}"), self._connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def _load_session(self, sender_id: str) -> Tracker | None:
        """The current session in one query: rows from the last ``session_started`` on."""
        with self.db.translate(f"reading {sender_id!r}"), self._connect() as conn:
            rows = conn.execute(CURRENT_SESSION, {"sender_id": sender_id}).all()
        if not rows:
            return None
        data = [self._decode(row.data, sender_id) for row in rows]
        return Tracker.from_events(sender_id, data, version=int(rows[-1].seq))

    def keys(self) -> Iterator[str]:
        stmt = select(events.c.sender_id).distinct()
        for row in self._stream(stmt, "listing conversations"):
            yield row.sender_id

    def _query(self, query: EventQuery) -> Iterator[StoredEvent]:
        """Matching events; in position order they stop at the horizon (gap-free feed)."""
        stmt = query_statement(query)
        if query.sender_id is None:
            limit = self.horizon()
            if limit is not None:
                stmt = stmt.where(events.c.id <= literal(limit, BigInteger))
        for row in self._stream(stmt, "querying events"):
            data = self._decode(row.data, row.sender_id)
            yield StoredEvent(row.sender_id, row.seq, data, row.id)

    def horizon(self) -> int | None:
        """The highest position no append in flight can still commit below (None: no limit)."""
        if self.db.memory or self.engine.dialect.name == "sqlite":
            return None
        with self.db.translate("reading the feed horizon"), self.engine.connect() as conn:
            return sql_feed.horizon(conn)

    # -- subscription checkpoints ----------------------------------------------------------
    def load_checkpoint(self, name: str) -> int | None:
        with self.db.translate(f"reading checkpoint {name!r}"), self._connect() as conn:
            return sql_feed.load_checkpoint(conn, name)

    def save_checkpoint(self, name: str, position: int) -> None:
        with self.db.translate(f"saving checkpoint {name!r}"), self._connect(write=True) as conn:
            sql_feed.save_checkpoint(conn, name, position)

    @contextmanager
    def checkpoint_transaction(self, name: str, position: int) -> Iterator[Connection]:
        """A transaction on the store's database that also moves ``name`` to ``position``.

        What the caller writes with the connection commits together with the checkpoint
        (exactly once), or neither does.
        """
        with self.db.translate(f"saving checkpoint {name!r}"), self._connect(write=True) as conn:
            yield conn
            sql_feed.save_checkpoint(conn, name, position)

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

    # -- snapshots (a row of tracker_snapshots per conversation) -------------------------
    def _read_snapshot(self, sender_id: str) -> str | None:
        stmt = select(tracker_snapshots.c.data).where(tracker_snapshots.c.sender_id == sender_id)
        with self.db.translate(f"reading the snapshot of {sender_id!r}"), self._connect() as conn:
            data = conn.execute(stmt).scalar()
        if data is None or self.cipher is None:
            return None if data is None else str(data)
        try:  # encrypted like the events (it holds their content)
            return self.cipher.decrypt(str(data), sender_id)
        except DecryptionError:  # a key no longer configured: ignored, rebuilt from the log
            return None

    def _write_snapshot(self, sender_id: str, version: int, data: str) -> None:
        """Under the conversation's write lock: only while the log reaches ``version``, and
        never over a newer snapshot (another process may have written one)."""
        table = tracker_snapshots
        with (
            self.db.translate(f"writing the snapshot of {sender_id!r}"),
            self._connect(write=True) as conn,
        ):
            if self._lock_version(conn, sender_id) < version:
                return
            where = table.c.sender_id == sender_id
            stored = conn.execute(select(table.c.version).where(where)).scalar()
            if stored is not None:
                if stored > version:
                    return
                conn.execute(delete(table).where(where))
            if self.cipher is not None:
                data = self.cipher.encrypt(data, sender_id)
            conn.execute(insert(table).values(sender_id=sender_id, version=version, data=data))

    # -- delete and outbox ---------------------------------------------------------------
    def delete(self, sender_id: str) -> int:
        return self._delete(sender_id, None)

    def delete_at_version(self, sender_id: str, version: int) -> int:
        return self._delete(sender_id, version)

    def _delete(self, sender_id: str, expected: int | None) -> int:
        self._forget_snapshot(sender_id)
        for attempt in range(self.max_attempts):
            try:
                with self.db.translate(f"deleting {sender_id!r}"):
                    try:
                        with self._connect(write=True) as conn:
                            current = self._lock_version(conn, sender_id)
                            if expected is not None and current != expected:
                                raise ConcurrencyError(sender_id, expected, current)
                            deleted = self._delete_rows(conn, sender_id)
                            if conn.dialect.name in ("mysql", "mariadb"):  # keep no trace
                                conn.execute(locks.MYSQL_UNLOCK, {"sender_id": sender_id})
                            return deleted
                    except DBAPIError as exc:
                        if is_transient(exc):  # a deadlock with a concurrent append
                            raise _Retry from exc
                        raise
            except _Retry:
                backoff(attempt)
        raise BackendUnavailable(f"deleting {sender_id!r} on {self.db.where} kept deadlocking")

    @staticmethod
    def _delete_rows(conn: Connection, sender_id: str) -> int:
        """Delete the conversation's events, pending outbox rows, snapshot and analytics rows.

        The analytics rows go after the events: a projection run that locked one of the
        events (``eventstore.analytics``) has committed its rows by then, or sees none.
        """
        conn.execute(delete(event_outbox).where(event_outbox.c.sender_id == sender_id))
        conn.execute(delete(tracker_snapshots).where(tracker_snapshots.c.sender_id == sender_id))
        removed = conn.execute(delete(events).where(events.c.sender_id == sender_id)).rowcount
        delete_analytics(conn, sender_id)
        return int(removed)

    def rotate_key(self, batch_size: int = 500) -> int:
        """Re-encrypt every ``data`` value not under the current key (plain ones too), one
        short transaction per ``batch_size`` rows; readers and writers go on meanwhile.
        Returns the number of rows rewritten."""
        cipher = self.cipher
        if cipher is None:
            raise ConfigError("rotate-key: the SQL store has no encryption_keys_env")
        last, changed = 0, 0
        page = select(events.c.id, events.c.sender_id, events.c.data).order_by(events.c.id)
        while True:
            with self.db.translate("re-encrypting events"), self._connect(write=True) as conn:
                rows = conn.execute(page.where(events.c.id > last).limit(batch_size)).all()
                for row in rows:
                    if cipher.is_current(row.data):
                        continue
                    new = cipher.encrypt(cipher.decrypt(row.data, row.sender_id), row.sender_id)
                    conn.execute(update(events).where(events.c.id == row.id).values(data=new))
                    changed += 1
            if len(rows) < batch_size:
                with self.db.translate("dropping snapshots"), self._connect(write=True) as conn:
                    conn.execute(delete(tracker_snapshots))  # a cache: rewritten under the new key
                return changed
            last = rows[-1].id

    @contextmanager
    def exclusive(self, name: str, seconds: float) -> Iterator[bool]:
        """PostgreSQL: a session advisory lock; MySQL/MariaDB: ``GET_LOCK``; SQLite: a lock
        file beside the database. Held by a connection (or file) of this process, so the
        server releases it if the process dies; ``seconds`` is not needed."""
        dialect = self.engine.dialect.name
        if dialect == "sqlite" and not self.db.memory and self.url.database:
            from eventstore.stores.locks import file_lock

            with file_lock(Path(f"{self.url.database}.{name}.lock")) as taken:
                yield taken
            return
        if dialect not in ("postgresql", "mysql", "mariadb"):
            with super().exclusive(name, seconds) as taken:
                yield taken
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") >> 1
        if dialect == "postgresql":
            take = text("SELECT pg_try_advisory_lock(:c, :k)").bindparams(c=PG_LOCK_CLASS, k=key)
            give = text("SELECT pg_advisory_unlock(:c, :k)").bindparams(c=PG_LOCK_CLASS, k=key)
        else:
            lock = f"eventstore.{self.url.database}.{name}"[:64]
            take = text("SELECT GET_LOCK(:n, 0)").bindparams(n=lock)
            give = text("SELECT RELEASE_LOCK(:n)").bindparams(n=lock)
        with self.db.translate(f"taking the lock {name!r}"), self.engine.connect() as conn:
            taken = bool(conn.execute(take).scalar())
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(give)
                    conn.commit()

    def outbox_pending(self, limit: int = 500) -> list[StoredEvent]:
        stmt = (
            select(events.c.id, events.c.sender_id, events.c.seq, events.c.data)
            .join(event_outbox, event_outbox.c.event_id == events.c.id)
            .order_by(event_outbox.c.id)
            .limit(max(limit, 0))
        )
        with self.db.translate("reading the outbox"), self._connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            StoredEvent(r.sender_id, r.seq, self._decode(r.data, r.sender_id), r.id) for r in rows
        ]

    def outbox_ack(self, events_: Sequence[StoredEvent]) -> None:
        ids = [e.position for e in events_ if e.position is not None]
        with self.db.translate("acknowledging outbox events"), self._connect(write=True) as conn:
            for start in range(0, len(ids), STREAM_BATCH):
                chunk = ids[start : start + STREAM_BATCH]
                conn.execute(delete(event_outbox).where(event_outbox.c.event_id.in_(chunk)))

    def close(self) -> None:
        super().close()  # runs the close hooks first
        self.db.dispose()


def _seq(row: Any) -> int:
    return int(row.seq)


__all__ = ["SQLConfig", "SQLTrackerStore", "query_statement"]
