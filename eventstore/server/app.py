"""The app factory: one FastAPI app around one store, closed with the app.

``create_app(store, settings)`` is what tests and embedders use; ``app_from_env()`` is the
factory uvicorn's worker processes call (``--workers N``), building the store from the
settings the parent passed in the environment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from eventstore.domain import Domain
from eventstore.drivers import require
from eventstore.privacy.erasure import AuditTrail
from eventstore.relay import broker_of, relay_of
from eventstore.server.auth import Principal, require_auth
from eventstore.server.config import ServerSettings
from eventstore.server.errors import install_error_handlers
from eventstore.server.events_api import router as events_router
from eventstore.server.metrics import Metrics, ServiceMiddleware
from eventstore.server.params import refuse_unknown_parameters
from eventstore.server.routes import router
from eventstore.server.stopping import on_stop_signal
from eventstore.server.ui import mount_ui
from eventstore.stores.base import TrackerStore

logger = logging.getLogger("eventstore.server")


def close_store(store: TrackerStore) -> bool:
    """Close the store after its relay published what is pending; then close the broker.

    Returns whether every stored event was published (True without a broker).

    The relay is stopped explicitly (not only through ``store.close()``) so a backend whose
    ``close`` forgets ``super().close()`` still flushes its events to the broker.
    """
    relay = relay_of(store)
    flushed = True
    try:
        if relay is not None and not relay.stop():
            flushed = False
            logger.warning("some stored events are not published yet; the relay resumes later")
    except Exception:
        flushed = False
        logger.exception("stopping the event relay failed")
    try:
        store.close()
    except Exception:
        logger.exception("closing the store failed")
    return flushed


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
<link type="text/css" rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
<title>eventstore API</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
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


def docs_assets() -> StaticFiles:
    """Swagger UI's script and stylesheet, from the installed ``fastapi-offline`` package.

    Served by this server, so ``/docs`` works where the internet is out of reach.
    """
    from importlib.resources import files

    require("fastapi_offline", "server")
    return StaticFiles(directory=str(files("fastapi_offline") / "static"))


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
    store: TrackerStore,
    settings: ServerSettings | None = None,
    *,
    close_on_shutdown: bool = True,
    domain: Domain | None = None,
) -> FastAPI:
    """The HTTP API over ``store``; the store is closed when the app shuts down.

    ``domain`` (default: the one ``settings`` names, if any) gives tracker JSON its slots.
    """
    from eventstore import __version__

    settings = settings or ServerSettings()
    if domain is None:
        domain = build_domain(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from eventstore.privacy.retention import schedule_retention

        scheduler = None
        if settings.endpoints is not None:  # retention on a schedule, one replica at a time
            scheduler = schedule_retention(store, settings.endpoints)
        app.state.retention = scheduler
        # a stop signal ends open streams at once, not after graceful_timeout
        undo_signal = on_stop_signal(app.state.stopping.set)
        try:
            yield
        finally:
            app.state.stopping.set()
            undo_signal()
        if scheduler is not None:
            await run_in_threadpool(scheduler.stop)
        # uvicorn has finished the in-flight requests (their appends are stored) by now.
        if close_on_shutdown:
            broker = broker_of(store)
            flushed = await run_in_threadpool(close_store, store)
            if broker is None:
                logger.info("store closed")
            elif flushed:
                logger.info("store closed; every stored event published to the event broker")
            else:
                logger.info("store closed; unpublished events stay in the outbox")

    app = FastAPI(
        title="eventstore",
        version=__version__,
        description="Trackers and events of chatbot conversations, Rasa-compatible.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        dependencies=[Depends(refuse_unknown_parameters)],
    )
    app.state.store = store
    app.state.settings = settings
    app.state.stopping = threading.Event()
    app.state.domain = domain
    app.state.metrics = Metrics()
    app.state.audit = audit_trail(settings.endpoints)
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(events_router)
    mount_ui(app)
    app.add_middleware(
        ServiceMiddleware, metrics=app.state.metrics, max_body_bytes=settings.max_body_bytes
    )
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Last-Event-ID",
            ],
            expose_headers=["ETag", "X-Conversation-Version", "X-Eventstore-Worker"],
        )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Principal = Depends(require_auth)) -> JSONResponse:
        return JSONResponse(with_bearer_auth(app.openapi()))

    app.mount("/docs/assets", docs_assets(), name="docs-assets")

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


def audit_trail(endpoints: str | None) -> AuditTrail:
    """Where erasures are audited: the log, and ``privacy.audit_file`` when configured."""
    if endpoints is None:
        return AuditTrail()
    from eventstore.endpoints import load_endpoints
    from eventstore.privacy import parse_privacy

    privacy = parse_privacy(load_endpoints(endpoints).privacy)
    return AuditTrail(privacy.audit_file if privacy is not None else None)


def build_store(settings: ServerSettings) -> TrackerStore:
    """The store of ``settings.endpoints`` (in-memory without one)."""
    from eventstore.factory import create_from_endpoints, create_tracker_store

    if settings.endpoints is None:
        return create_tracker_store(None)
    from eventstore.endpoints import load_endpoints

    return create_from_endpoints(load_endpoints(settings.endpoints), "eventstore run")


def build_domain(settings: ServerSettings) -> Domain | None:
    """The domain of ``--domain``, else of endpoints.yml's ``domain:``; None without one."""
    from eventstore.domain import load_domain

    if settings.domain is not None:
        return load_domain(settings.domain)
    if settings.endpoints is None:
        return None
    from eventstore.endpoints import load_endpoints

    path = load_endpoints(settings.endpoints).domain
    return load_domain(path) if path is not None else None


__all__ = ["app_from_env", "build_domain", "build_store", "create_app"]
