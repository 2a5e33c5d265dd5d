"""``eventstore version`` and ``eventstore backends``."""

from __future__ import annotations

import typer

from eventstore.cli.app import app
from eventstore.stores import STORE_ALIASES, TRACKER_STORES


@app.command()
def version() -> None:
    """Print the eventstore version."""
    from eventstore import __version__

    typer.echo(__version__)


@app.command()
def backends() -> None:
    """List the tracker store and event broker types endpoints.yml accepts."""
    from brokers import BROKER_ALIASES, EVENT_BROKERS

    for title, table, aliases in (
        ("tracker_store types", TRACKER_STORES, STORE_ALIASES),
        ("event_broker types", EVENT_BROKERS, BROKER_ALIASES),
    ):
        typer.echo(f"{title}:")
        for name, target in table.items():
            alias = sorted(a for a, t in aliases.items() if t == name)
            extra = f" (aliases: {', '.join(alias)})" if alias else ""
            typer.echo(f"  {name:<10} {target}{extra}")
