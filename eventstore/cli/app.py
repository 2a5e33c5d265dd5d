"""The typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="eventstore",
    help="Event-sourced, Rasa-compatible store for chatbot conversations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: every word of it whatever the terminal (rich panels truncate
    # cells to fit 80 columns when output is not a terminal).
    rich_markup_mode=None,
    context_settings={"max_content_width": 120, "terminal_width": 120},
)
