"""``eventstore events``: stream stored events matching filters, from any tracker store.

Results are written as they arrive (the SQL store reads them with a server-side cursor),
so a query over millions of events runs in constant memory. ``--after`` resumes from a
global position on stores that keep one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO

import typer

from eventstore.cli.app import app
from eventstore.errors import ConfigError, NoPositionsError
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.times import parse_time


class OutputFormat(StrEnum):
    jsonl = "jsonl"
    table = "table"


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


def write_events(
    events: Iterable[StoredEvent], output_format: OutputFormat, out: TextIO, flush: bool = False
) -> int:
    """Write each event as it arrives (``flush``: each line at once); returns how many."""
    count = 0
    if output_format is OutputFormat.table:
        out.write(TABLE_HEADER + "\n")
    for event in events:
        if output_format is OutputFormat.jsonl:
            out.write(json.dumps(event.as_message(), ensure_ascii=False) + "\n")
        else:
            out.write(table_line(event) + "\n")
        count += 1
        if flush:
            out.flush()
    out.flush()
    return count


def follow_events(
    store: TrackerStore, query: EventQuery, poll_interval: float
) -> Iterator[StoredEvent]:
    """The feed from ``query.after_position`` on, live, filtered like ``query``."""
    filters = replace(query, after_position=None, limit=None)
    count = 0
    for batch in store.subscribe(after=query.after_position or 0, poll_interval=poll_interval):
        for event in batch.events:
            if filters.matches(event):
                yield event
                count += 1
                if query.limit is not None and count >= query.limit:
                    return


@app.command("events")
def events_command(
    endpoints: str = typer.Option("endpoints.yml", "--endpoints", help="endpoints.yml to read"),
    sender_id: str | None = typer.Option(None, "--sender-id", help="one conversation"),
    type_name: str | None = typer.Option(
        None, "--type-name", "--type", help="event type, e.g. user"
    ),
    intent: str | None = typer.Option(None, "--intent", help="intent of user events"),
    action: str | None = typer.Option(None, "--action", help="the event's name (actions...)"),
    since: str | None = typer.Option(
        None, "--since", help="timestamp >= SINCE (epoch seconds or ISO 8601)"
    ),
    until: str | None = typer.Option(
        None, "--until", help="timestamp <= UNTIL (epoch seconds or ISO 8601)"
    ),
    after: int | None = typer.Option(None, "--after", help="global position > AFTER"),
    limit: int | None = typer.Option(None, "--limit", min=0, help="at most LIMIT events"),
    output_format: OutputFormat = typer.Option(OutputFormat.jsonl, "--format"),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="then keep printing new events as they are stored"
    ),
    poll_interval: float = typer.Option(
        0.5, "--poll-interval", min=0.01, help="seconds between polls once caught up (--follow)"
    ),
) -> None:
    """Print stored events matching the filters, oldest first (by position or seq).

    With ``--follow``: every event in position order from ``--after`` (gap-free,
    docs/feed.md), then new ones as they are stored, until interrupted.
    """
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import open_store

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
    section = load_endpoints(endpoints).store_section("events")
    store = open_store(section, f"{endpoints}: tracker_store")
    try:
        if after is not None and not store.has_positions:
            raise ConfigError(f"--after: {type(store).__name__} keeps no global positions")
        if follow:
            if not store.has_positions or not isinstance(store, TrackerStore):
                raise NoPositionsError(type(store).__name__)
            write_events(
                follow_events(store, query, poll_interval), output_format, sys.stdout, True
            )
        else:
            write_events(store.query(query), output_format, sys.stdout)
    except KeyboardInterrupt:  # Ctrl-C ends --follow
        pass
    except BrokenPipeError:  # `eventstore events ... | head`
        sys.stderr.close()
    finally:
        store.close()
