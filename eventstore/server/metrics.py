"""Prometheus metrics of one app, and the ASGI middleware that times every request.

The middleware also enforces the body limit (413 before the route parses anything) and
names the answering worker process in ``X-Eventstore-Worker``. With ``--workers N`` the
workers share their values through prometheus-client's multiprocess mode.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import unquote_to_bytes

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventstore.server.errors import ApiError, error_body

#: prometheus-client's switch to multiprocess mode (one value file per worker process).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters and histograms of one app, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "eventstore_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "eventstore_http_request_duration_seconds",
            "Time from request start to the last byte of the response.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.appends = Counter(
            "eventstore_appends",
            "Successful writes to the store (append, replace).",
            ["operation"],
            registry=r,
        )
        self.events = Counter(
            "eventstore_events_stored", "Events written to the store.", registry=r
        )
        self.conflicts = Counter(
            "eventstore_conflicts", "Writes refused because of a version conflict.", registry=r
        )
        self.errors = Counter(
            "eventstore_errors",
            "Error responses by status code and reason.",
            ["code", "reason"],
            registry=r,
        )
        self.streams = Gauge(
            "eventstore_event_streams_open",
            "Event streams (GET /events/stream) open now.",
            registry=r,
            multiprocess_mode="livesum",
        )

    def count_error(self, status: int, reason: str) -> None:
        """Count one error response."""
        self.errors.labels(code=str(status), reason=reason).inc()

    def count_write(self, operation: str, events: int) -> None:
        """Count one successful write of ``events`` events."""
        self.appends.labels(operation=operation).inc()
        self.events.inc(events)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric.

        Under ``--workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set before the workers started)
        the values of every worker are read from that directory and summed, so any worker
        answers for all of them.
        """
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class ServiceMiddleware:
    """Times requests, adds the worker header and refuses bodies over ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.worker = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        limit = self.max_body_bytes

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-eventstore-worker", self.worker)]
            await send(message)

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises an HTTPException from the body read as it is.
                    raise HTTPException(413, self._too_large_message())
            return message

        try:
            length = _content_length(scope)
            bad_path = _path_error(scope)
            if bad_path is not None:
                await self._refuse(send_wrapper, bad_path)
            elif length is not None and length > limit:
                await self._refuse(
                    send_wrapper, ApiError(413, self._too_large_message(), {"field": "body"})
                )
            else:
                await self.app(scope, receive_limited, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or "<unmatched>"
            method = scope.get("method", "")
            self.metrics.requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=template).observe(
                time.perf_counter() - start
            )

    def _too_large_message(self) -> str:
        return f"the request body is larger than the limit of {self.max_body_bytes} bytes"

    async def _refuse(self, send: Send, error: ApiError) -> None:
        """Answer ``error`` before the app sees the request."""
        import json

        self.metrics.count_error(error.status, error.reason)
        body = json.dumps(error_body(error.status, error.message, error.details)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _path_error(scope: Scope) -> ApiError | None:
    """A 400 when the percent-decoded path or query string is not UTF-8.

    Servers decode both with replacement characters, so ``x%FF`` and ``x%FE`` would both
    reach a route as ``x\ufffd``: one conversation under an id nobody sent.
    """
    for part, raw in (("path", scope.get("raw_path")), ("query", scope.get("query_string"))):
        if not raw:
            continue
        try:
            unquote_to_bytes(bytes(raw).decode("latin-1")).decode("utf-8")
        except UnicodeDecodeError as exc:
            return ApiError(
                400,
                f"the request {part} is not valid UTF-8 once percent-decoded (byte {exc.start})",
                {"field": part, "location": part},
            )
    return None


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers") or []
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
