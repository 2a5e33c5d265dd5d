"""The app factory: one FastAPI app around one store, closed with the app.

``create_app(store, settings)`` is what tests and embedders use; ``app_from_env()`` is the
factory uvicorn's worker processes call (``--workers N``), building the store from the
settings the parent passed in the environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from eventstore.server.auth import Principal, require_auth
from eventstore.server.config import ServerSettings
from eventstore.server.errors import install_error_handlers
from eventstore.server.metrics import Metrics, ServiceMiddleware
from eventstore.server.routes import router
from eventstore.stores.base import TrackerStore

logger = logging.getLogger("eventstore.server")


def close_store(store: TrackerStore) -> None:
    """Close the store after its relay published what is pending; then close the broker.

    The relay is stopped explicitly (not only through ``store.close()``) so a backend whose
    ``close`` forgets ``super().close()`` still flushes its events to the broker.
    """
    broker = store.event_broker
    relay_owned_broker = store.relay is not None
    try:
        if relay_owned_broker and not store.stop_relay():
            logger.warning("some stored events are not published yet; the relay resumes later")
    except Exception:
        logger.exception("stopping the event relay failed")
    try:
        store.close()
    except Exception:
        logger.exception("closing the store failed")
    if broker is not None and not relay_owned_broker:
        try:
            broker.close()
        except Exception:
            logger.exception("closing the event broker failed")


#: The Swagger UI page. It is static: the token is never rendered into it (where the
#: browser cache and saved pages would keep it). Its script takes the token from the URL
#: fragment (``#token=``, never sent to a server) or the ``?token=`` the page was opened
#: with, removes it from the address bar, and sends it as ``Authorization: Bearer`` on
#: same-origin requests (the schema and "Try it out"); Authorize takes a token or JWT too.
DOCS_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta name="referrer" content="no-referrer">
<link type="text/css" rel="stylesheet"
      href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
<title>eventstore API</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>
(function () {
  var fragment = new URLSearchParams(window.location.hash.slice(1));
  var query = new URLSearchParams(window.location.search);
  var token = fragment.get("token") || query.get("token");
  if (fragment.has("token") || query.has("token")) {
    query.delete("token");
    var rest = query.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    requestInterceptor: function (request) {
      var target = new URL(request.url, window.location.href);
      if (token && target.origin === window.location.origin && !request.headers.Authorization) {
        request.headers.Authorization = "Bearer " + token;
      }
      return request;
    }
  });
})();
</script>
</body>
</html>
"""
#: Keep the page (opened with ``?token=``) out of caches and its URL out of Referer headers.
DOCS_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def with_bearer_auth(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with a bearer scheme on every route but ``/health`` (Swagger's Authorize)."""
    components = schema.setdefault("components", {})
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The auth token, or a JWT signed with the JWT secret.",
        }
    }
    schema["security"] = [{"bearer": []}]
    for operation in schema.get("paths", {}).get("/health", {}).values():
        operation["security"] = []
    return schema


def create_app(
    store: TrackerStore, settings: ServerSettings | None = None, *, close_on_shutdown: bool = True
) -> FastAPI:
    """The HTTP API over ``store``; the store is closed when the app shuts down."""
    from eventstore import __version__

    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # uvicorn has finished the in-flight requests (their appends are stored) by now.
        if close_on_shutdown:
            broker = store.event_broker
            await run_in_threadpool(close_store, store)
            logger.info("store closed" + ("; event broker flushed" if broker else ""))

    app = FastAPI(
        title="eventstore",
        version=__version__,
        description="Trackers and events of chatbot conversations, Rasa-compatible.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(
        ServiceMiddleware, metrics=app.state.metrics, max_body_bytes=settings.max_body_bytes
    )
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match"],
            expose_headers=["ETag", "X-Conversation-Version", "X-Eventstore-Worker"],
        )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Principal = Depends(require_auth)) -> JSONResponse:
        return JSONResponse(with_bearer_auth(app.openapi()))

    @app.get("/docs", include_in_schema=False)
    async def docs(_: Principal = Depends(require_auth)) -> HTMLResponse:
        # The same page whatever credentials opened it: the token is never written into it.
        return HTMLResponse(DOCS_PAGE, headers=DOCS_HEADERS)

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment, the store from endpoints."""
    settings = ServerSettings.from_env()
    store = build_store(settings)
    return create_app(store, settings)


def build_store(settings: ServerSettings) -> TrackerStore:
    """The store of ``settings.endpoints`` (in-memory without one)."""
    from eventstore.factory import create_from_endpoints, create_tracker_store

    if settings.endpoints is None:
        return create_tracker_store(None)
    from eventstore.endpoints import load_endpoints

    return create_from_endpoints(load_endpoints(settings.endpoints))


__all__ = ["app_from_env", "build_store", "create_app"]
