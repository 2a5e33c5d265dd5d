"""The events API for analytics: ``GET /events`` (pages, JSON lines, long-poll) and
``GET /events/stream`` (Server-Sent Events from a position, catch-up then live).

The routes are ``async`` so a long-poll or a stream waits on the event loop, not in a
threadpool thread; every store call runs in a worker thread (docs/http.md, docs/feed.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, TypeVar

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from eventstore.errors import NoPositionsError
from eventstore.server.auth import Principal, require_access, require_auth
from eventstore.server.config import ServerSettings
from eventstore.server.cursors import MAX_INT, cursor_int, encode_cursor, query_time
from eventstore.server.errors import ApiError
from eventstore.server.routes import MAX_PAGE, store_of
from eventstore.server.sse import STREAM_HEADERS, event_stream, resume_position
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.times import FORMS as TIME_FORMS

logger = logging.getLogger("eventstore.server")

#: The longest ``wait`` of a long-poll, in seconds (stay under your proxy's read timeout).
MAX_WAIT = 60
_COMPACT = (",", ":")
T = TypeVar("T")

router = APIRouter()

SenderId = Annotated[str | None, Query(description="Only this conversation.")]
TypeName = Annotated[str | None, Query(description="Event type, e.g. user.")]
Intent = Annotated[str | None, Query(description="Intent of user events.")]
Action = Annotated[str | None, Query(description="The event's name (actions, slots).")]


def poll_interval_of(request: Request) -> float:
    """Seconds between store polls of a caught-up long-poll or stream."""
    settings: ServerSettings = request.app.state.settings
    return settings.feed_poll_interval


def require_positions(store: TrackerStore, what: str, field: str) -> None:
    """400 (``details.field``: ``field``) when ``store`` keeps no global positions."""
    if not store.has_positions:
        message = str(NoPositionsError(type(store).__name__))
        raise ApiError(400, f"{what}: {message}", {"field": field})


@router.get(
    "/events",
    tags=["events"],
    summary="Query stored events (pages or JSON lines; long-poll with wait)",
    response_model=None,
)
async def query_events(
    request: Request,
    sender_id: SenderId = None,
    type_name: TypeName = None,
    intent: Intent = None,
    action: Action = None,
    since: Annotated[str | None, Query(description=f"timestamp >= since ({TIME_FORMS})")] = None,
    until: Annotated[str | None, Query(description=f"timestamp <= until ({TIME_FORMS})")] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_INT, description="Only events with position > after.")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_INT, description="Most events returned.")
    ] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    format: Annotated[
        str, Query(pattern="^(page|jsonl)$", description="page (JSON) or jsonl (stream).")
    ] = "page",
    wait: Annotated[
        float | None,
        Query(
            gt=0,
            le=MAX_WAIT,
            description="Long-poll: with nothing to return yet, wait up to this many seconds "
            "for a matching event.",
        ),
    ] = None,
    principal: Principal = Depends(require_auth),
) -> Response:
    """Events as broker messages (``sender_id``, event keys, ``seq``, ``position``).

    ``format=page`` (default): ``{"events": [...], "next_cursor"}`` with at most ``limit``
    (default 100, max 1000) events. ``format=jsonl`` (or ``Accept: application/x-ndjson``):
    every matching event (up to ``limit``) streamed, one JSON object per line. ``wait``:
    when no event matches yet, answer as soon as one is stored, or empty after ``wait`` s.
    """
    require_access(principal, sender_id)
    store = store_of(request)
    for name, value in (("after", after), ("wait", wait)):
        if value is not None:
            require_positions(store, f"query parameter {name!r}", name)
    accept = request.headers.get("accept", "")
    stream = format == "jsonl" or "application/x-ndjson" in accept
    skip = 0
    if cursor is not None:
        if store.has_positions:
            after = max(after or 0, cursor_int(cursor, "p"))
        else:
            skip = cursor_int(cursor, "o")
    page_size = limit if stream else min(limit or 100, MAX_PAGE)
    query = EventQuery(
        sender_id=sender_id,
        type_name=type_name,
        intent=intent,
        action=action,
        since=query_time(since, "since"),
        until=query_time(until, "until"),
        after_position=after,
        limit=None if page_size is None else min(page_size + skip + (0 if stream else 1), MAX_INT),
    )
    read = Read(store, query, skip)
    if stream:
        first, results = await long_poll(request, read.first, lambda r: r[0] is None, wait)
        return StreamingResponse(jsonl(first, results), media_type="application/x-ndjson")
    assert page_size is not None
    page, more = await long_poll(request, lambda: read.page(page_size), lambda r: not r[0], wait)
    next_cursor = None
    if more:
        next_cursor = (
            encode_cursor("p", page[-1].position)
            if store.has_positions
            else encode_cursor("o", skip + len(page))
        )
    return JSONResponse(
        {"events": [e.as_message() for e in page], "next_cursor": next_cursor},
    )


@dataclass(frozen=True, slots=True)
class Read:
    """One read of ``GET /events`` (run in a worker thread; again for each long-poll)."""

    store: TrackerStore
    query: EventQuery
    skip: int

    def _results(self) -> Iterator[StoredEvent]:
        results = self.store.query(self.query)
        for _ in range(self.skip):
            if next(results, None) is None:
                break
        return results

    def page(self, size: int) -> tuple[list[StoredEvent], bool]:
        """Up to ``size`` events, and whether more match."""
        events = list(islice(self._results(), size + 1))
        return events[:size], len(events) > size

    def first(self) -> tuple[StoredEvent | None, Iterator[StoredEvent]]:
        """The first event (read here so its errors are JSON) and the rest, unread."""
        results = self._results()
        return next(results, None), results


async def long_poll(
    request: Request, read: Callable[[], T], empty: Callable[[T], bool], wait: float | None
) -> T:
    """``read()`` in a worker thread; with ``wait``, again until not ``empty`` or time is up.

    Between reads the request sleeps on the event loop; a client that went away ends it.
    """
    result = await run_in_threadpool(read)
    if wait is None:
        return result
    deadline = time.monotonic() + wait
    interval = poll_interval_of(request)
    stopping: threading.Event = request.app.state.stopping
    while empty(result) and (left := deadline - time.monotonic()) > 0:
        await anyio.sleep(min(interval, left))
        if stopping.is_set() or await request.is_disconnected():
            break
        result = await run_in_threadpool(read)
    return result


def jsonl(first: StoredEvent | None, results: Iterator[StoredEvent]) -> Iterator[bytes]:
    """One JSON line per event; the first was fetched in the route so its errors are JSON."""
    if first is None:
        return
    yield json.dumps(first.as_message(), separators=_COMPACT).encode() + b"\n"
    try:
        for event in results:
            yield json.dumps(event.as_message(), separators=_COMPACT).encode() + b"\n"
    except Exception:  # the status line has gone out; end the stream and log it
        logger.exception("streaming events failed part-way")
        raise


@router.get(
    "/events/stream",
    tags=["events"],
    summary="Server-Sent Events: every event after a position, then live",
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    sender_id: SenderId = None,
    type_name: TypeName = None,
    intent: Intent = None,
    action: Action = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_INT,
            description="Start after this position (default 0: the whole log). "
            "A Last-Event-ID header wins over it.",
        ),
    ] = None,
    heartbeat: Annotated[
        float,
        Query(ge=1, le=300, description="Seconds of silence before a ': keep-alive' comment."),
    ] = 15,
    last_event_id: Annotated[
        str | None,
        Header(description="The id (position) of the last message received: resume after it."),
    ] = None,
    principal: Principal = Depends(require_auth),
) -> Response:
    """Every matching event in position order, catch-up then live, as ``text/event-stream``.

    Each message: ``id: <position>`` and ``data: <the event as GET /events returns it>``.
    Reconnect with ``Last-Event-ID`` (EventSource does) to resume without gap or duplicate.
    """
    require_access(principal, sender_id)
    store = store_of(request)
    require_positions(store, "the event stream needs positions", "positions")
    start = resume_position(last_event_id, after)
    query = EventQuery(sender_id=sender_id, type_name=type_name, intent=intent, action=action)
    body = event_stream(
        store,
        query,
        start,
        heartbeat=heartbeat,
        poll_interval=poll_interval_of(request),
        open_streams=request.app.state.metrics.streams,
        stopping=request.app.state.stopping,
    )
    return StreamingResponse(body, media_type="text/event-stream", headers=STREAM_HEADERS)
