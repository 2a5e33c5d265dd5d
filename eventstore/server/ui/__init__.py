"""The conversation browser and dashboard served under ``/ui/`` (docs/ui.md).

Server-rendered Jinja2 pages with a little JavaScript and Chart.js, every asset shipped in
the wheel (``static/``): a page never asks any host but this server. Pages send a strict
Content-Security-Policy (scripts and styles only from this server, no inline script), so
stored text that looks like HTML can only ever be shown as text.
"""

from __future__ import annotations

from collections.abc import Awaitable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventstore.errors import EventStoreError
from eventstore.server.errors import ApiError, translate
from eventstore.server.ui.auth import LoginRequired, Redirect, wants_html
from eventstore.server.ui.routes import HERE, router, templates

#: Headers of every page and fragment under /ui/.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _is_page(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/ui") and not path.startswith(("/ui/api/", "/ui/static/"))


def mount_ui(app: FastAPI) -> None:
    """Add the pages, their static files, their error pages and their headers to ``app``."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")

    @app.get("/", include_in_schema=False)
    async def landing(request: Request) -> Response:
        """``/``: a browser lands on the conversation browser; other clients (probes,
        curl) get a 200 saying where the pages, the API docs and the health check are.
        Public, like ``/health``: it names no conversation and no version."""
        base = str(request.scope.get("root_path", "")).rstrip("/")
        if wants_html(request):
            return RedirectResponse(f"{base}/ui/", status_code=303)
        links = {"ui": f"{base}/ui/", "docs": f"{base}/docs", "health": f"{base}/health"}
        return JSONResponse({"service": "eventstore", **links})

    api_handler = app.exception_handlers[ApiError]

    async def on_login_required(request: Request, exc: Exception) -> Response:
        """A browser gets the sign-in form; other clients the API's JSON error."""
        assert isinstance(exc, LoginRequired)
        if not wants_html(request):
            return await _maybe_await(api_handler(request, ApiError(exc.status, exc.message)))
        context = {"next": exc.next_url, "message": exc.message}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return templates.TemplateResponse(
            request, "login.html", context, status_code=exc.status, headers=headers
        )

    async def on_redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Redirect)
        return exc.response

    async def on_error(request: Request, exc: Exception) -> Response:
        """Pages show errors as a page; everything else keeps the API's JSON body."""
        if not (_is_page(request) and wants_html(request)):
            return await _maybe_await(api_handler(request, exc))
        error = translate(exc)
        context = {"status": error.status, "message": error.message, "principal": None}
        return templates.TemplateResponse(request, "error.html", context, error.status)

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(Redirect, on_redirect)
    app.add_exception_handler(ApiError, on_error)
    app.add_exception_handler(EventStoreError, on_error)

    app.add_middleware(PageHeaders)


class PageHeaders:
    """ASGI middleware: the security headers on everything under /ui (no-store on pages).

    Plain ASGI rather than ``@app.middleware``: it never reads or wraps the request body,
    so the service's body limit and streaming behave exactly as without the UI.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/ui"):
            await self.app(scope, receive, send)
            return
        extra = dict(PAGE_HEADERS)
        if not path.startswith("/ui/static/"):
            extra["Cache-Control"] = "no-store"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in extra.items():
                    if key == "Cache-Control" or key not in headers:
                        headers[key] = value
            await send(message)

        await self.app(scope, receive, with_headers)


async def _maybe_await(value: Response | Awaitable[Response]) -> Response:
    if isinstance(value, Response):
        return value
    return await value


__all__ = ["mount_ui"]
