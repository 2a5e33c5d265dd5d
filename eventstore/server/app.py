"""The app factory: one FastAPI app around one store, closed with the app.

``create_app(store, settings)`` is what tests and embedders use; ``app_from_env()`` is the
factory uvicorn's worker processes call (``--workers N``), building the store from the
settings the parent passed in the environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
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
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request, _: Principal = Depends(require_auth)) -> HTMLResponse:
        # The page fetches the schema itself: hand it the ?token= it was opened with.
        token = request.query_params.get("token")
        url = "/openapi.json" + (f"?{request.url.query}" if token else "")
        return get_swagger_ui_html(openapi_url=url, title="eventstore API")

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
