"""The typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="eventstore",
    help="Event-sourced, Rasa-compatible store for chatbot conversations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
