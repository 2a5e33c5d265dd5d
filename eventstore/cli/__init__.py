"""The ``eventstore`` command line: argument wiring only; the work is in plain functions.

Each command group lives in its own module and registers itself on ``app``.
An ``EventStoreError`` becomes one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from eventstore.cli.app import app
from eventstore.errors import EventStoreError

# Command modules register themselves on ``app`` when imported.
from eventstore.cli import commands  # noqa: F401  isort: skip


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    Eventstore errors and usage errors (unknown option, bad value) alike become one line
    on stderr and exit code 1.
    """
    try:
        code = app(args=argv, prog_name="eventstore", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and exc.format_message() == ctx.get_help():
            print(exc.format_message())  # no arguments at all: the help
            return 0
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = " ".join(exc.format_message().replace("Value error, ", "").split())
        print(f"error: {message}{hint}", file=sys.stderr)
        return 1
    except typer.Abort:
        return 130
    except EventStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
