"""``eventstore migrate``: copy conversations between two stores, resumably, with ``--verify``."""

from __future__ import annotations

import sys

import typer

from eventstore.cli.app import app
from eventstore.cli.export import conversation_progress, parse_ids
from eventstore.errors import BackendUnavailable, ConfigError


def _open(path: str, role: str) -> object:
    from eventstore.endpoints import load_endpoints
    from eventstore.legacy import open_store
    from eventstore.stores.memory import InMemoryTrackerStore

    section = load_endpoints(path).tracker_store
    if section is None:
        raise ConfigError(
            f"{path} has no tracker_store section (the in-memory default cannot be "
            f"a migration {role})"
        )
    store = open_store(section, f"{path}: tracker_store")
    if isinstance(store, InMemoryTrackerStore):
        raise ConfigError(
            f"{path}: an in-memory store cannot be a migration {role}: "
            "it holds nothing outside the process that wrote it"
        )
    return store


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
) -> None:
    """Copy conversations from one store to another; a re-run copies only what is missing."""
    from eventstore.migrate import migrate
    from eventstore.stores.base import TrackerStore

    if source_path is None or target_path is None:
        raise ConfigError("migrate needs both --from A.yml and --to B.yml")
    ids = parse_ids(conversation_ids)
    source = _open(source_path, "source")
    assert isinstance(source, TrackerStore)
    try:
        target = _open(target_path, "target")
        assert isinstance(target, TrackerStore)
        try:
            with conversation_progress("migrating") as progress:
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
        f"{report.conversations} conversations: {report.copied} copied, "
        f"{report.completed} completed, {report.skipped} already there, "
        f"{len(report.conflicts)} conflicts, {len(report.failures)} failed; "
        f"{report.events_copied} events copied in {report.seconds:.2f} s"
    )
    if verify:
        typer.echo(f"verified {report.verified} conversations: {len(report.mismatches)} mismatches")
    if not report.ok:
        raise typer.Exit(1)
