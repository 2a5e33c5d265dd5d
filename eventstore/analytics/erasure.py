"""Erasure reaches analytics tables kept in another database (``analytics: url:``).

When the tables live in the store's own SQL database the store deletes a conversation's
rows with its events. Otherwise ``attach_eraser`` gives the store an erasure hook that
deletes them from the analytics database after ``forget`` or retention deleted the events.
The hook holds the checkpoint row (as every projection batch does), and a batch checks
under that lock that its conversations are still stored (``AnalyticsRunner``): a batch
racing an erasure either commits first, and its rows are deleted, or skips them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import inspect, select

from eventstore.analytics.runner import CHECKPOINT, same_database
from eventstore.config import StrictConfig, parse_config
from eventstore.stores.sql.analytics_schema import analytics_senders, delete_analytics
from eventstore.stores.sql.engine import WRITE_OPTION, SQLDatabase
from eventstore.stores.sql.schema import event_checkpoints
from eventstore.stores.sql.url import SQLConfig

if TYPE_CHECKING:
    from eventstore.stores.base import TrackerStore


class AnalyticsSettings(StrictConfig):
    """``analytics:`` in endpoints.yml: the database the analytics tables live in."""

    #: SQLAlchemy URL of a PostgreSQL, MySQL/MariaDB or SQLite database; the default of
    #: ``eventstore analytics --to``, and where ``forget`` and retention delete rows too.
    url: str = Field(min_length=1)


def parse_analytics(section: Mapping[str, Any] | None) -> AnalyticsSettings | None:
    """The validated ``analytics:`` section (None when absent)."""
    return None if section is None else parse_config(AnalyticsSettings, section, "analytics")


class AnalyticsEraser:
    """Deletes one conversation's rows from the analytics tables of another database."""

    def __init__(self, url: str) -> None:
        self.database = SQLDatabase(SQLConfig(url=url))
        self._tables = False  # seen the tables once: they are never dropped by eventstore

    def __call__(self, sender_id: str) -> None:
        action = f"deleting the analytics rows of {sender_id!r}"
        with self.database.translate(action), self.database.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
            with conn.begin():
                if not self._has_tables(conn):
                    return  # never projected into: nothing to delete
                lock = select(event_checkpoints.c.position).where(
                    event_checkpoints.c.name == CHECKPOINT
                )
                conn.execute(lock.with_for_update())  # waits for a batch in flight
                delete_analytics(conn, sender_id)

    def _has_tables(self, conn: Any) -> bool:
        if not self._tables:
            self._tables = bool(inspect(conn).has_table(analytics_senders.name))
        return self._tables

    def close(self) -> None:
        self.database.dispose()


def attach_eraser(store: TrackerStore, settings: AnalyticsSettings) -> None:
    """Make ``forget`` and retention on ``store`` reach the tables at ``settings.url``.

    Nothing is attached when they are in the SQL store's own database: its deletions
    already take the rows in the same transaction.
    """
    from eventstore.stores.sql.store import SQLTrackerStore

    eraser = AnalyticsEraser(settings.url)
    if isinstance(store, SQLTrackerStore) and same_database(store.db, eraser.database):
        eraser.close()
        return
    store.add_erasure_hook(eraser)
    store.add_close_hook(eraser.close)
