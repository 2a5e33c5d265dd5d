"""``eventstore migrate``: copy conversations between two stores, resumably, with ``--verify``."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from eventstore.cli.app import app
from eventstore.cli.export import conversation_progress, count, parse_ids
from eventstore.errors import BackendUnavailable, ConfigError
from eventstore.stores.base import EventSource


def _open(path: str, role: str) -> EventSource:
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import open_store

    section = load_endpoints(path).store_section(f"the migration {role}")
    store = open_store(section, f"{path}: tracker_store")
    if store.process_local:
        raise ConfigError(
            f"{path}: an in-memory store cannot be a migration {role}: "
            "it holds nothing outside the process that wrote it"
        )
    return store


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set the event (``--follow`` then ends with a last pass); a second
    signal interrupts at once."""
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command("migrate")
def migrate_command(
    source_path: str | None = typer.Option(
        None, "--from", help="endpoints.yml whose tracker_store is the source (required)."
    ),
    target_path: str | None = typer.Option(
        None, "--to", help="endpoints.yml whose tracker_store is the target (required)."
    ),
    conversation_ids: str | None = typer.Option(
        None, "--conversation-ids", help="Comma-separated conversation ids (default: all)."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Compare event count and checksum of every conversation."
    ),
    follow: bool = typer.Option(
        False,
        "--follow",
        help="After the first pass, keep copying what the source appends until SIGINT or "
        "SIGTERM; a last pass then copies everything written before the signal.",
    ),
    interval: float = typer.Option(
        1.0, "--interval", min=0.0, help="Seconds between the passes of --follow."
    ),
) -> None:
    """Copy conversations from one store to another; a re-run copies only what is missing."""
    from eventstore.migrate import migrate, migrate_follow
    from eventstore.stores.base import TrackerStore

    if source_path is None or target_path is None:
        raise ConfigError("migrate needs both --from A.yml and --to B.yml")
    ids = parse_ids(conversation_ids)
    source = _open(source_path, "source")
    try:
        target = _open(target_path, "target")
        if not isinstance(target, TrackerStore):
            target.close()
            raise ConfigError(f"{target_path}: layout: rasa is read-only; it cannot be a target")
        try:
            with conversation_progress("migrating") as progress:
                if follow:
                    with _stop_on_signals() as stop:
                        report = migrate_follow(
                            source,
                            target,
                            stop,
                            interval=interval,
                            conversation_ids=ids,
                            verify=verify,
                            on_start=progress.start,
                            on_conversation=lambda r: progress.advance(r.sender_id, r.copied),
                        )
                else:
                    report = migrate(
                        source,
                        target,
                        conversation_ids=ids,
                        verify=verify,
                        on_start=progress.start,
                        on_conversation=lambda r: progress.advance(r.sender_id, r.copied),
                    )
        except BackendUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            print(
                "what was copied stays copied; run the same command again to continue",
                file=sys.stderr,
            )
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            print(
                f"interrupted after {progress.done} of {progress.total} conversations "
                f"({count(progress.events, 'event')} copied); what was copied stays copied: "
                "run the same command again to continue",
                file=sys.stderr,
            )
            raise typer.Exit(130) from None
        finally:
            target.close()
    finally:
        source.close()
    for sid in report.missing_ids:
        print(f"warning: conversation {sid!r} is not in the source store", file=sys.stderr)
    for result in report.conflicts:
        print(f"conflict: {result.sender_id!r}: {result.detail}", file=sys.stderr)
    for result in report.failures:
        print(f"failed: {result.sender_id!r}: {result.detail}", file=sys.stderr)
    for bad in report.mismatches:
        print(
            f"mismatch: {bad.sender_id!r}: source {bad.source_count} events "
            f"sha256 {bad.source_checksum[:12]}, target {bad.target_count} events "
            f"sha256 {bad.target_checksum[:12]}",
            file=sys.stderr,
        )
    typer.echo(
        f"{count(report.conversations, 'conversation')}: {report.copied} copied, "
        f"{report.completed} completed, {report.skipped} already there, "
        f"{count(len(report.conflicts), 'conflict')}, {len(report.failures)} failed; "
        f"{count(report.events_copied, 'event')} copied in {report.seconds:.2f} s"
    )
    if verify:
        typer.echo(
            f"verified {count(report.verified, 'conversation')}: "
            f"{count(len(report.mismatches), 'mismatch', 'mismatches')}"
        )
    if not report.ok:
        raise typer.Exit(1)
