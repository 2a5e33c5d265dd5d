"""``eventstore forget``: erase conversations everywhere and tell the broker's consumers."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from eventstore.cli.app import app
from eventstore.errors import ConfigError
from eventstore.relay import broker_of


def read_id_file(path: Path) -> list[str]:
    """Conversation ids from a file, one a line (blank lines and ``#`` comments skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--from-file: cannot read {str(path)!r}: {exc.strerror}") from None
    return [
        line.rstrip("\r")
        for line in text.split("\n")
        if line.strip() and not line.lstrip().startswith("#")
    ]


@app.command()
def forget(
    sender_ids: Annotated[
        list[str] | None, typer.Argument(help="Conversation ids to erase.", show_default=False)
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="More ids, one a line ('#' comments).")
    ] = None,
    endpoints: Annotated[
        Path, typer.Option(help="endpoints.yml with tracker_store (and event_broker).")
    ] = Path("endpoints.yml"),
    requested_by: Annotated[
        str | None,
        typer.Option(help="Who asked, for the audit line (default: cli:<login name>)."),
    ] = None,
    confirm_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the broker to confirm the tombstones.")
    ] = 30.0,
) -> None:
    """Delete conversations (events, outbox entries...) and publish their tombstones."""
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import create_from_endpoints
    from eventstore.privacy import parse_privacy
    from eventstore.privacy.erasure import AuditTrail
    from eventstore.privacy.erasure import forget as erase

    ids = list(sender_ids or []) + (read_id_file(from_file) if from_file is not None else [])
    if not ids:
        raise ConfigError("forget: name at least one conversation id, or --from-file")
    config = load_endpoints(endpoints)
    privacy = parse_privacy(config.privacy)
    audit = AuditTrail(privacy.audit_file if privacy is not None else None)
    store = create_from_endpoints(config, "forget")
    try:
        erased = erase(
            store,
            ids,
            requested_by=requested_by or f"cli:{getpass.getuser()}",
            audit=audit,
            confirm_timeout=confirm_timeout,
        )
    finally:
        store.close()
    for erasure in erased:
        typer.echo(f"{erasure.sender_id}: {erasure.deleted_events} events deleted")
    told = "tombstones published" if broker_of(store) is not None else "no event broker"
    typer.echo(f"{len(erased)} conversation(s) erased; {told}")


@app.command()
def retention(
    endpoints: Annotated[
        Path, typer.Option(help="endpoints.yml with tracker_store and retention sections.")
    ] = Path("endpoints.yml"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; change nothing.")
    ] = False,
) -> None:
    """Delete (or redact) conversations idle longer than retention.days, once, now."""
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import create_from_endpoints
    from eventstore.privacy.retention import apply_retention, retention_from_endpoints

    config = load_endpoints(endpoints)
    settings, redactor, audit = retention_from_endpoints(config)
    if settings is None:
        raise ConfigError(f"{endpoints} has no retention section")
    store = create_from_endpoints(config)
    try:
        report = apply_retention(store, settings, dry_run=dry_run, redactor=redactor, audit=audit)
    finally:
        store.close()
    if not report.ran:
        typer.echo("another process is applying retention now; nothing done")
        return
    verb = {"delete": "deleted", "redact": "redacted"}[settings.action]
    for sender_id in report.expired:
        typer.echo(f"{sender_id}: {'would be ' + verb if dry_run else verb}")
    typer.echo(
        f"{report.examined} conversations examined, {len(report.expired)} idle for more than "
        f"{settings.days:g} days{' (dry run)' if dry_run else ''}"
        + (f", {report.skipped} written to meanwhile and kept" if report.skipped else "")
        + ("" if report.finished else "; stopped before the lock expired, run again")
    )


@app.command("rotate-key")
def rotate_key(
    endpoints: Annotated[
        Path, typer.Option(help="endpoints.yml whose SQL store sets encryption_keys_env.")
    ] = Path("endpoints.yml"),
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 500,
) -> None:
    """Re-encrypt stored events under the first key of encryption_keys_env (no downtime)."""
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import create_tracker_store
    from eventstore.stores.sql.store import SQLTrackerStore

    store = create_tracker_store(load_endpoints(endpoints).store_section("rotate-key"))
    try:
        if not isinstance(store, SQLTrackerStore):
            raise ConfigError(
                f"rotate-key: encryption at rest is supported by the SQL store, "
                f"not {type(store).__name__}"
            )
        changed = store.rotate_key(batch_size)
        key_id = store.cipher.current_id if store.cipher is not None else "?"
    finally:
        store.close()
    typer.echo(f"{changed} events re-encrypted under key {key_id!r}")
