"""``eventstore analytics``: keep the analytics tables up to date from the store's feed."""

from __future__ import annotations

import sys
import threading

import typer

from eventstore.cli.app import app
from eventstore.cli.migrate import _stop_on_signals


@app.command("analytics")
def analytics_command(
    endpoints: str = typer.Option(
        "endpoints.yml", "--endpoints", help="endpoints.yml whose tracker_store is read"
    ),
    to: str | None = typer.Option(
        None,
        "--to",
        help=(
            "SQL database URL for the tables (default: endpoints.yml's analytics.url, else "
            "the store's own database, SQL only)"
        ),
    ),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="after catching up, keep projecting new events"
    ),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="delete every analytics row first and project from position 0"
    ),
    batch_size: int = typer.Option(
        1000, "--batch-size", min=1, help="events per batch (one transaction each)"
    ),
    poll_interval: float = typer.Option(
        0.5, "--poll-interval", min=0.01, help="seconds between polls once caught up (--follow)"
    ),
) -> None:
    """Project every stored event into the analytics_* tables, exactly once (docs/analytics.md).

    Each batch's rows commit with the checkpoint; a killed run resumes where it stopped.
    """
    from eventstore.analytics.erasure import parse_analytics
    from eventstore.analytics.runner import AnalyticsReport, AnalyticsRunner, open_target
    from eventstore.endpoints import load_endpoints
    from eventstore.errors import NoPositionsError
    from eventstore.factory import open_store
    from eventstore.stores.base import TrackerStore

    config = load_endpoints(endpoints)
    section = config.store_section("analytics")
    if to is None and (settings := parse_analytics(config.analytics)) is not None:
        to = settings.url
    store = open_store(section, f"{endpoints}: tracker_store")
    try:
        if not store.has_positions or not isinstance(store, TrackerStore):
            raise NoPositionsError(type(store).__name__)
        target = open_target(store, to)
        try:
            runner = AnalyticsRunner(
                store, target, batch_size=batch_size, poll_interval=poll_interval
            )
            if rebuild:
                runner.rebuild()

            def progress(report: AnalyticsReport) -> None:
                if follow:
                    print(
                        f"position {report.position}: {report.events} events projected",
                        file=sys.stderr,
                        flush=True,
                    )

            with _stop_on_signals() as stop:

                def watch() -> None:
                    stop.wait()
                    runner.stop()

                watcher = threading.Thread(target=watch, daemon=True)
                watcher.start()
                report = runner.run(follow=follow, on_batch=progress)
                stop.set()
            typer.echo(
                f"{report.events} events projected in {report.batches} batches into "
                f"{target.where}; checkpoint at position {report.position}"
            )
        finally:
            target.close()
    finally:
        store.close()
