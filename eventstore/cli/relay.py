"""``eventstore relay``: publish what stores recorded in their outbox, as a standalone process."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from eventstore.cli.app import app


@app.command()
def relay(
    endpoints: Annotated[
        Path, typer.Option(help="endpoints.yml with tracker_store and event_broker sections.")
    ] = Path("endpoints.yml"),
    once: Annotated[
        bool, typer.Option("--once", help="Publish what is pending now, then exit.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="With --once: keep retrying a failing broker this many seconds.")
    ] = 60.0,
    poll_interval: Annotated[
        float, typer.Option(help="Seconds between looks at the outbox when it is empty.")
    ] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Events published per batch.")] = 500,
    drain_timeout: Annotated[
        float, typer.Option(help="On SIGTERM/SIGINT: seconds to publish what is pending.")
    ] = 10.0,
) -> None:
    """Publish stored events the broker has not confirmed yet (the outbox), in order.

    Runs until SIGTERM or SIGINT, or with --once until the outbox is empty. Exit code 1
    if the broker stayed unreachable.
    """
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import open_relay
    from eventstore.relay import run_until

    _configure_logging()

    store, outbox_relay = open_relay(
        load_endpoints(endpoints), poll_interval=poll_interval, batch_size=batch_size
    )
    name = f"{type(store).__name__} -> {type(outbox_relay.broker).__name__}"
    try:
        if once:
            published = outbox_relay.drain(timeout=timeout)
            typer.echo(f"published {published} events ({name}); outbox empty")
            return
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        typer.echo(f"relaying {name}; stop with Ctrl-C or SIGTERM")
        try:
            empty = run_until(outbox_relay, stop, drain_timeout)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        state = "outbox empty" if empty else "events left in the outbox for the next run"
        typer.echo(f"published {outbox_relay.published} events; {state}")
    finally:
        outbox_relay.broker.close()
        store.close()


def _configure_logging() -> None:
    """Warnings and errors to stderr, one line each; pika's own connection-failure
    tracebacks are muted (the relay logs one warning per outage and retries)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.CRITICAL)
