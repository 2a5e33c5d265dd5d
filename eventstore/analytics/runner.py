"""Keep the analytics tables up to date from a store's feed, exactly once.

Each batch of the feed is projected and its rows committed in one transaction of the
target database together with the checkpoint (``event_checkpoints``, name ``analytics``):
a run killed at any point resumes after the last committed batch, nothing lost, nothing
counted twice. Two runs on the same tables would each see the other move the checkpoint:
the second stops with ``CheckpointConflictError`` instead of counting twice.

The target is the store's own database when the store is SQL, or any SQL database
(``to``): the feed comes from any store with positions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from eventstore.analytics.writer import clear, project_batch
from eventstore.errors import CheckpointConflictError, ConfigError, NoPositionsError, SchemaError
from eventstore.stores.sql import feed as sql_feed
from eventstore.stores.sql import migrate as sql_migrate
from eventstore.stores.sql.engine import WRITE_OPTION, SQLDatabase
from eventstore.stores.sql.schema import event_checkpoints
from eventstore.stores.sql.url import SQLConfig

if TYPE_CHECKING:
    from eventstore.feed import Subscription
    from eventstore.stores.base import TrackerStore
    from eventstore.stores.records import StoredEvent

logger = logging.getLogger(__name__)

#: The checkpoint's name in ``event_checkpoints``.
CHECKPOINT = "analytics"
DEFAULT_BATCH = 1000


@dataclass
class Target:
    """The SQL database the tables live in."""

    engine: Engine
    where: str
    #: the store's own database: events are locked while their rows are written
    same_database: bool
    database: SQLDatabase | None = None  # owned here (closed with ``close``)

    def close(self) -> None:
        if self.database is not None:
            self.database.dispose()


def open_target(store: TrackerStore, to: str | None) -> Target:
    """The store's own database (SQL store, ``to`` None) or the database at ``to``.

    A ``to`` database that is empty or behind is upgraded to head (it gets the whole
    schema, empty ``events`` included); one Rasa wrote or one ahead of this version is
    refused.
    """
    from eventstore.stores.sql.store import SQLTrackerStore

    if to is None:
        if not isinstance(store, SQLTrackerStore):
            raise ConfigError(
                f"the tracker store is {type(store).__name__}, not SQL: pass --to URL "
                "(a PostgreSQL, MySQL/MariaDB or SQLite database) to hold the analytics tables"
            )
        return Target(store.engine, store.db.where, same_database=True)
    database = SQLDatabase(SQLConfig(url=to))
    try:
        with database.translate("preparing the analytics tables"):
            _upgrade_target(database)
    except BaseException:
        database.dispose()
        raise
    same = isinstance(store, SQLTrackerStore) and same_database(store.db, database)
    return Target(database.engine, database.where, same, database)


def same_database(a: SQLDatabase, b: SQLDatabase) -> bool:
    """Whether ``a`` and ``b`` are one database (a SQLite in-memory one never is)."""

    def key(db: SQLDatabase) -> str:
        return db.url.set(drivername=db.url.get_backend_name()).render_as_string(False)

    return key(a) == key(b) and not a.memory


def _upgrade_target(database: SQLDatabase) -> None:
    with database.engine.connect() as conn:
        state = sql_migrate.schema_state(conn)
    if state.kind in ("empty", "behind"):
        logger.info("upgrading %s to the head revision", database.where)
        sql_migrate.upgrade(database.engine)
    elif state.kind == "rasa":
        raise SchemaError(
            f"{database.where} holds a Rasa SQLTrackerStore database; upgrade it first with: "
            "eventstore db upgrade --url URL (every event is kept), or use another database"
        )
    elif state.kind == "ahead":
        raise SchemaError(
            f"the schema of {database.where} is at revision {state.revision}, which this "
            "version of eventstore does not know; upgrade eventstore"
        )


@dataclass
class AnalyticsReport:
    """What a run did."""

    events: int = 0  # events projected
    batches: int = 0
    start: int = 0  # the checkpoint it started after
    position: int = 0  # the checkpoint it committed last


class AnalyticsRunner:
    """Projects ``store``'s feed into ``target``'s tables; ``stop()`` ends a following run."""

    def __init__(
        self,
        store: TrackerStore,
        target: Target,
        *,
        batch_size: int = DEFAULT_BATCH,
        poll_interval: float = 0.5,
    ) -> None:
        if not store.has_positions:
            raise NoPositionsError(type(store).__name__)
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
        self.store = store
        self.target = target
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.name = CHECKPOINT  # the erasure of rows elsewhere locks this row too
        self.subscription: Subscription | None = None
        self._stop_requested = False

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction on the target (SQLite: holding the write lock from BEGIN)."""
        with self.target.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
            with conn.begin():
                yield conn

    def _locked_position(self, conn: Connection) -> int | None:
        stmt = select(event_checkpoints.c.position).where(event_checkpoints.c.name == self.name)
        value = conn.execute(stmt.with_for_update()).scalar()
        return None if value is None else int(value)

    def _still_stored(self, events: list[StoredEvent]) -> list[StoredEvent]:
        """``events`` less those of conversations erased since they were read.

        Called holding the checkpoint row, which an erasure of the tables in another
        database takes too (``analytics.erasure``): an erasure either finished before
        this check, or waits for this batch and deletes its rows.
        """
        last: dict[str, int] = {}
        for event in events:
            last[event.sender_id] = max(last.get(event.sender_id, 0), event.seq)
        gone = {sid for sid, seq in last.items() if self.store.version(sid) < seq}
        return [e for e in events if e.sender_id not in gone] if gone else events

    def checkpoint(self) -> int:
        """The position the tables hold every event up to (0: none yet)."""
        with self.target.engine.connect() as conn:
            return sql_feed.load_checkpoint(conn, self.name) or 0

    def rebuild(self) -> None:
        """Delete every analytics row and move the checkpoint back to 0, in one transaction."""
        with self.transaction() as conn:
            self._locked_position(conn)
            clear(conn)
            sql_feed.save_checkpoint(conn, self.name, 0)

    def stop(self) -> None:
        """End a ``follow`` run after the batch in hand (callable from another thread)."""
        self._stop_requested = True
        if self.subscription is not None:
            self.subscription.stop()

    def run(
        self, follow: bool = False, on_batch: Callable[[AnalyticsReport], None] | None = None
    ) -> AnalyticsReport:
        """Catch up (then, with ``follow``, keep going until ``stop()``); returns the report."""
        with self.transaction() as conn:  # the checkpoint row exists from here on
            expected = self._locked_position(conn)
            if expected is None:
                sql_feed.save_checkpoint(conn, self.name, 0)
                expected = 0
        report = AnalyticsReport(start=expected, position=expected)
        self.subscription = self.store.subscribe(
            after=expected,
            batch_size=self.batch_size,
            follow=follow,
            poll_interval=self.poll_interval,
        )
        if self._stop_requested:
            self.subscription.stop()
        for batch in self.subscription:
            with self.transaction() as conn:
                found = self._locked_position(conn)
                if found != expected:
                    raise CheckpointConflictError(
                        f"the analytics checkpoint in {self.target.where} moved from {expected} "
                        f"to {found} under this run: another 'eventstore analytics' (or a "
                        "--rebuild) writes the same tables; run one at a time"
                    )
                events = batch.events
                if not self.target.same_database:
                    events = self._still_stored(events)
                projected = project_batch(conn, events, self.target.same_database)
                sql_feed.save_checkpoint(conn, self.name, batch.position)
            expected = batch.position
            report.events += projected
            report.batches += 1
            report.position = batch.position
            if on_batch is not None:
                on_batch(report)
        return report
