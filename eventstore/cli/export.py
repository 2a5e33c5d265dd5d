"""``eventstore export``: re-publish stored events to the event broker, like ``rasa export``.

Also holds the small helpers ``eventstore migrate`` shares: option parsing that fails with
one clear line, and the rich progress bar.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from eventstore.cli.app import app
from eventstore.errors import ConfigError


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


def parse_ids(text: str | None) -> list[str] | None:
    """A comma-separated id list (None when the option was not given)."""
    if text is None:
        return None
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise ConfigError("--conversation-ids names no conversation")
    return ids


class ConversationProgress:
    """A rich progress bar over conversations, on stderr; counts events beside it."""

    def __init__(self, description: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.events = 0
        self._shown = False
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
        """Show the bar, once the work is known to be valid (errors stay one line)."""
        self._progress.update(self._task, total=total)
        self._progress.start_task(self._task)
        self._progress.start()
        self._shown = True

    def advance(self, sender_id: str, events: int) -> None:
        self.events += events
        self._progress.update(self._task, advance=1, events=self.events)

    def __enter__(self) -> ConversationProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._shown:
            self._progress.stop()


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
        None, "--minimum-timestamp", help="Only events with timestamp >= this (epoch seconds)."
    ),
    maximum_timestamp: str | None = typer.Option(
        None, "--maximum-timestamp", help="Only events with timestamp < this (epoch seconds)."
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
    from brokers import create_broker
    from eventstore.endpoints import load_endpoints
    from eventstore.export import ExportFailed, ResumePoint, check_time_range, export_events
    from eventstore.legacy import open_store

    minimum = parse_float(minimum_timestamp, "--minimum-timestamp")
    maximum = parse_float(maximum_timestamp, "--maximum-timestamp")
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
    if config.tracker_store is None:
        raise ConfigError(f"{endpoints} has no tracker_store section; export needs one")
    if config.event_broker is None:
        raise ConfigError(f"{endpoints} has no event_broker section; export needs one")
    broker = create_broker(config.event_broker)
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
        store = open_store(config.tracker_store, f"{endpoints}: tracker_store")
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
            raise typer.Exit(1) from None
        finally:
            store.close()
    finally:
        broker.close()
    for sid in summary.missing_ids:
        print(f"warning: conversation {sid!r} is not in the tracker store", file=sys.stderr)
    rate = summary.events / summary.seconds if summary.seconds > 0 else 0.0
    typer.echo(
        f"exported {summary.events} events of {summary.conversations} conversations "
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
