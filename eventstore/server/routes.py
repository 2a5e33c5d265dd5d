"""The routes: trackers and events of conversations, health, version and metrics.

Store calls block, so every route that touches the store is a plain ``def``: FastAPI runs
it in its threadpool and the event loop stays free. Paths and bodies follow Rasa's HTTP API
where Rasa has the route (rasa-compat.md §2); the rest are eventstore's own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.convertors import Convertor, register_url_convertor

from eventstore.domain import Domain
from eventstore.errors import (
    BackendUnavailable,
    EventValidationError,
)
from eventstore.events import validate_events, validate_sender_id
from eventstore.export import sorted_keys
from eventstore.relay import broker_of
from eventstore.server.auth import Principal, require_access, require_auth
from eventstore.server.cursors import (
    MAX_INT,
    decode_cursor,
    encode_cursor,
    parse_uint,
)
from eventstore.server.errors import ApiError
from eventstore.sessions import append_turn
from eventstore.stores.base import TrackerStore
from eventstore.tracker import EventVerbosity, Tracker

logger = logging.getLogger("eventstore.server")

MAX_PAGE = 1000
#: What this API offers beyond Rasa's routes; clients (the Rasa plug-in) check for them.
FEATURES = ("tracker-session", "append-start-session", "domain")
#: Retries of a first POST that lost the race to start the session to another writer.
ConversationId = Annotated[str, Path(description="The conversation (sender) id.")]
IncludeEvents = Annotated[
    str,
    Query(description="Which events the tracker includes: ALL, APPLIED, AFTER_RESTART, NONE."),
]
ExpectedVersion = Annotated[
    int | None,
    Query(
        ge=0, le=MAX_INT, description="Refuse the write with 409 unless the log is at this version."
    ),
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


def with_domain(request: Request, tracker: Tracker | None, conversation_id: str) -> Tracker:
    """The tracker as the API shows it: replayed with the app's domain when it has one.

    With a domain, every domain slot is present (at its initial value until set) and slot
    events for slots the domain lacks change nothing, as in Rasa. Without one, an unknown
    conversation is an empty tracker.
    """
    domain: Domain | None = getattr(request.app.state, "domain", None)
    if domain is None:
        return tracker or Tracker(conversation_id)
    if tracker is None:
        return domain.empty_tracker(conversation_id)
    return domain.replay(tracker)


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
    version = parse_uint(text.strip('"'))  # a version never exceeds MAX_INT
    if version is None:
        raise ApiError(
            400,
            f"header 'If-Match' must be a conversation version such as \"7\", got {value!r}",
            {"field": "If-Match", "location": "header"},
        )
    return version


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


def parse_body(body: Any) -> Any:
    """The body as JSON: FastAPI hands over raw bytes when it is not labelled JSON."""
    if isinstance(body, bytes | str):
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}", {"field": "body"}) from None
    return body


def body_events(body: Any) -> list[Any]:
    """The body as a list of events (one event or a list); the store validates each one.

    FastAPI hands over the raw bytes when the request is not labelled JSON; like Rasa, parse
    them anyway.
    """
    body = parse_body(body)
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
    session: Annotated[
        Literal["all", "current"],
        Query(
            description="all: every session (Rasa's route); current: from the last "
            "session start on (what a Rasa tracker store's retrieve returns)."
        ),
    ] = "all",
    _: Principal = Depends(conversation_principal),
) -> Response:
    """Replay every stored event (as Rasa 3.6); an unknown id gives an empty tracker, unsaved.

    ``session=current`` replays only the current session (cheap: the store's cached
    tracker plus the log's tail); the ``ETag`` is the conversation's version either way.

    With ``If-None-Match`` holding the current version, the answer is 304 without a replay
    (one cheap version read), for clients that poll.
    """
    verbosity = EventVerbosity.parse(include_events)
    store = store_of(request)
    if if_none_match is not None and until is None:
        current = store.version(conversation_id)
        if _etag_matches(if_none_match, current):
            return Response(status_code=304, headers=_version_headers(current))
    if session == "current":
        tracker = with_domain(request, store.retrieve(conversation_id), conversation_id)
    else:
        tracker = with_domain(
            request, store.retrieve_full_tracker(conversation_id), conversation_id
        )
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
    start_session: Annotated[
        bool,
        Query(
            description="Start a session on an empty conversation first (as Rasa). false: "
            "store exactly the body (a runtime that starts its sessions itself)."
        ),
    ] = True,
    _: Principal = Depends(conversation_principal),
) -> JSONResponse:
    """Append one event or a list, all or nothing; returns the current session's tracker.

    A conversation without events first gets ``action_session_start``, ``session_started``
    and ``action_listen`` (as Rasa), unless the body itself begins with the first two or
    ``start_session=false`` (the Rasa plug-in stores exactly what Rasa produced).
    """
    store = store_of(request)
    appended = append_turn(
        store,
        conversation_id,
        body_events(body),
        write.expected_version,
        start_session=start_session,
    )
    stored, version = appended.stored, appended.version
    if stored:
        request.app.state.metrics.count_write("append", stored)
    with stored_but_unread(version):
        tracker = with_domain(request, store.retrieve(conversation_id), conversation_id)
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
    body = parse_body(body)
    events = body_events(body)  # a malformed body is named as for POST
    if not isinstance(body, list):  # one object would silently become the whole log
        validate_events(events)  # a bad event is named first, as for POST
        raise ApiError(
            400,
            "PUT replaces the whole log: the body must be a list of events "
            "(an empty list removes every event)",
            {"field": "body"},
        )
    store = store_of(request)
    expected = write.expected_version
    version = store.replace(conversation_id, events, expected_version=expected)
    request.app.state.metrics.count_write("replace", len(events))
    with stored_but_unread(version):
        tracker = with_domain(
            request, store.retrieve_full_tracker(conversation_id), conversation_id
        )
    return tracker_response(tracker, write.verbosity)


#: Seconds a DELETE waits for the broker to confirm the conversation's tombstone.
TOMBSTONE_TIMEOUT = 10.0


@router.delete(
    "/conversations/{conversation_id:conversationid}",
    tags=["trackers"],
    summary="Delete the conversation",
)
def delete_conversation(
    request: Request,
    conversation_id: ConversationId,
    principal: Principal = Depends(conversation_principal),
) -> dict[str, Any]:
    """Erase the conversation: its events, outbox entries and the rest the store keeps.

    With an event broker, a ``conversation_deleted`` tombstone tells consumers to delete
    their copies; an audit line records who asked. Deleting an unknown id removes 0
    events (and publishes the tombstone again).
    """
    from eventstore.errors import TombstoneError
    from eventstore.privacy.erasure import forget

    who = "http:admin" if principal.admin else f"http:user:{principal.username}"
    try:
        erased = forget(
            store_of(request),
            [conversation_id],
            requested_by=who,
            audit=request.app.state.audit,
            confirm_timeout=TOMBSTONE_TIMEOUT,
        )
    except TombstoneError:
        logger.warning("tombstone of an erased conversation not confirmed", exc_info=True)
        raise ApiError(
            503,
            "the conversation was deleted, but the event broker has not confirmed its "
            "tombstone yet (the server keeps retrying); repeat the DELETE to be sure",
        ) from None
    return {"sender_id": conversation_id, "deleted_events": erased[0].deleted_events}


@router.get("/conversations", tags=["conversations"], summary="Conversation ids, paginated")
def list_conversations(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    _: Principal = Depends(admin_principal),
) -> dict[str, Any]:
    """Ids in sorted order (paged keys, never a full sort); ``next_cursor`` pages on."""
    after = decode_cursor(cursor, "k") if cursor else None
    if after is not None and not isinstance(after, str):
        raise ApiError(400, "query parameter 'cursor' is not valid", {"field": "cursor"})
    ids = list(islice(sorted_keys(store_of(request), after, batch=limit + 1), limit + 1))
    page = ids[:limit]
    more = len(ids) > limit
    return {"conversations": page, "next_cursor": encode_cursor("k", page[-1]) if more else None}


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
    broker = broker_of(store)
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
    broker = broker_of(store)
    return {
        "version": __version__,
        "store": type(store).__name__,
        "broker": type(broker).__name__ if broker is not None else None,
        "features": list(FEATURES),
    }


@router.get("/metrics", tags=["service"], summary="Prometheus metrics")
async def metrics(request: Request, _: Principal = Depends(admin_principal)) -> Response:
    """Request counts and latency histograms, appends, events, conflicts and errors."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
