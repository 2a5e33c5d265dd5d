"""The ``eventstore`` command line: argument wiring only; the work is in plain functions.

Each command group lives in its own module and registers itself on ``app``.
An ``EventStoreError`` becomes one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import sys

from eventstore.cli.app import app
from eventstore.errors import EventStoreError

# Command modules register themselves on ``app`` when imported.
from eventstore.cli import commands  # noqa: F401  isort: skip


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; eventstore errors become one line on stderr."""
    try:
        app(args=argv, prog_name="eventstore")
    except SystemExit as exc:  # typer/click end every run with SystemExit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except EventStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
