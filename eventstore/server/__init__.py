"""The HTTP service: a FastAPI app serving trackers and events over a Rasa-compatible API.

``create_app(store, settings)`` builds the ASGI app around one store;
``eventstore.server.serve.serve(settings)`` runs it on uvicorn (``eventstore run``). Both
need the ``server`` extra; importing this package alone does not import FastAPI, so
``eventstore --help`` works without the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventstore.server.config import ServerSettings

if TYPE_CHECKING:
    from eventstore.server.app import create_app


def require_server_extra() -> None:
    """Raise ``MissingDependencyError`` (install ``eventstore[server]``) if a part is missing."""
    from eventstore.drivers import require

    for module in ("fastapi", "uvicorn", "prometheus_client", "jwt", "fastapi_offline", "jinja2"):
        require(module, "server")


def __getattr__(name: str) -> Any:
    if name == "create_app":
        require_server_extra()
        from eventstore.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServerSettings", "create_app", "require_server_extra"]
