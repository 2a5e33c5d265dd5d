"""Erasure that reaches every copy: delete, tell the consumers, keep an audit line.

``forget`` deletes each conversation from the store (its events and pending outbox
entries, and whatever else the store keeps for it), then publishes one tombstone per
conversation to the event broker so that consumers delete their copies::

    {"sender_id": "alice", "event": "conversation_deleted", "timestamp": 1733390000.0,
     "deleted_events": 42, "reason": "erasure"}

and records who asked, when, and how many events went (never what they said) in the
``eventstore.audit`` log and, when configured, a JSON-lines audit file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventstore.errors import BrokerError, EventStoreError, TombstoneError
from eventstore.events import validate_sender_id
from eventstore.relay import BufferOutbox, relay_of

if TYPE_CHECKING:
    from eventstore.stores.base import TrackerStore

#: The ``event`` of a tombstone message.
TOMBSTONE_EVENT = "conversation_deleted"
audit_log = logging.getLogger("eventstore.audit")


@dataclass(frozen=True)
class Erasure:
    """One deleted conversation, as the audit trail records it."""

    sender_id: str
    deleted_events: int
    requested_by: str
    reason: str
    timestamp: float

    def tombstone(self) -> dict[str, Any]:
        """The broker message telling consumers to delete their copies."""
        return {
            "sender_id": self.sender_id,
            "event": TOMBSTONE_EVENT,
            "timestamp": self.timestamp,
            "deleted_events": self.deleted_events,
            "reason": self.reason,
        }


class AuditTrail:
    """Writes one line per erasure to the ``eventstore.audit`` logger and, optionally, a file.

    The file is JSON lines, appended and flushed to disk per erasure, so it survives the
    process; it holds conversation ids, counts, requesters and times, no event content.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()

    def record(self, erasure: Erasure) -> None:
        audit_log.info(
            "erased conversation %r: %d events, requested by %s (%s)",
            erasure.sender_id,
            erasure.deleted_events,
            erasure.requested_by,
            erasure.reason,
        )
        if self.path is None:
            return
        line = json.dumps(asdict(erasure), ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())


def forget(
    store: TrackerStore,
    sender_ids: Iterable[str],
    *,
    requested_by: str,
    reason: str = "erasure",
    audit: AuditTrail | None = None,
    confirm_timeout: float = 10.0,
) -> list[Erasure]:
    """Delete each conversation everywhere and publish its tombstone; return what went.

    Every id is checked before anything is deleted. Tombstones are published (also for a
    conversation that held no events: consumers may still have copies) after the relay's
    batch in flight; if the broker does not confirm them within ``confirm_timeout``
    seconds, ``TombstoneError`` says so after the deletion is done and audited (publishing
    again, e.g. by forgetting the same ids again, is safe).
    """
    ids = list(dict.fromkeys(sender_ids))
    for sender_id in ids:
        validate_sender_id(sender_id)
    trail = audit if audit is not None else AuditTrail()
    done = []
    for sender_id in ids:
        removed = store.delete(sender_id)
        _discard_buffered(store, sender_id)
        erase_copies(store, sender_id)
        erasure = Erasure(sender_id, removed, requested_by, reason, time.time())
        trail.record(erasure)
        done.append(erasure)
    publish_tombstones(store, done, confirm_timeout)
    return done


def erase_copies(store: TrackerStore, sender_id: str) -> None:
    """Run the store's erasure hooks (copies outside the store) for a deleted conversation.

    A hook that fails raises after the events are gone; erasing the same id again
    finishes the job (every step deletes what is left).
    """
    for hook in store.erasure_hooks:
        try:
            hook(sender_id)
        except EventStoreError as exc:
            raise type(exc)(
                f"conversation {sender_id!r} is deleted from the store, but a copy outside "
                f"it is not: {exc}; erase it again to finish"
            ) from exc


def publish_tombstones(store: TrackerStore, erased: list[Erasure], timeout: float) -> None:
    """Hand the tombstones of ``erased`` to the store's relay and wait for the confirm."""
    relay = relay_of(store)
    if relay is None or not erased:
        return
    try:
        relay.publish_notice([erasure.tombstone() for erasure in erased], timeout)
    except BrokerError as exc:
        raise TombstoneError(
            f"{len(erased)} conversation(s) deleted ({sum(e.deleted_events for e in erased)} "
            f"events), but the event broker has not confirmed their tombstones: {exc}",
            erased=[e.sender_id for e in erased],
        ) from exc


def _discard_buffered(store: TrackerStore, sender_id: str) -> None:
    """Drop the conversation's unpublished events from an in-process relay buffer."""
    relay = relay_of(store)
    if relay is not None and isinstance(relay.outbox, BufferOutbox):
        relay.outbox.discard(sender_id)
