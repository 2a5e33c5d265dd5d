"""Re-publish stored events to an event broker (``eventstore export``), one conversation at a time.

Unlike ``rasa export``, which loads every tracker first, this streams: conversation ids come
from ``keys()`` in sorted batches of bounded size, each conversation's events are read with
``query`` and published in seq order, and the broker is flushed after every batch. Memory
stays bounded by one id batch plus one message batch, whatever the number of conversations.

Conversations are exported in sorted id order, so a failed run can be resumed exactly: the
``ResumePoint`` (conversation id and seq of the last confirmed event) says where to restart.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventstore.errors import BrokerError, ConfigError, EventStoreError, ExportFailed
from eventstore.stores.base import EventQuery, EventSource, StoredEvent

if TYPE_CHECKING:
    from brokers.base import EventBroker


#: Conversation ids held in memory at once while listing ``keys()`` in sorted order.
ID_BATCH = 10_000
#: Messages handed to the broker per ``publish_many`` + ``flush``.
PUBLISH_BATCH = 500


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Everything up to and including event ``seq`` of ``sender_id`` (in id order) was published."""

    sender_id: str
    seq: int


@dataclass
class ExportSummary:
    """What an export run did."""

    conversations: int = 0
    events: int = 0
    seconds: float = 0.0
    missing_ids: list[str] = field(default_factory=list)
    last_confirmed: ResumePoint | None = None


def check_time_range(minimum: float | None, maximum: float | None) -> None:
    """Refuse a non-finite bound or a maximum below the minimum (as ``rasa export`` does)."""
    for name, value in (("minimum", minimum), ("maximum", maximum)):
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"--{name}-timestamp must be a finite number, got {value!r}")
    if minimum is not None and maximum is not None and maximum < minimum:
        raise ConfigError(
            f"--maximum-timestamp ({maximum}) must not be smaller than "
            f"--minimum-timestamp ({minimum})"
        )


def sorted_keys(
    store: EventSource, start: str | None = None, batch: int = ID_BATCH, inclusive: bool = False
) -> Iterator[str]:
    """Every conversation id of ``store`` after ``start`` (or from it, if ``inclusive``), sorted.

    Holds at most ``batch`` ids at a time: each pass over ``keys()`` keeps the ``batch``
    smallest ids above the last one returned (a single pass when the store has fewer ids).
    """
    if batch < 1:
        raise ConfigError(f"id batch must be at least 1, got {batch}")
    last = start
    first = True
    while True:
        candidates: Iterable[str] = store.keys()
        if last is not None:
            bound = last
            take_equal = inclusive and first
            candidates = (k for k in candidates if k > bound or (take_equal and k == bound))
        picked = heapq.nsmallest(batch, candidates)
        chunk = sorted(set(picked))  # a store may list an id twice
        yield from chunk
        if len(picked) < batch:
            return
        last = chunk[-1]
        first = False


def count_keys(store: EventSource, start: str | None = None) -> int:
    """How many ids ``sorted_keys(store, start, inclusive=True)`` gives; one pass, no list."""
    keys = store.keys()
    return sum(1 for k in keys if start is None or k >= start)


def select_conversations(
    store: EventSource,
    requested: Iterable[str] | None,
    resume: ResumePoint | None = None,
    batch: int = ID_BATCH,
    where: str = "the tracker store",
) -> tuple[Iterator[str], int, list[str]]:
    """The ids to handle (sorted), how many, and the requested ids the store does not hold.

    With ``requested``, the ids are ``keys() ∩ requested``: none at all is an error, as is
    an empty store. With ``resume``, ids before its conversation are left out.
    """
    start = resume.sender_id if resume is not None else None
    if requested is not None:
        wanted = sorted({r for r in requested if r})
        if not wanted:
            raise ConfigError("--conversation-ids names no conversation")
        present = [sid for sid in wanted if store.version(sid) > 0]
        found = set(present)
        missing = [sid for sid in wanted if sid not in found]
        if not present:
            shown = ", ".join(repr(m) for m in missing[:10])
            more = " ..." if len(missing) > 10 else ""
            raise ConfigError(f"none of the requested conversations is in {where}: {shown}{more}")
        if start is not None:
            present = [sid for sid in present if sid >= start]
        return iter(present), len(present), missing
    total = count_keys(store, start)
    if total == 0 and start is None:
        raise ConfigError(f"{where} holds no conversations")
    return sorted_keys(store, start, batch, inclusive=True), total, []


def conversation_events(
    store: EventSource,
    sender_id: str,
    minimum: float | None,
    maximum: float | None,
    after_seq: int = 0,
) -> Iterator[StoredEvent]:
    """The stored events of one conversation with min <= timestamp < max and seq > after_seq."""
    for event in store.query(EventQuery(sender_id=sender_id, since=minimum)):
        if event.seq <= after_seq:
            continue
        stamp = event.timestamp
        if minimum is not None and stamp < minimum:
            continue
        if maximum is not None and stamp >= maximum:
            continue
        yield event


def export_message(event: StoredEvent, offset_seconds: float = 0) -> dict[str, Any]:
    """The broker body of ``event``; the offset shifts only this published copy's timestamp."""
    body = event.as_message()
    if offset_seconds and isinstance(body.get("timestamp"), int | float):
        body["timestamp"] = body["timestamp"] + offset_seconds
    return body


def export_events(
    store: EventSource,
    broker: EventBroker,
    *,
    minimum_timestamp: float | None = None,
    maximum_timestamp: float | None = None,
    conversation_ids: Iterable[str] | None = None,
    offset_seconds: float = 0,
    resume: ResumePoint | None = None,
    publish_batch: int = PUBLISH_BATCH,
    id_batch: int = ID_BATCH,
    on_start: Callable[[int], None] | None = None,
    on_conversation: Callable[[str, int], None] | None = None,
) -> ExportSummary:
    """Publish the stored events of ``store`` to ``broker``, conversation by conversation.

    Events go out in seq order per conversation, conversations in sorted id order, and the
    broker is flushed after every ``publish_batch`` messages. On a failure ``ExportFailed``
    carries the last confirmed ``ResumePoint``; pass it as ``resume`` to continue (events
    after it are published again at most once more: consumers deduplicate by
    ``(sender_id, seq)``).
    """
    check_time_range(minimum_timestamp, maximum_timestamp)
    if publish_batch < 1:
        raise ConfigError(f"publish batch must be at least 1, got {publish_batch}")
    if not broker.is_ready():
        raise ConfigError(f"the event broker {broker!r} is not reachable; nothing was exported")
    started = time.perf_counter()
    summary = ExportSummary(last_confirmed=resume)
    ids, total, missing = select_conversations(store, conversation_ids, resume, id_batch)
    summary.missing_ids = missing  # the caller reports them (once)
    if on_start is not None:
        on_start(total)

    pending: list[dict[str, Any]] = []
    pending_last: ResumePoint | None = None

    def flush() -> None:
        nonlocal pending, pending_last
        if pending:
            broker.publish_many(pending)
            broker.flush()
            summary.events += len(pending)
            pending = []
        if pending_last is not None:
            summary.last_confirmed = pending_last

    try:
        for sid in ids:
            after_seq = resume.seq if resume is not None and sid == resume.sender_id else 0
            count = 0
            for event in conversation_events(
                store, sid, minimum_timestamp, maximum_timestamp, after_seq
            ):
                pending.append(export_message(event, offset_seconds))
                pending_last = ResumePoint(sid, event.seq)
                count += 1
                if len(pending) >= publish_batch:
                    flush()
            if count == 0:  # nothing (more) to publish here: a resume re-reads it, harmlessly
                pending_last = ResumePoint(sid, after_seq)
            summary.conversations += 1
            if on_conversation is not None:
                on_conversation(sid, count)
        flush()
    except (BrokerError, EventStoreError, OSError, KeyboardInterrupt) as exc:
        summary.seconds = time.perf_counter() - started
        raise ExportFailed(exc, summary.last_confirmed, summary) from exc
    summary.seconds = time.perf_counter() - started
    return summary
