"""The pages under ``/ui/`` and the small JSON endpoints their scripts call.

Pages are rendered on the server (Jinja2, autoescaped: stored text is always shown as
text); scripts only fetch JSON or HTML fragments rendered by the same templates. Store
calls block, so every route that reads the store is a plain ``def`` (FastAPI's threadpool).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from eventstore.events import EVENT_TYPES, validate_sender_id
from eventstore.server.auth import Principal, check_credential
from eventstore.server.errors import ApiError
from eventstore.server.routes import ConversationIdConvertor  # registers "conversationid"
from eventstore.server.ui.auth import (
    COOKIE,
    COOKIE_PATH,
    LoginRequired,
    only_for,
    principal_of,
    safe_next,
    set_cookie,
)
from eventstore.server.ui.model import (
    FALLBACK_ACTIONS,
    FALLBACK_INTENTS,
    LOW_CONFIDENCE,
    format_day,
    format_time,
    intent_of,
    parse_filters,
    parse_time,
)
from eventstore.server.ui.queries import dashboard_range, head_position, live_events, queries_for
from eventstore.server.ui.transcript import TRANSCRIPT_LIMIT, state_at, view_items, visible
from eventstore.stores.base import StoredEvent, TrackerStore

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["visible"] = visible
templates.env.globals["conversation_url"] = lambda sender: conversation_url(sender)
templates.env.globals["event_types"] = sorted(EVENT_TYPES)
#: Paths take any conversation id (``/`` and newlines too), as the API's routes do.
CONVERTOR = ConversationIdConvertor

router = APIRouter(prefix="/ui", include_in_schema=False)


def conversation_url(sender_id: str, page: str = "conversations") -> str:
    """The address of a conversation's page (every character of the id percent-encoded)."""
    return f"/ui/{page}/" + quote(sender_id, safe="")


def store_of(request: Request) -> TrackerStore:
    store: TrackerStore = request.app.state.store
    return store


def page(
    request: Request, name: str, context: dict[str, Any], principal: Principal, status: int = 200
) -> Response:
    """A rendered page with the signed-in principal in its context."""
    context = {"principal": principal, "auth": request.app.state.settings.auth_enabled, **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


def page_link(request: Request, **changes: str | None) -> str:
    """The current address with some query parameters changed (None removes one)."""
    params = dict(parse_qsl(request.url.query, keep_blank_values=True))
    params.pop("token", None)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


async def filter_parameters(
    sender: str | None = None,
    since: str | None = None,
    until: str | None = None,
    intent: str | None = None,
    action: str | None = None,
    type_name: str | None = None,
    text: str | None = None,
    flagged: str | None = None,
    below: str | None = None,
) -> None:
    """Declares the filters' query parameters (``parse_filters`` reads and checks them)."""


FILTERS = [Depends(filter_parameters)]


def check_access(principal: Principal, sender_id: str) -> None:
    """A JWT user may open only their own conversation (403 otherwise); the id must be valid."""
    if not principal.may_access(sender_id):
        raise ApiError(403, f"user {principal.username!r} may not access this conversation")
    validate_sender_id(sender_id)


# -- sign in and out ----------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (a token or a JWT)."""
    return templates.TemplateResponse(
        request, "login.html", {"next": safe_next(next), "message": None}
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the credential; on success keep it in the cookie and go to ``next``."""
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    target = safe_next(form.get("next"))
    credential = form.get("credential", "").strip()
    try:
        if not credential:
            raise ApiError(401, "enter the API's token or a JWT")
        check_credential(credential, request.app.state.settings)
    except ApiError as exc:
        context = {"next": target, "message": exc.message}
        return templates.TemplateResponse(request, "login.html", context, status_code=exc.status)
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, credential)
    return response


@router.post("/logout")
def logout() -> Response:
    """Forget the cookie."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


# -- the conversation list ----------------------------------------------------------------
@router.get("/", dependencies=FILTERS)
def conversation_list(request: Request, cursor: str | None = None) -> Response:
    """Conversations, newest activity first, filtered and paged."""
    principal = principal_of(request)
    filters = parse_filters(request.query_params)
    result = queries_for(store_of(request)).conversations(filters, cursor, only_for(principal))
    context = {
        "filters": filters,
        "form": {k: v for k, v in request.query_params.items() if k != "token"},
        "rows": [
            {
                "sender_id": row.sender_id,
                "last": format_time(row.last_activity),
                "sessions": row.sessions,
                "turns": row.turns,
                "intent": row.last_intent,
            }
            for row in result.rows
        ],
        "next_url": page_link(request, cursor=result.next_cursor) if result.next_cursor else None,
        "first_url": page_link(request, cursor=None) if cursor else None,
        "partial": result.partial,
        "low_confidence": LOW_CONFIDENCE,
        "fallback_names": sorted(FALLBACK_INTENTS | FALLBACK_ACTIONS),
    }
    return page(request, "list.html", context, principal)


# -- the transcript -----------------------------------------------------------------------
@router.get("/conversations/{conversation_id:conversationid}")
def transcript(request: Request, conversation_id: str, all: str | None = None) -> Response:
    """One conversation as a chat, with markers, tracker state and live updates."""
    principal = principal_of(request)
    check_access(principal, conversation_id)
    store = store_of(request)
    version = store.version(conversation_id)
    show_all = request.query_params.get("all") == "1"
    first = 1 if show_all else max(version - TRANSCRIPT_LIMIT + 1, 1)
    events = store.read(conversation_id, first - 1)
    context = {
        "sender_id": conversation_id,
        "items": view_items(events, first),
        "version": first - 1 + len(events),
        "truncated": first > 1,
        "all_url": page_link(request, all="1"),
        "download_url": conversation_url(conversation_id, "download"),
    }
    return page(request, "conversation.html", context, principal)


@router.get("/api/state/{conversation_id:conversationid}")
def tracker_state(request: Request, conversation_id: str, seq: int | None = None) -> JSONResponse:
    """The tracker state right after event ``seq`` (default: the last), replayed from seq 1."""
    principal = principal_of(request, api=True)
    check_access(principal, conversation_id)
    if seq is not None and seq < 0:
        raise ApiError(400, "query parameter 'seq' must be 0 or more", {"field": "seq"})
    events = store_of(request).read(conversation_id, 0)
    return JSONResponse(state_at(conversation_id, events if seq is None else events[:seq]))


@router.get("/api/events/{conversation_id:conversationid}")
def new_events(request: Request, conversation_id: str, after: int = 0) -> JSONResponse:
    """Transcript items after seq ``after``, as HTML rendered by the page's own template."""
    principal = principal_of(request, api=True)
    check_access(principal, conversation_id)
    if after < 0:
        raise ApiError(400, "query parameter 'after' must be 0 or more", {"field": "after"})
    store = store_of(request)
    version = store.version(conversation_id)
    if version < after:  # replaced or deleted since the page was rendered
        return JSONResponse({"reload": True, "version": version, "html": ""})
    events = store.read(conversation_id, after) if version > after else []
    html = templates.get_template("_items.html").render(items=view_items(events, after + 1))
    return JSONResponse({"reload": False, "version": after + len(events), "html": html})


def _filename(sender_id: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]", "_", sender_id)[:80] or "conversation") + ".jsonl"


@router.get("/download/{conversation_id:conversationid}")
def download(request: Request, conversation_id: str) -> StreamingResponse:
    """The conversation as JSON lines: one event per line with its sender id and seq."""
    principal = principal_of(request)
    check_access(principal, conversation_id)
    events = store_of(request).read(conversation_id, 0)

    def lines() -> Iterator[bytes]:
        for seq, event in enumerate(events, start=1):
            message = StoredEvent(conversation_id, seq, event).as_message()
            yield json.dumps(message, ensure_ascii=False).encode() + b"\n"

    disposition = f'attachment; filename="{_filename(conversation_id)}"'
    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": disposition},
    )


# -- the dashboard ------------------------------------------------------------------------
@router.get("/dashboard")
def dashboard(request: Request, since: str | None = None, until: str | None = None) -> Response:
    """Charts over a time range, every number a database aggregate."""
    principal = principal_of(request)
    start_at = parse_time(since, "since")
    end_at = parse_time(until, "until", end_of_day=True)
    if start_at is not None and end_at is not None and start_at > end_at:
        raise ApiError(400, "'since' is after 'until'", {"field": "since"})
    queries = queries_for(store_of(request))
    only = only_for(principal)
    start, end = dashboard_range(queries, start_at, end_at, only)
    board = queries.dashboard(start, end, only)
    context = {
        "data": board.chart_data(),
        "since": format_day(start),
        "until": format_day(end),
        "totals": board.totals,
    }
    return page(request, "dashboard.html", context, principal)


# -- the live tail ------------------------------------------------------------------------
@router.get("/live", dependencies=FILTERS)
def live(request: Request) -> Response:
    """Events as they are stored, across conversations, with the list's filters."""
    principal = principal_of(request)
    filters = parse_filters(request.query_params)
    context = {
        "filters": filters,
        "form": {k: v for k, v in request.query_params.items() if k != "token"},
        "start": head_position(store_of(request)),
        "started": time.time(),
    }
    return page(request, "live.html", context, principal)


@router.get("/api/live", dependencies=FILTERS)
def live_poll(
    request: Request, after: int | None = None, stamp: float | None = None
) -> JSONResponse:
    """New events (after position ``after``, or, on stores without positions, stamped at
    or after ``stamp``) as table rows."""
    principal = principal_of(request, api=True)
    filters = parse_filters(request.query_params)
    store = store_of(request)
    if after is not None and not store.has_positions:
        raise ApiError(400, f"{type(store).__name__} keeps no positions", {"field": "after"})
    found, next_after = live_events(store, filters, after, stamp, only_for(principal))
    rows = [
        {
            "key": f"{event.sender_id}\x00{event.seq}",
            "sender_id": event.sender_id,
            "seq": event.seq,
            "time": format_time(event.timestamp),
            "kind": event.type_name,
            "summary": _summary(event),
        }
        for event in found
    ]
    html = templates.get_template("_live_rows.html").render(rows=rows)
    stamps = [event.timestamp for event in found]
    return JSONResponse(
        {
            "html": html,
            "count": len(rows),
            "after": next_after,
            "stamp": max(stamps) if stamps else stamp,
        }
    )


def _summary(event: StoredEvent) -> str:
    """A short description of an event for the live tail."""
    data = event.data
    kind = event.type_name
    if kind in ("user", "bot"):
        text = data.get("text")
        intent = intent_of(data)
        base = text if isinstance(text, str) else ""
        return f"{base} ({intent})" if intent else base
    if kind == "slot":
        return f"{data.get('name')} = {json.dumps(data.get('value'), ensure_ascii=False)}"
    name = data.get("name")
    return str(name) if name is not None else ""


__all__ = ["LoginRequired", "router", "templates"]
