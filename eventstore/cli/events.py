"""``eventstore events``: stream stored events matching filters, from any tracker store.

Results are written as they arrive (the SQL store reads them with a server-side cursor),
so a query over millions of events runs in constant memory. ``--after`` resumes from a
global position on stores that keep one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO

import typer

from eventstore.cli.app import app
from eventstore.errors import ConfigError
from eventstore.stores.base import EventQuery, StoredEvent


class OutputFormat(StrEnum):
    jsonl = "jsonl"
    table = "table"


def parse_time(text: str | None, option: str) -> float | None:
    """Epoch seconds, or an ISO 8601 date/time (UTC unless it names a zone)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} must be epoch seconds or an ISO date/time, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def table_line(event: StoredEvent) -> str:
    """One fixed-width line: position, conversation, seq, UTC time, type, name, text."""
    data = event.data
    try:
        when = datetime.fromtimestamp(event.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except (ValueError, OverflowError, OSError):  # a stored timestamp no calendar can show
        when = f"{event.timestamp!r:>23}"
    intent = (data.get("parse_data") or {}).get("intent") or {}
    name = data.get("name") or (intent.get("name") if isinstance(intent, dict) else None) or ""
    text = (data.get("text") or "").replace("\n", " ")
    text = text if len(text) <= 40 else text[:37] + "..."
    position = "" if event.position is None else str(event.position)
    return (
        f"{position:>9}  {event.sender_id:<24} {event.seq:>6}  {when}  "
        f"{event.type_name:<18} {name:<24} {text}".rstrip()
    )


TABLE_HEADER = (
    f"{'position':>9}  {'sender_id':<24} {'seq':>6}  {'time (UTC)':<23}  "
    f"{'type':<18} {'name':<24} text"
)


def write_events(events: Iterable[StoredEvent], output_format: OutputFormat, out: TextIO) -> int:
    """Write each event as it arrives; returns how many were written."""
    count = 0
    if output_format is OutputFormat.table:
        out.write(TABLE_HEADER + "\n")
    for event in events:
        if output_format is OutputFormat.jsonl:
            out.write(json.dumps(event.as_message(), ensure_ascii=False) + "\n")
        else:
            out.write(table_line(event) + "\n")
        count += 1
    out.flush()
    return count


@app.command("events")
def events_command(
    endpoints: str = typer.Option("endpoints.yml", "--endpoints", help="endpoints.yml to read"),
    sender_id: str | None = typer.Option(None, "--sender-id", help="one conversation"),
    type_name: str | None = typer.Option(None, "--type", help="event type, e.g. user"),
    intent: str | None = typer.Option(None, "--intent", help="intent of user events"),
    action: str | None = typer.Option(None, "--action", help="the event's name (actions...)"),
    since: str | None = typer.Option(None, "--since", help="timestamp >= (epoch or ISO)"),
    until: str | None = typer.Option(None, "--until", help="timestamp <= (epoch or ISO)"),
    after: int | None = typer.Option(None, "--after", help="global position > AFTER"),
    limit: int | None = typer.Option(None, "--limit", min=0, help="at most LIMIT events"),
    output_format: OutputFormat = typer.Option(OutputFormat.jsonl, "--format"),
) -> None:
    """Print stored events matching the filters, oldest first (by position or seq)."""
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import create_tracker_store

    query = EventQuery(
        sender_id=sender_id,
        type_name=type_name,
        intent=intent,
        action=action,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        after_position=after,
        limit=limit,
    )
    # Reading needs no event broker: only the tracker_store section is opened.
    store = create_tracker_store(load_endpoints(endpoints).tracker_store)
    try:
        if after is not None and not store.has_positions:
            raise ConfigError(f"--after: {type(store).__name__} keeps no global positions")
        write_events(store.query(query), output_format, sys.stdout)
    except BrokenPipeError:  # `eventstore events ... | head`
        sys.stderr.close()
    finally:
        store.close()
