"""Which engine answers the pages' questions for a store: SQL aggregates or a bounded scan.

Both answer ``conversations(filters, cursor, only)``, ``dashboard(since, until, only)`` and
``newest_timestamp(only)``; the live tail reads new events through ``store.query``.
"""

from __future__ import annotations

from typing import Protocol

from eventstore.server.ui.model import (
    DAY,
    DEFAULT_RANGE_DAYS,
    PAGE_SIZE,
    ConversationPage,
    Dashboard,
    Filters,
    Scan,
)
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore

#: Most events one poll of the live tail reads.
LIVE_BATCH = 200


class Queries(Protocol):
    """What the list and the dashboard ask a store."""

    def conversations(
        self, filters: Filters, cursor: str | None, only: str | None, limit: int = PAGE_SIZE
    ) -> ConversationPage: ...

    def dashboard(self, since: float, until: float, only: str | None) -> Dashboard: ...

    def newest_timestamp(self, only: str | None) -> float | None: ...


def queries_for(store: TrackerStore) -> Queries:
    """SQL aggregates for the SQL store, a bounded scan of ``store.query`` otherwise.

    A SQL store that encrypts its ``data`` column is scanned too: the database cannot read
    the texts and confidences inside encrypted events.
    """
    from eventstore.stores.sql.store import SQLTrackerStore

    if isinstance(store, SQLTrackerStore) and getattr(store, "cipher", None) is None:
        from eventstore.server.ui.sql import SQLQueries

        return SQLQueries(store)
    return Scan(store)


def dashboard_range(
    queries: Queries, since: float | None, until: float | None, only: str | None
) -> tuple[float, float]:
    """The chosen range; by default the 30 days up to the newest event (or up to now)."""
    import time

    if until is None:
        newest = queries.newest_timestamp(only) if since is None else None
        until = newest if newest is not None else time.time()
        if since is not None:
            until = max(until, since)
    if since is None:
        since = (until // DAY - DEFAULT_RANGE_DAYS + 1) * DAY
    return since, until


def head_position(store: TrackerStore) -> int | None:
    """Where the live tail starts: the newest position (None on stores without positions)."""
    if not store.has_positions:
        return None
    queries = queries_for(store)
    head = getattr(queries, "head_position", None)
    if head is not None:
        return int(head())
    last = 0
    for event in store.query(EventQuery()):
        last = max(last, event.position or 0)
    return last


def live_events(
    store: TrackerStore, filters: Filters, after: int | None, since: float | None, only: str | None
) -> tuple[list[StoredEvent], int | None]:
    """Events stored after position ``after`` (or, without positions, stamped at or after
    ``since``) that pass the filters, and the position to ask from next time."""
    query = EventQuery(
        sender_id=only,
        type_name=filters.type_name,
        intent=filters.intent,
        action=filters.action,
        since=filters.since if since is None else max(since, filters.since or since),
        until=filters.until,
        after_position=after,
        limit=LIVE_BATCH,
    )
    scanned = list(store.query(query))
    if after is not None and scanned:
        after = max(event.position or 0 for event in scanned)
    return [event for event in scanned if filters.event_matches(event)], after
