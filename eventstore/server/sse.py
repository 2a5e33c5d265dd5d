"""Server-Sent Events of the feed: every event after a position, catch-up then live.

The stores are synchronous, so each poll runs in a worker thread (``anyio.to_thread``)
and the event loop only waits; between polls the stream sleeps on the loop, holding no
thread. When the client goes away the server cancels the generator at its next ``await``:
a poll in flight finishes in its thread first (threads are never abandoned), then the
stream ends.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import replace
from functools import partial

import anyio.to_thread
from prometheus_client import Gauge

from eventstore.errors import EventStoreError
from eventstore.feed import DEFAULT_BATCH
from eventstore.server.cursors import MAX_INT, parse_uint
from eventstore.server.errors import ApiError, error_body, translate
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore

logger = logging.getLogger("eventstore.server")

#: A comment line: ignored by clients, keeps proxies from closing an idle stream.
KEEP_ALIVE = b": keep-alive\n\n"
#: How long EventSource waits before it reconnects (milliseconds), sent first.
RETRY_MS = 2000
#: The ``event:`` name of the last message of a stream the store broke off.
FAILURE = "failure"
#: Response headers of a stream: never cached, never buffered by nginx.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_message(event: StoredEvent) -> bytes:
    """One SSE message: ``id`` the position, ``data`` the broker message on one line.

    ``json.dumps`` escapes every newline, so the data is always a single ``data:`` line.
    """
    data = json.dumps(event.as_message(), separators=(",", ":"))
    return f"id: {event.position}\ndata: {data}\n\n".encode()


def failure_message(exc: Exception) -> bytes:
    """The ``event: failure`` message ending a stream: the error body the route would send."""
    error = translate(exc)
    body = json.dumps(error_body(error.status, error.message, error.details, error.reason))
    return f"event: {FAILURE}\ndata: {body}\n\n".encode()


def resume_position(last_event_id: str | None, after: int | None) -> int:
    """Where a stream starts: ``Last-Event-ID`` when sent, else ``after``, else 0.

    The header wins because EventSource reconnects to the same URL (its original
    ``after``) and sends the id of the last message it received in the header.
    """
    if last_event_id is not None and last_event_id.strip():
        position = parse_uint(last_event_id.strip())
        if position is None:
            raise ApiError(
                400,
                f"header 'Last-Event-ID' must be a position (an integer from 0 to {MAX_INT}), "
                f"got {last_event_id!r}",
                {"field": "Last-Event-ID", "location": "header"},
            )
        return position
    return after or 0


def _poll(store: TrackerStore, query: EventQuery, position: int, limit: int) -> list[StoredEvent]:
    return list(store.query(replace(query, after_position=position, limit=limit)))


async def event_stream(
    store: TrackerStore,
    query: EventQuery,
    after: int,
    *,
    heartbeat: float,
    poll_interval: float,
    open_streams: Gauge,
    stopping: threading.Event | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> AsyncGenerator[bytes, None]:
    """The SSE body: events matching ``query`` after position ``after``, until disconnect.

    Catch-up reads batches back to back; once caught up the store is polled every
    ``poll_interval`` seconds and a keep-alive comment goes out after ``heartbeat`` seconds
    of silence. A store failure ends the stream with an ``event: failure`` message (the
    client reconnects with ``Last-Event-ID`` and misses nothing). Once ``stopping`` is set
    (the server got SIGTERM) the stream ends after the message in hand, so the shutdown
    does not wait for it; the client reconnects the same way.
    """
    position = after
    open_streams.inc()
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        quiet_since = time.monotonic()
        while stopping is None or not stopping.is_set():
            try:
                read = partial(_poll, store, query, position, batch_size)
                events = await anyio.to_thread.run_sync(read)
                last = events[-1].position if events else position
                if last is None or (events and last <= position):
                    raise EventStoreError(
                        f"{type(store).__name__} returned position {last} after {position}: "
                        "positions must grow"
                    )
            except Exception as exc:
                logger.warning("event stream after position %s failed: %s", position, exc)
                yield failure_message(exc)
                return
            if events:
                position = last
                yield b"".join(sse_message(event) for event in events)
                quiet_since = time.monotonic()
                if len(events) == batch_size:
                    continue  # catching up: read the next batch at once
            elif time.monotonic() - quiet_since >= heartbeat:
                yield KEEP_ALIVE
                quiet_since = time.monotonic()
            await anyio.sleep(min(poll_interval, heartbeat))
    finally:
        open_streams.dec()
