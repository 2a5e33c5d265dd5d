"""A conversation as the transcript page shows it: bubbles, markers, undone events, state.

Pure functions over event dicts: ``view_items`` classifies each event (user and bot
messages are bubbles, everything else a marker) and marks the events a later ``rewind``
or ``undo`` took back, with the same folding as the tracker's applied events;
``state_at`` replays the events up to a seq with ``eventstore.tracker``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventstore.server.ui.model import confidence_of, format_time, intent_of
from eventstore.tracker import Tracker

#: Most events the transcript page renders (the newest ones); ``?all=1`` shows every one.
TRANSCRIPT_LIMIT = 2000
#: Marker labels of events that are not messages.
LABELS = {
    "action": "action",
    "slot": "slot set",
    "session_started": "session started",
    "restart": "conversation restarted",
    "rewind": "user message rewound",
    "undo": "action undone",
    "reset_slots": "all slots reset",
    "followup": "follow-up action",
    "pause": "conversation paused",
    "resume": "conversation resumed",
    "active_loop": "active loop",
    "form": "form",
    "loop_interrupted": "loop interrupted",
    "form_validation": "form validation",
    "action_execution_rejected": "action rejected",
    "user_featurization": "user featurization",
    "entities": "entities added",
    "reminder": "reminder set",
    "cancel_reminder": "reminder cancelled",
    "agent": "agent uttered",
    "export": "exported",
}
#: Events that stand out in the transcript (a session boundary or a correction).
EMPHASISED = frozenset({"session_started", "restart", "rewind", "undo"})


@dataclass(frozen=True, slots=True)
class Item:
    """One event of the transcript."""

    seq: int
    kind: str
    bubble: str | None  # "user", "bot" or None for a marker
    time: str
    text: str | None
    label: str
    detail: str | None
    intent: str | None
    confidence: str | None
    undone: bool
    emphasised: bool
    raw: str


def _detail(event: Mapping[str, Any]) -> str | None:
    kind = event.get("event")
    name = event.get("name")
    if kind == "slot":
        return f"{name} = {json.dumps(event.get('value'), ensure_ascii=False)}"
    if kind in ("action", "followup", "active_loop", "form", "action_execution_rejected"):
        return str(name) if name is not None else None
    if kind == "entities":
        return json.dumps(event.get("entities"), ensure_ascii=False)
    if kind in ("reminder", "cancel_reminder"):
        return str(event.get("name") or event.get("intent") or "")
    return None


def undone_seqs(events: Sequence[Mapping[str, Any]], first_seq: int = 1) -> set[int]:
    """Seqs of the events a later ``undo`` (last action) or ``rewind`` (last user message
    and the action before it) took back, as the tracker folds applied events."""
    applied: list[tuple[int, Any]] = []
    undone: set[int] = set()
    for offset, event in enumerate(events):
        seq, kind = first_seq + offset, event.get("event")
        if kind in ("restart", "session_started"):
            applied = []
        elif kind == "undo":
            _pop_through(applied, "action", undone)
        elif kind == "rewind":
            _pop_through(applied, "user", undone)
            _pop_through(applied, "action", undone)
        else:
            applied.append((seq, kind))
    return undone


def _pop_through(applied: list[tuple[int, Any]], kind: str, undone: set[int]) -> None:
    while applied:
        seq, popped = applied.pop()
        undone.add(seq)
        if popped == kind:
            return


def view_items(events: Sequence[Mapping[str, Any]], first_seq: int = 1) -> list[Item]:
    """The transcript items of ``events`` (the first one has seq ``first_seq``)."""
    undone = undone_seqs(events, first_seq)
    items = []
    for offset, event in enumerate(events):
        seq = first_seq + offset
        kind = str(event.get("event"))
        bubble = kind if kind in ("user", "bot") else None
        text = event.get("text")
        confidence = confidence_of(event)
        items.append(
            Item(
                seq=seq,
                kind=kind,
                bubble=bubble,
                time=format_time(_stamp(event)),
                text=text if isinstance(text, str) else None,
                label=LABELS.get(kind, kind),
                detail=_detail(event),
                intent=intent_of(event),
                confidence=f"{confidence:.2f}" if confidence is not None else None,
                undone=seq in undone,
                emphasised=kind in EMPHASISED,
                raw=json.dumps(dict(event), indent=2, ensure_ascii=False, sort_keys=True),
            )
        )
    return items


def _stamp(event: Mapping[str, Any]) -> float | None:
    value = event.get("timestamp")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def state_at(sender_id: str, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The tracker state after ``events`` (slots, active loop, latest intent and action)."""
    tracker = Tracker.from_events(sender_id, list(events), version=len(events))
    latest = tracker.latest_message or {}
    intent = latest.get("intent") or {}
    return {
        "seq": len(events),
        "slots": tracker.slots,
        "active_loop": tracker.active_loop or None,
        "latest_intent": intent.get("name") if isinstance(intent, Mapping) else None,
        "latest_confidence": intent.get("confidence") if isinstance(intent, Mapping) else None,
        "latest_action": tracker.latest_action_name,
        "paused": tracker.paused,
        "followup_action": tracker.followup_action,
    }


#: Bidirectional and other invisible format characters made visible in ids and texts.
def visible(value: Any) -> str:
    """``value`` as text with invisible format and control characters (RTL overrides,
    zero-width joiners, NUL...) written out as ``[U+202E]``, so they cannot disguise it."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(
        ch
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co")
        else f"[U+{ord(ch):04X}]"
        for ch in text
    )
