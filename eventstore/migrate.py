"""Copy conversations between two stores (``eventstore migrate``): resumable and idempotent.

Per conversation, with source version S and target version T:

- T == S: already copied, skipped (``--verify`` still compares the content);
- T < S and the target's T events equal the source's first T: the source events after T
  are appended with ``expected_version=T``, so a re-run or a partial copy only completes;
- otherwise (T > S, or the first T events differ): a *conflict*, reported, never overwritten.

Equality is by checksum: sha256 over the canonical JSON of the events (sorted keys,
integral floats written as integers, so a store that hands back ``1`` for ``1.0`` agrees).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from eventstore.errors import BackendUnavailable, ConcurrencyError, EventStoreError
from eventstore.export import ID_BATCH, select_conversations
from eventstore.stores.base import EventSource, TrackerStore

#: Events per append when copying a long conversation (each append is atomic and checked).
APPEND_CHUNK = 1_000

Outcome = Literal["copied", "completed", "skipped", "conflict", "failed"]


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def canonical_json(event: Mapping[str, Any]) -> str:
    """The canonical JSON text of an event: sorted keys, no spaces, integral floats as ints."""
    return json.dumps(_canonical(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def checksum(events: Iterable[Mapping[str, Any]]) -> str:
    """sha256 (hex) over the canonical JSON of ``events``, one line per event."""
    digest = hashlib.sha256()
    for event in events:
        digest.update(canonical_json(event).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ConversationResult:
    """What happened to one conversation."""

    sender_id: str
    outcome: Outcome
    copied: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A conversation whose target differs from the source after the copy."""

    sender_id: str
    source_count: int
    target_count: int
    source_checksum: str
    target_checksum: str


@dataclass
class MigrationReport:
    """The outcome of a migration run; ``ok`` is false on any conflict, failure or mismatch."""

    conversations: int = 0
    events_copied: int = 0
    copied: int = 0
    completed: int = 0
    skipped: int = 0
    conflicts: list[ConversationResult] = field(default_factory=list)
    failures: list[ConversationResult] = field(default_factory=list)
    missing_ids: list[str] = field(default_factory=list)
    verified: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.conflicts or self.failures or self.mismatches)

    def add(self, result: ConversationResult) -> None:
        self.conversations += 1
        self.events_copied += result.copied
        if result.outcome == "copied":
            self.copied += 1
        elif result.outcome == "completed":
            self.completed += 1
        elif result.outcome == "skipped":
            self.skipped += 1
        elif result.outcome == "conflict":
            self.conflicts.append(result)
        else:
            self.failures.append(result)


def copy_conversation(
    source: EventSource, target: TrackerStore, sender_id: str, chunk: int = APPEND_CHUNK
) -> ConversationResult:
    """Bring the target's copy of one conversation up to the source's (see module doc)."""
    source_version = source.version(sender_id)
    target_version = target.version(sender_id)
    if target_version == source_version:
        return ConversationResult(sender_id, "skipped")
    if target_version > source_version:
        return ConversationResult(
            sender_id,
            "conflict",
            detail=f"the target has {target_version} events, the source only {source_version}",
        )
    logged = source.read(sender_id)  # read once: the head is checked, the rest copied
    if target_version > 0 and checksum(logged[:target_version]) != checksum(target.read(sender_id)):
        return ConversationResult(
            sender_id,
            "conflict",
            detail=f"the target's {target_version} events differ from the source's first "
            f"{target_version}",
        )
    events = logged[target_version:]
    version = target_version
    for start in range(0, len(events), chunk):
        part = events[start : start + chunk]
        try:
            version = target.append(sender_id, part, expected_version=version)
        except ConcurrencyError as exc:
            return ConversationResult(
                sender_id,
                "conflict",
                version - target_version,
                f"the target changed while copying ({exc})",
            )
    outcome: Outcome = "completed" if target_version else "copied"
    return ConversationResult(sender_id, outcome, version - target_version)


def verify_conversation(
    source: EventSource, target: TrackerStore, sender_id: str
) -> Mismatch | None:
    """Compare event count and checksum of one conversation in both stores."""
    src = source.read(sender_id)
    dst = target.read(sender_id)
    src_sum, dst_sum = checksum(src), checksum(dst)
    if len(src) == len(dst) and src_sum == dst_sum:
        return None
    return Mismatch(sender_id, len(src), len(dst), src_sum, dst_sum)


def migrate(
    source: EventSource,
    target: TrackerStore,
    *,
    conversation_ids: Sequence[str] | None = None,
    verify: bool = False,
    chunk: int = APPEND_CHUNK,
    id_batch: int = ID_BATCH,
    on_start: Callable[[int], None] | None = None,
    on_conversation: Callable[[ConversationResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> MigrationReport:
    """Copy every conversation (or ``conversation_ids``) from ``source`` to ``target``.

    One conversation at a time, in sorted id order. A conversation that fails (a bad event,
    a store error) is reported and the run goes on; an unreachable store stops the run.
    With ``verify``, each conversation is compared (count and checksum) after the copy.
    """
    started = time.perf_counter()
    report = MigrationReport()
    ids, total, missing = select_conversations(
        source, conversation_ids, None, id_batch, "the source store"
    )
    report.missing_ids = missing  # the caller reports them (once)
    if on_start is not None:
        on_start(total)
    for sid in ids:
        if should_stop is not None and should_stop():
            break
        try:
            result = copy_conversation(source, target, sid, chunk)
        except BackendUnavailable:
            raise
        except EventStoreError as exc:
            result = ConversationResult(sid, "failed", detail=str(exc))
        report.add(result)
        if verify and result.outcome != "failed":
            mismatch = verify_conversation(source, target, sid)
            report.verified += 1
            if mismatch is not None:
                report.mismatches.append(mismatch)
        if on_conversation is not None:
            on_conversation(result)
    report.seconds = time.perf_counter() - started
    return report


def _merge(previous: ConversationResult | None, result: ConversationResult) -> ConversationResult:
    """One conversation's outcome over several passes of ``migrate_follow``."""
    if previous is None:
        return result
    copied = previous.copied + result.copied
    if result.outcome in ("conflict", "failed") or previous.outcome in ("copied", "completed"):
        outcome = result.outcome if result.outcome in ("conflict", "failed") else previous.outcome
        return ConversationResult(result.sender_id, outcome, copied, result.detail)
    return ConversationResult(
        result.sender_id, "completed" if result.copied else result.outcome, copied, result.detail
    )


def migrate_follow(
    source: EventSource,
    target: TrackerStore,
    stop: threading.Event,
    *,
    interval: float = 1.0,
    conversation_ids: Sequence[str] | None = None,
    verify: bool = False,
    chunk: int = APPEND_CHUNK,
    on_start: Callable[[int], None] | None = None,
    on_conversation: Callable[[ConversationResult], None] | None = None,
) -> MigrationReport:
    """``migrate``, then pass after pass copying what the source appended, until ``stop``.

    For a cut-over without a write freeze: Rasa keeps appending to its blobs while the
    copy runs. Each pass appends only each conversation's new events (checked against
    what the target holds, as ``migrate`` does). Once ``stop`` is set, the pass under way
    ends and one last full pass copies everything written before it; the report covers
    every pass (a conversation counts once; ``verify`` runs after the last pass).
    """
    started = time.perf_counter()
    results: dict[str, ConversationResult] = {}
    missing: list[str] = []

    def collect(result: ConversationResult) -> None:
        results[result.sender_id] = _merge(results.get(result.sender_id), result)
        if on_conversation is not None:
            on_conversation(result)

    first, last = True, False
    while True:
        refresh = getattr(source, "refresh", None)
        if refresh is not None:  # readers of Rasa's blobs keep the last one read
            refresh()
        report = migrate(
            source,
            target,
            conversation_ids=conversation_ids,
            chunk=chunk,
            on_start=on_start if first else None,
            on_conversation=collect,
            should_stop=None if last else stop.is_set,
        )
        if first:
            missing, first = report.missing_ids, False
        if last:
            break
        if stop.is_set() or stop.wait(interval):
            last = True
    total = MigrationReport(missing_ids=missing)
    for sid in sorted(results):
        total.add(results[sid])
        if verify and results[sid].outcome != "failed":
            total.verified += 1
            mismatch = verify_conversation(source, target, sid)
            if mismatch is not None:
                total.mismatches.append(mismatch)
    total.seconds = time.perf_counter() - started
    return total
