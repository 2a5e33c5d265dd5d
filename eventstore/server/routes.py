"""The routes: trackers and events of conversations, health, version and metrics.

Store calls block, so every route that touches the store is a plain ``def``: FastAPI runs
it in its threadpool and the event loop stays free. Paths and bodies follow Rasa's HTTP API
where Rasa has the route (rasa-compat.md §2); the rest are eventstore's own.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.convertors import Convertor, register_url_convertor

from eventstore.errors import BackendUnavailable, ConcurrencyError, EventValidationError
from eventstore.events import validate_sender_id
from eventstore.server.auth import Principal, require_access, require_auth
from eventstore.server.errors import ApiError
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.tracker import (
    ACTION_SESSION_START,
    EventVerbosity,
    Tracker,
    session_start_events,
)

logger = logging.getLogger("eventstore.server")

MAX_PAGE = 1000
#: The largest integer a query parameter or cursor may hold: every store's 64-bit range.
MAX_INT = 2**63 - 1
_COMPACT = (",", ":")
#: Retries of a first POST that lost the race to start the session to another writer.
SESSION_START_RETRIES = 3

ConversationId = Annotated[str, Path(description="The conversation (sender) id.")]
IncludeEvents = Annotated[
    str,
    Query(description="Which events the tracker includes: ALL, APPLIED, AFTER_RESTART, NONE."),
]
ExpectedVersion = Annotated[
    int | None,
    Query(ge=0, description="Refuse the write with 409 unless the log is at this version."),
]
IfMatch = Annotated[
    str | None,
    Header(description='The expected version as an ETag, e.g. `"7"`; same as expected_version.'),
]
EventsBody = Annotated[
    Any,
    Body(description="One Rasa event object, or a list of them.", examples=[[{"event": "user"}]]),
]


class ConversationIdConvertor(Convertor[str]):
    """A conversation id in a path: any characters, ``/`` and newlines included.

    Starlette's ``path`` convertor is the regex ``.*``, which stops at a newline (no
    DOTALL), so an id holding one (the store accepts it) matched no route at all. The
    lookahead lets the id end only where a conversation route's suffix (``/tracker``,
    ``/tracker/events``) ends the path, or at its very end: Starlette anchors routes with
    ``$``, which also matches before a final newline, so ``/conversations/a/tracker%0A``
    (the DELETE path of ``a/tracker\n``) would otherwise reach conversation ``a``.
    """

    regex = r"[\s\S]*(?=(?:/tracker(?:/events)?)?\Z)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


# Registered before the routes below compile their paths (Starlette's registry is global).
register_url_convertor("conversationid", ConversationIdConvertor())


router = APIRouter()


def store_of(request: Request) -> TrackerStore:
    """The app's store."""
    store: TrackerStore = request.app.state.store
    return store


async def conversation_principal(
    conversation_id: ConversationId, principal: Principal = Depends(require_auth)
) -> Principal:
    """Authenticate, check the principal may act on this conversation (403), check the id."""
    require_access(principal, conversation_id)
    validate_sender_id(conversation_id)
    return principal


async def admin_principal(principal: Principal = Depends(require_auth)) -> Principal:
    """Authenticate, then require an admin (token, or a JWT with role admin)."""
    require_access(principal, None)
    return principal


# -- helpers ---------------------------------------------------------------------------
def tracker_state(tracker: Tracker, verbosity: EventVerbosity) -> dict[str, Any]:
    """The tracker JSON of Rasa's API for ``tracker`` at ``verbosity``."""
    return tracker.current_state(verbosity)


def _version_headers(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"', "X-Conversation-Version": str(version)}


def _etag_matches(header: str, version: int) -> bool:
    """Whether an ``If-None-Match`` list names ``version`` (weak or strong, or ``*``)."""
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return f'"{version}"' in tags or (version > 0 and "*" in tags)


def tracker_response(tracker: Tracker, verbosity: EventVerbosity) -> JSONResponse:
    """The tracker JSON with its version as ``ETag`` (use it as ``If-Match`` next time)."""
    return JSONResponse(
        tracker_state(tracker, verbosity), headers=_version_headers(tracker.version)
    )


def parse_if_match(value: str | None) -> int | None:
    """The version in an ``If-Match`` header: ``"7"``, ``W/"7"`` or ``7``."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not (text.isascii() and text.isdigit()):
        raise ApiError(
            400,
            f"header 'If-Match' must be a conversation version such as \"7\", got {value!r}",
            {"field": "If-Match", "location": "header"},
        )
    return int(text)


def expected_of(if_match: str | None, expected_version: int | None) -> int | None:
    """The expected version from ``If-Match`` or ``expected_version`` (they must agree)."""
    from_header = parse_if_match(if_match)
    if from_header is not None and expected_version is not None and from_header != expected_version:
        raise ApiError(
            400,
            f"If-Match ({from_header}) and expected_version ({expected_version}) disagree",
            {"field": "expected_version"},
        )
    return expected_version if expected_version is not None else from_header


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """The query and header options of POST and PUT on a tracker's events."""

    verbosity: EventVerbosity
    expected_version: int | None


async def write_options(
    include_events: IncludeEvents = "AFTER_RESTART",
    expected_version: ExpectedVersion = None,
    if_match: IfMatch = None,
) -> WriteOptions:
    """Parse them before the route runs, so a bad one stores nothing (400)."""
    return WriteOptions(
        EventVerbosity.parse(include_events), expected_of(if_match, expected_version)
    )


def body_events(body: Any) -> list[Any]:
    """The body as a list of events (one event or a list); the store validates each one.

    FastAPI hands over the raw bytes when the request is not labelled JSON; like Rasa, parse
    them anyway.
    """
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}", {"field": "body"}) from None
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        return body
    raise EventValidationError(
        f"the body must be an event object or a list of events, got {type(body).__name__}",
        field="body",
    )


@contextmanager
def stored_but_unread(version: int) -> Iterator[None]:
    """Say so when the write succeeded and only reading the tracker back failed.

    The answer is still 503, but its message and ``details.stored`` tell the client not to
    send the same events again (a retry with ``If-Match`` would get 409 anyway).
    """
    try:
        yield
    except BackendUnavailable as exc:
        raise ApiError(
            503,
            f"the events were stored (version {version}) but reading the tracker back "
            f"failed: {exc}; do not send them again",
            {"stored": True, "version": version},
        ) from exc


def starts_session(events: list[Any]) -> bool:
    """Whether the events begin with ``action_session_start`` followed by ``session_started``."""
    return (
        len(events) >= 2
        and isinstance(events[0], dict)
        and isinstance(events[1], dict)
        and events[0].get("event") == "action"
        and events[0].get("name") == ACTION_SESSION_START
        and events[1].get("event") == "session_started"
    )


# -- conversations -----------------------------------------------------------------------
@router.get(
    "/conversations/{conversation_id:conversationid}/tracker",
    tags=["trackers"],
    summary="The conversation's tracker (all sessions)",
    response_model=None,
)
def get_tracker(
    request: Request,
    conversation_id: ConversationId,
    include_events: IncludeEvents = "AFTER_RESTART",
    until: Annotated[
        float | None, Query(description="Only events with timestamp <= until.")
    ] = None,
    if_none_match: Annotated[
        str | None,
        Header(description="An ETag from an earlier answer: 304 if the log has not moved."),
    ] = None,
    _: Principal = Depends(conversation_principal),
) -> Response:
    """Replay every stored event (as Rasa 3.6); an unknown id gives an empty tracker, unsaved.

    With ``If-None-Match`` holding the current version, the answer is 304 without a replay
    (one cheap version read), for clients that poll.
    """
    verbosity = EventVerbosity.parse(include_events)
    store = store_of(request)
    if if_none_match is not None and until is None:
        current = store.version(conversation_id)
        if _etag_matches(if_none_match, current):
            return Response(status_code=304, headers=_version_headers(current))
    tracker = store.retrieve_full_tracker(conversation_id) or Tracker(conversation_id)
    if until is not None:
        tracker = tracker.travel_back_in_time(until)
    return tracker_response(tracker, verbosity)


@router.post(
    "/conversations/{conversation_id:conversationid}/tracker/events",
    tags=["trackers"],
    summary="Append events (atomically)",
    response_model=None,
)
def append_events(
    request: Request,
    conversation_id: ConversationId,
    body: EventsBody,
    write: WriteOptions = Depends(write_options),
    _: Principal = Depends(conversation_principal),
) -> JSONResponse:
    """Append one event or a list, all or nothing; returns the current session's tracker.

    A conversation without events first gets ``action_session_start``, ``session_started``
    and ``action_listen`` (as Rasa), unless the body itself begins with the first two.
    """
    store = store_of(request)
    events = body_events(body)
    expected = write.expected_version
    stored = 0
    version = 0
    for attempt in range(SESSION_START_RETRIES):
        prefix: list[dict[str, Any]] = []
        if events and not starts_session(events):
            current = expected if expected is not None else store.version(conversation_id)
            if current == 0:
                prefix = session_start_events()
        check = expected if expected is not None else (0 if prefix else None)
        try:
            version = store.append(conversation_id, prefix + events, expected_version=check)
        except EventValidationError as exc:
            if prefix and exc.index is not None:  # name the event by its place in the body
                raise EventValidationError(
                    exc.reason, index=exc.index - len(prefix), field=exc.field
                ) from None
            raise
        except ConcurrencyError:
            # Another writer started the conversation first: append after it, unless
            # the client itself asked for a version.
            if expected is not None or attempt == SESSION_START_RETRIES - 1:
                raise
            continue
        stored = len(prefix) + len(events)
        break
    if stored:
        request.app.state.metrics.count_write("append", stored)
    with stored_but_unread(version):
        tracker = store.retrieve(conversation_id) or Tracker(conversation_id)
    return tracker_response(tracker, write.verbosity)


@router.put(
    "/conversations/{conversation_id:conversationid}/tracker/events",
    tags=["trackers"],
    summary="Replace all events (atomically)",
    response_model=None,
)
def replace_events(
    request: Request,
    conversation_id: ConversationId,
    body: EventsBody,
    write: WriteOptions = Depends(write_options),
    _: Principal = Depends(conversation_principal),
) -> JSONResponse:
    """Replace the conversation's whole log with the body's events; returns the full tracker.

    Seqs restart at 1; the new events are published. An empty list removes every event.
    """
    store = store_of(request)
    events = body_events(body)
    expected = write.expected_version
    version = store.replace(conversation_id, events, expected_version=expected)
    request.app.state.metrics.count_write("replace", len(events))
    with stored_but_unread(version):
        tracker = store.retrieve_full_tracker(conversation_id) or Tracker(conversation_id)
    return tracker_response(tracker, write.verbosity)


@router.delete(
    "/conversations/{conversation_id:conversationid}",
    tags=["trackers"],
    summary="Delete the conversation",
)
def delete_conversation(
    request: Request,
    conversation_id: ConversationId,
    _: Principal = Depends(conversation_principal),
) -> dict[str, Any]:
    """Remove every event of the conversation; deleting an unknown id removes 0 events."""
    removed = store_of(request).delete(conversation_id)
    return {"sender_id": conversation_id, "deleted_events": removed}


@router.get("/conversations", tags=["conversations"], summary="Conversation ids, paginated")
def list_conversations(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    _: Principal = Depends(admin_principal),
) -> dict[str, Any]:
    """Ids in sorted order; pass ``next_cursor`` as ``cursor`` for the next page (null: done)."""
    after = decode_cursor(cursor, "k") if cursor else None
    if after is not None and not isinstance(after, str):
        raise ApiError(400, "query parameter 'cursor' is not valid", {"field": "cursor"})
    keys = store_of(request).keys()  # an iterator, not a dict
    ids = sorted(k for k in keys if after is None or k > after)
    page = ids[:limit]
    more = len(ids) > limit
    return {"conversations": page, "next_cursor": encode_cursor("k", page[-1]) if more else None}


# -- events (the query API) ---------------------------------------------------------------
def encode_cursor(kind: str, value: Any) -> str:
    """An opaque cursor for ``value``."""
    raw = json.dumps({kind: value}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> Any:
    """The value of a cursor made by ``encode_cursor`` (400 when it is not one)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return data[kind]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ApiError(400, "query parameter 'cursor' is not valid", {"field": "cursor"}) from None


def cursor_int(cursor: str, kind: str) -> int:
    """The position or offset in a cursor: an int from 0 to ``MAX_INT`` (400 otherwise).

    Checked here so a forged cursor never hands a store a number it cannot send.
    """
    value = decode_cursor(cursor, kind)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise ApiError(400, "query parameter 'cursor' is not valid", {"field": "cursor"})
    return value


@router.get(
    "/events",
    tags=["events"],
    summary="Query stored events (pages or JSON lines)",
    response_model=None,
)
def query_events(
    request: Request,
    sender_id: Annotated[str | None, Query(description="Only this conversation.")] = None,
    type_name: Annotated[str | None, Query(description="Event type, e.g. user.")] = None,
    intent: Annotated[str | None, Query(description="Intent of user events.")] = None,
    action: Annotated[str | None, Query(description="The event's name (actions, slots).")] = None,
    since: Annotated[float | None, Query(description="timestamp >= since")] = None,
    until: Annotated[float | None, Query(description="timestamp <= until")] = None,
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
    principal: Principal = Depends(require_auth),
) -> Response:
    """Events as broker messages (``sender_id``, event keys, ``seq``, ``position``).

    ``format=page`` (default): ``{"events": [...], "next_cursor"}`` with at most ``limit``
    (default 100, max 1000) events. ``format=jsonl`` (or ``Accept: application/x-ndjson``):
    every matching event (up to ``limit``) streamed, one JSON object per line.
    """
    require_access(principal, sender_id)
    store = store_of(request)
    if after is not None and not store.has_positions:
        raise ApiError(
            400,
            f"query parameter 'after': {type(store).__name__} keeps no global positions",
            {"field": "after"},
        )
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
        since=since,
        until=until,
        after_position=after,
        limit=None if page_size is None else min(page_size + skip + (0 if stream else 1), MAX_INT),
    )
    results = store.query(query)
    for _ in range(skip):
        if next(results, None) is None:
            break
    if stream:
        return StreamingResponse(
            jsonl(results, first=next(results, None)), media_type="application/x-ndjson"
        )
    assert page_size is not None
    page: list[StoredEvent] = []
    more = False
    for event in results:
        if len(page) == page_size:
            more = True
            break
        page.append(event)
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


def jsonl(results: Iterator[StoredEvent], first: StoredEvent | None) -> Iterator[bytes]:
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


# -- service ------------------------------------------------------------------------------
@router.get("/health", tags=["service"], summary="Store and broker reachable (no auth)")
def health(request: Request) -> JSONResponse:
    """200 when the store answers and the broker is ready, 503 otherwise."""
    store = store_of(request)
    checks: dict[str, Any] = {}
    try:
        store.version("eventstore-health-check")
        checks["store"] = {"type": type(store).__name__, "ok": True}
    except Exception as exc:
        logger.warning("health check: the store failed: %s", exc)
        checks["store"] = {"type": type(store).__name__, "ok": False, "error": type(exc).__name__}
    broker = store.event_broker
    if broker is None:
        checks["broker"] = None
    else:
        try:
            ready = bool(broker.is_ready())
            checks["broker"] = {"type": type(broker).__name__, "ok": ready}
        except Exception as exc:
            logger.warning("health check: the broker failed: %s", exc)
            checks["broker"] = {
                "type": type(broker).__name__,
                "ok": False,
                "error": type(exc).__name__,
            }
    healthy = checks["store"]["ok"] and (checks["broker"] is None or checks["broker"]["ok"])
    body = {"status": "ok" if healthy else "unavailable", **checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/version", tags=["service"], summary="Version of eventstore")
async def version(request: Request, _: Principal = Depends(require_auth)) -> dict[str, Any]:
    """The eventstore version and the store and broker classes in use."""
    from eventstore import __version__

    store = store_of(request)
    broker = store.event_broker
    return {
        "version": __version__,
        "store": type(store).__name__,
        "broker": type(broker).__name__ if broker is not None else None,
    }


@router.get("/metrics", tags=["service"], summary="Prometheus metrics")
async def metrics(request: Request, _: Principal = Depends(admin_principal)) -> Response:
    """Request counts and latency histograms, appends, events, conflicts and errors."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
