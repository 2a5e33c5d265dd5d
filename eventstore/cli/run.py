"""``eventstore run``: serve the HTTP API (needs the ``server`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eventstore.cli.app import app
from eventstore.config import parse_config
from eventstore.server.config import DEFAULT_MAX_BODY_BYTES, ServerSettings


@app.command()
def run(
    endpoints: Annotated[
        Path | None,
        typer.Option(help="endpoints.yml with tracker_store/event_broker (default: in-memory)."),
    ] = None,
    domain: Annotated[
        Path | None,
        typer.Option(
            help="Rasa domain.yml (or a directory): trackers carry its slots (overrides "
            "endpoints.yml's domain:)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 5005,
    auth_token: Annotated[
        str | None,
        typer.Option(
            help="Token required as ?token= or 'Authorization: Bearer'.",
            envvar="EVENTSTORE_AUTH_TOKEN",
            show_default=False,
            show_envvar=True,
        ),
    ] = None,
    jwt_secret: Annotated[
        str | None,
        typer.Option(
            help="Secret of JWTs sent as 'Authorization: Bearer'.",
            envvar="EVENTSTORE_JWT_SECRET",
            show_default=False,
            show_envvar=True,
        ),
    ] = None,
    jwt_method: Annotated[
        str, typer.Option(help="JWT algorithm: HS256, HS384 or HS512.")
    ] = "HS256",
    workers: Annotated[int, typer.Option(help="Worker processes (needs a shared store).")] = 1,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest accepted request body, in bytes.")
    ] = DEFAULT_MAX_BODY_BYTES,
    graceful_timeout: Annotated[
        int, typer.Option(help="Seconds to let in-flight requests finish on shutdown.")
    ] = 30,
    wait_for_store: Annotated[
        float,
        typer.Option(
            help="Seconds to keep trying an unreachable tracker store before giving up "
            "(default: exit at once with one line, whatever the backend)."
        ),
    ] = 0.0,
    access_log: Annotated[bool, typer.Option(help="Log every request (tokens masked).")] = True,
    cors: Annotated[
        list[str] | None,
        typer.Option(help="Allow browsers on this origin (repeat it; '*' for any)."),
    ] = None,
) -> None:
    """Serve conversations over HTTP (Rasa-compatible API; OpenAPI docs at /docs)."""
    from eventstore.server import require_server_extra

    require_server_extra()
    from eventstore.server.serve import serve

    settings = parse_config(
        ServerSettings,
        {
            "endpoints": str(endpoints) if endpoints is not None else None,
            "domain": str(domain) if domain is not None else None,
            "host": host,
            "port": port,
            "auth_token": auth_token,
            "jwt_secret": jwt_secret,
            "jwt_method": jwt_method,
            "workers": workers,
            "max_body_bytes": max_body_bytes,
            "graceful_timeout": graceful_timeout,
            "access_log": access_log,
            "wait_for_store": wait_for_store,
            "cors_origins": tuple(cors or ()),
        },
        "run",
    )
    serve(settings, echo=lambda line: typer.echo(line, err=True))
