"""``eventstore export``: re-publish stored events to the event broker, like ``rasa export``.

Also holds the small helpers ``eventstore migrate`` shares: option parsing that fails with
one clear line, and the rich progress bar.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from eventstore.cli.app import app
from eventstore.errors import ConfigError
from eventstore.times import parse_time


def parse_float(text: str | None, option: str) -> float | None:
    """``text`` as a finite float, or a ``ConfigError`` naming ``option``."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{option} must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{option} must be a finite number, got {text!r}")
    return value


def parse_int(text: str | None, option: str) -> int | None:
    """``text`` as an integer, or a ``ConfigError`` naming ``option``."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{option} must be an integer, got {text!r}") from None


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 conversation``, ``2 conversations``, ``0 events`` (``plural`` when not noun+s)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def parse_ids(text: str | None) -> list[str] | None:
    """A comma-separated id list (None when the option was not given)."""
    if text is None:
        return None
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise ConfigError("--conversation-ids names no conversation")
    return ids


#: Seconds between plain progress lines when stderr is not a terminal (cron, CI, a pipe).
PLAIN_PROGRESS_SECONDS = 10.0


class ConversationProgress:
    """Progress over conversations on stderr, counting events beside them.

    A rich bar on a terminal; elsewhere (cron, CI, a pipe) a plain line every
    ``PLAIN_PROGRESS_SECONDS`` and one at the end, since a bar would show nothing there.
    """

    def __init__(self, description: str) -> None:
        self.description = description
        self.events = 0
        self.done = 0
        self.total: int | None = None
        self._shown = False
        self._plain = not sys.stderr.isatty()
        self._last_line = 0.0
        self._started = 0.0
        self._reported = -1
        self._progress: Any = None
        if self._plain:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("conversations, {task.fields[events]} events"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(description, total=None, events=0, start=False)

    def start(self, total: int) -> None:
        """Show the progress, once the work is known to be valid (errors stay one line)."""
        self.total = total
        self._shown = True
        self._started = self._last_line = time.monotonic()
        if self._progress is None:
            self._line()
            return
        self._progress.update(self._task, total=total)
        self._progress.start_task(self._task)
        self._progress.start()

    def advance(self, sender_id: str, events: int) -> None:
        self.events += events
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, events=self.events)
        elif time.monotonic() - self._last_line >= PLAIN_PROGRESS_SECONDS:
            self._line()

    def _line(self) -> None:
        self._last_line = now = time.monotonic()
        self._reported = self.done
        print(
            f"{self.description}: {self.done}/{self.total} conversations, "
            f"{count(self.events, 'event')}, {now - self._started:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> ConversationProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._shown:
            return
        if self._progress is not None:
            self._progress.stop()
        elif self._reported != self.done:  # the last state, unless just printed
            self._line()


@contextmanager
def conversation_progress(description: str) -> Iterator[ConversationProgress]:
    """A progress bar shown for the duration of the block."""
    with ConversationProgress(description) as progress:
        yield progress


def resume_command(options: list[str], sender_id: str | None, seq: int) -> str:
    """The shell command that continues an export from ``sender_id``/``seq``."""
    argv = ["eventstore", "export", *options]
    if sender_id is not None:
        argv += ["--resume-conversation", sender_id, "--resume-after-seq", str(seq)]
    return shlex.join(argv)


@app.command("export")
def export_command(
    endpoints: str = typer.Option("endpoints.yml", "--endpoints", help="endpoints.yml to use."),
    minimum_timestamp: str | None = typer.Option(
        None,
        "--minimum-timestamp",
        help="Only events with timestamp >= this (epoch seconds or ISO 8601).",
    ),
    maximum_timestamp: str | None = typer.Option(
        None,
        "--maximum-timestamp",
        help="Only events with timestamp < this (epoch seconds or ISO 8601).",
    ),
    conversation_ids: str | None = typer.Option(
        None, "--conversation-ids", help="Comma-separated conversation ids (default: all)."
    ),
    offset_timestamps_by_seconds: str | None = typer.Option(
        None,
        "--offset-timestamps-by-seconds",
        help="Add this many seconds to the timestamp of each published copy.",
    ),
    resume_conversation: str | None = typer.Option(
        None, "--resume-conversation", help="Resume: start at this conversation id."
    ),
    resume_after_seq: str | None = typer.Option(
        None, "--resume-after-seq", help="Resume: skip its events up to and including this seq."
    ),
) -> None:
    """Publish the stored events to the event broker, one conversation at a time."""
    from eventstore.endpoints import load_endpoints
    from eventstore.export import ExportFailed, ResumePoint, check_time_range, export_events
    from eventstore.factory import open_store

    minimum = parse_time(minimum_timestamp, "--minimum-timestamp")
    maximum = parse_time(maximum_timestamp, "--maximum-timestamp")
    offset = parse_float(offset_timestamps_by_seconds, "--offset-timestamps-by-seconds") or 0
    check_time_range(minimum, maximum)
    seq = parse_int(resume_after_seq, "--resume-after-seq") or 0
    if seq < 0:
        raise ConfigError(f"--resume-after-seq must not be negative, got {seq}")
    if resume_after_seq is not None and resume_conversation is None:
        raise ConfigError("--resume-after-seq needs --resume-conversation")
    resume = ResumePoint(resume_conversation, seq) if resume_conversation is not None else None
    ids = parse_ids(conversation_ids)

    config = load_endpoints(endpoints)
    store_section = config.store_section("export")
    if config.event_broker is None:
        raise ConfigError(f"{endpoints} has no event_broker section; export needs one")
    from eventstore.factory import create_broker_from_endpoints

    broker = create_broker_from_endpoints(config)  # publish-only redaction applies here too
    assert broker is not None
    options: list[str] = ["--endpoints", endpoints]
    for flag, value in (
        ("--minimum-timestamp", minimum_timestamp),
        ("--maximum-timestamp", maximum_timestamp),
        ("--conversation-ids", conversation_ids),
        ("--offset-timestamps-by-seconds", offset_timestamps_by_seconds),
    ):
        if value is not None:
            options += [flag, value]
    try:
        store = open_store(store_section, f"{endpoints}: tracker_store")
        try:
            with conversation_progress("exporting") as progress:
                summary = export_events(
                    store,
                    broker,
                    minimum_timestamp=minimum,
                    maximum_timestamp=maximum,
                    conversation_ids=ids,
                    offset_seconds=offset,
                    resume=resume,
                    on_start=progress.start,
                    on_conversation=progress.advance,
                )
        except ExportFailed as failed:
            _report_failure(failed, options)
            raise typer.Exit(130 if isinstance(failed.cause, KeyboardInterrupt) else 1) from None
        finally:
            store.close()
    finally:
        broker.close()
    for sid in summary.missing_ids:
        print(f"warning: conversation {sid!r} is not in the tracker store", file=sys.stderr)
    rate = summary.events / summary.seconds if summary.seconds > 0 else 0.0
    typer.echo(
        f"exported {count(summary.events, 'event')} of "
        f"{count(summary.conversations, 'conversation')} "
        f"in {summary.seconds:.2f} s ({rate:.0f} events/s)"
    )


def _report_failure(failed: Any, options: list[str]) -> None:
    point = failed.resume
    print(f"error: {failed}", file=sys.stderr)
    if point is None:
        where = "the broker confirmed nothing yet"
        command = resume_command(options, None, 0)
    else:
        where = f"published up to conversation {point.sender_id!r} seq {point.seq}"
        command = resume_command(options, point.sender_id, point.seq)
    print(f"{where}; resume with: {command}", file=sys.stderr)
