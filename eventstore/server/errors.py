"""Errors as Rasa's JSON: ``{version, status: "failure", message, reason, details, help, code}``.

Every failure leaves as this body, never as a traceback: eventstore's error tree is mapped
to status codes here (bad input 400, conflict 409, backend down 503), in one place.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from eventstore.errors import (
    BackendUnavailable,
    BrokerUnavailable,
    ConcurrencyError,
    EventStoreError,
    EventValidationError,
    NoPositionsError,
    SchemaError,
)

logger = logging.getLogger("eventstore.server")

HELP_URL = "docs/http.md#errors"

#: Rasa's ``reason`` strings by status code.
REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "NotAuthenticated",
    403: "NotAuthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    500: "ServerError",
    503: "ServiceUnavailable",
}


class ApiError(Exception):
    """An error response raised from a route or a dependency."""

    def __init__(
        self, status: int, message: str, details: dict[str, Any] | None = None, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}
        self.reason = reason or REASONS.get(status, "Error")


def error_body(
    status: int, message: str, details: dict[str, Any] | None = None, reason: str = ""
) -> dict[str, Any]:
    """The JSON body of an error response."""
    from eventstore import __version__

    return {
        "version": __version__,
        "status": "failure",
        "message": message,
        "reason": reason or REASONS.get(status, "Error"),
        "details": details or {},
        "help": HELP_URL,
        "code": status,
    }


def error_response(request: Request | None, error: ApiError) -> JSONResponse:
    """Render ``error`` and count it in the app's metrics."""
    if request is not None:
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.count_error(error.status, error.reason)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    body = error_body(error.status, error.message, error.details, error.reason)
    return JSONResponse(body, status_code=error.status, headers=headers)


def translate(exc: Exception) -> ApiError:
    """The response an exception becomes."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, EventValidationError):
        details = {k: v for k, v in (("field", exc.field), ("index", exc.index)) if v is not None}
        return ApiError(400, str(exc), details)
    if isinstance(exc, NoPositionsError):
        return ApiError(400, str(exc), {"field": "positions"})
    if isinstance(exc, ConcurrencyError):
        return ApiError(
            409,
            str(exc),
            {
                "sender_id": exc.sender_id,
                "expected_version": exc.expected,
                "actual_version": exc.actual,
            },
        )
    if isinstance(exc, BackendUnavailable | SchemaError | BrokerUnavailable):
        # the detail names hosts and databases: it goes to the server log, not to clients
        logger.warning("503: %s", exc)
        what = "event broker" if isinstance(exc, BrokerUnavailable) else "store"
        return ApiError(503, f"the {what} is unavailable; the server log has the details")
    if isinstance(exc, EventStoreError):
        return ApiError(500, f"{type(exc).__name__}: {exc}")
    return ApiError(500, "internal server error; the server log has the details")


def _validation_error(exc: RequestValidationError) -> ApiError:
    """Name the first bad parameter or body field of a request FastAPI refused."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ())]
    where, path = (loc[0], loc[1:]) if loc else ("request", [])
    field = ".".join(path) or where
    kind = first.get("type", "")
    if kind == "json_invalid":
        ctx = first.get("ctx") or {}
        message = f"the body is not valid JSON: {ctx.get('error', first.get('msg'))}"
        return ApiError(400, message, {"field": "body"})
    if kind == "missing" and where == "body":
        return ApiError(400, "the body is missing; send JSON", {"field": "body"})
    label = {"query": "query parameter", "header": "header", "path": "path parameter"}
    message = f"{label.get(where, where)} '{field}': {first.get('msg', 'invalid')}"
    return ApiError(400, message, {"field": field, "location": where})


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the JSON error body."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        error = translate(exc)
        if isinstance(exc, ConcurrencyError):
            request.app.state.metrics.conflicts.inc()
        if error.status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(request, error)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, _validation_error(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        details = {"field": "body"} if exc.status_code == 413 else None
        return error_response(request, ApiError(exc.status_code, str(exc.detail), details))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(request, translate(exc))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(EventStoreError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
