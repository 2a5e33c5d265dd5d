"""Run the app on uvicorn: one process, or ``--workers N`` processes sharing one socket.

Start-up says where the service listens and which store and broker it uses, with every
password masked. The access log never shows a ``?token=`` value. On SIGTERM/SIGINT uvicorn
stops accepting, lets in-flight requests finish (up to ``graceful_timeout`` s), then the
app's shutdown closes the store, which flushes the event relay and closes the broker.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eventstore.config import secret_value
from eventstore.errors import ConfigError
from eventstore.relay import broker_of
from eventstore.secrets import describe_section, redact
from eventstore.server.config import SETTINGS_ENV, ServerSettings
from eventstore.server.metrics import MULTIPROC_ENV

#: Shortest HMAC key RFC 7518 recommends (for HS256).
MIN_JWT_SECRET_BYTES = 32


class RedactTokens(logging.Filter):
    """Replaces ``?token=...`` (and passwords in URLs) in log records with ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config with the token filter on every handler, plus our logger."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": f"{__name__}.RedactTokens"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["loggers"]["eventstore"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port`` (port 0: a free port), inheritable by workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def startup_lines(settings: ServerSettings, store: Any, port: int) -> list[str]:
    """What ``eventstore run`` prints before serving."""
    from eventstore import __version__

    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    lines = [
        f"eventstore {__version__} listening on http://{host}:{port} (UI: /ui/, API docs: /docs)"
    ]
    endpoints = None
    if settings.endpoints is not None:
        from eventstore.endpoints import load_endpoints

        endpoints = load_endpoints(settings.endpoints)
    store_section = describe_section(endpoints.tracker_store if endpoints else None)
    shown = f" ({store_section})" if store_section else ""
    lines.append(f"tracker store: {type(store).__name__}{shown}")
    broker = broker_of(store)
    if broker is None:
        lines.append("event broker: none")
    else:
        broker_section = describe_section(endpoints.event_broker if endpoints else None)
        inner = getattr(broker, "inner", broker)  # publish-only redaction wraps the broker
        lines.append(f"event broker: {type(inner).__name__} ({broker_section})")
    if endpoints is not None:
        from eventstore.privacy.config import privacy_summary

        lines.extend(privacy_summary(endpoints))
    if store.process_local:
        lines.append(
            "WARNING: the in-memory store keeps conversations in this process only; "
            "history is lost on restart. Pass --endpoints endpoints.yml for a persistent store."
        )
    if settings.auth_token and settings.jwt_secret:
        auth = f"token or JWT ({settings.jwt_method})"
    elif settings.auth_token:
        auth = "token"
    elif settings.jwt_secret:
        auth = f"JWT ({settings.jwt_method})"
    else:
        auth = "off (anyone who can reach the port can read and write conversations)"
    lines.append(f"auth: {auth}; workers: {settings.workers}")
    if not settings.auth_enabled and settings.host not in ("127.0.0.1", "localhost", "::1"):
        lines.append(
            f"WARNING: listening on {settings.host} without --auth-token or --jwt-secret: "
            "every host that can reach the port can read, change and delete conversations."
        )
    secret = secret_value(settings.jwt_secret)
    if secret is not None and len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        lines.append(
            f"WARNING: the JWT secret is {len(secret.encode())} bytes; use at least "
            f"{MIN_JWT_SECRET_BYTES} random bytes for {settings.jwt_method} (RFC 7518 §3.2)."
        )
    return lines


@contextmanager
def _sigterm_exits_cleanly() -> Iterator[None]:
    """uvicorn re-raises SIGTERM after its graceful shutdown; make that a normal return (0)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def reachable_store(settings: ServerSettings, echo: Callable[[str], Any]) -> Any:
    """The store, once it answers: the same start-up rule for every backend.

    A store that cannot be reached stops ``eventstore run`` with one line (exit code 1),
    whether its constructor connects (SQL) or its first call does (Redis, MongoDB, ...);
    ``--wait-for-store N`` keeps trying for up to N seconds first (containers starting
    together). A store lost later is reported by ``/health`` and answered with 503s.
    """
    from eventstore.errors import BackendUnavailable, SchemaError
    from eventstore.server.app import build_store, close_store

    deadline = time.monotonic() + settings.wait_for_store
    said = False
    while True:
        store = None
        try:
            store = build_store(settings)
            store.version("eventstore-startup-check")
            return store
        except (BackendUnavailable, SchemaError) as exc:
            if store is not None:
                close_store(store)
            if time.monotonic() + 1 > deadline:
                waited = (
                    f" (waited {settings.wait_for_store:g} s)" if settings.wait_for_store else ""
                )
                raise BackendUnavailable(
                    f"the tracker store is unreachable{waited}, not serving: {exc}"
                    + ("" if waited else "; --wait-for-store SECONDS waits for it")
                ) from exc
            if not said:
                echo(f"waiting up to {settings.wait_for_store:g} s for the tracker store: {exc}")
                said = True
            time.sleep(1)


def serve(settings: ServerSettings, echo: Callable[[str], Any] = print) -> None:
    """Serve until SIGTERM/SIGINT; configuration errors raise before anything listens."""
    import uvicorn

    from eventstore.server.app import build_domain, close_store, create_app

    domain = build_domain(settings)  # a bad domain file stops start-up before any connection
    store = reachable_store(settings, echo)
    if settings.workers > 1 and store.process_local:
        close_store(store)
        raise ConfigError(
            f"--workers {settings.workers} needs a shared store: each worker process would "
            "keep its own in-memory conversations. Configure one in endpoints.yml "
            "(e.g. type: sql) or run one worker."
        )
    try:
        sock = bind(settings.host, settings.port)
    except ConfigError:
        close_store(store)
        raise
    for line in startup_lines(settings, store, sock.getsockname()[1]):
        echo(line)
    if domain is not None:
        echo(f"domain: {domain.source} ({len(domain.slots)} slots: {', '.join(domain.slots)})")
    common: dict[str, Any] = {
        "log_config": log_config(settings.log_level),
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "timeout_graceful_shutdown": settings.graceful_timeout,
        "proxy_headers": False,
    }
    if settings.workers == 1:
        app = create_app(store, settings, domain=domain)
        server = uvicorn.Server(uvicorn.Config(app, **common))
        try:
            with _sigterm_exits_cleanly():
                server.run(sockets=[sock])
        finally:
            sock.close()
        return
    # Several workers: each builds its own store from the same endpoints (see app_from_env).
    close_store(store)
    from uvicorn.supervisors import Multiprocess

    os.environ[SETTINGS_ENV] = settings.to_env()
    metrics_dir = None
    if not os.environ.get(MULTIPROC_ENV):  # workers sum their metrics through this directory
        metrics_dir = tempfile.mkdtemp(prefix="eventstore-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    config = uvicorn.Config(
        "eventstore.server.app:app_from_env", factory=True, workers=settings.workers, **common
    )
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
        os.environ.pop(SETTINGS_ENV, None)
        if metrics_dir is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)
