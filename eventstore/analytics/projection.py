"""Events to analytics rows: sessions, turns, messages, actions and slot changes.

``Projection`` takes one batch of the feed and the stored state of the conversations it
touches (their ``analytics_senders`` row, open session and current turn) and works out the
rows to insert and update. It does no I/O of its own except through ``Lookup``, for the
rare ``rewind``/``undo`` whose target was stored by an earlier batch.

Rules (docs/analytics.md, after Rasa Pro's analytics pipeline):

- a **session** starts at ``action_session_start`` or ``session_started`` (the two that
  Rasa writes together make one session), or at a conversation's first event when it has
  none; it ends where the next one starts, or at ``restart``;
- a **turn** starts at a user message and holds what follows up to the next user message
  or the session's end; events of a session before its first user message have no turn;
- ``rewind`` (Rasa's ``UserUtteranceReverted``) marks the session's latest user message
  not yet reverted, and its turn, ``reverted``; the session's ``turns`` no longer counts it;
- ``undo`` (Rasa's ``ActionReverted``) marks the session's latest action other than
  ``action_listen`` not yet reverted ``reverted``;
- an event whose seq is not after the conversation's last one means its log was replaced
  or deleted and begun again: its rows are dropped and projected anew from there.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from eventstore.stores.records import StoredEvent

Row = dict[str, Any]
#: (sender_id, session_number) and (sender_id, session_number, turn_number)
SessionKey = tuple[str, int]
TurnKey = tuple[str, int, int]
SESSION_MARKERS = ("session_started",)
SESSION_START_ACTION = "action_session_start"
LISTEN = "action_listen"
EVENT_TABLES = ("user_messages", "bot_messages", "actions", "slot_changes")


class Lookup(Protocol):
    """Rows stored by earlier batches, for ``rewind`` and ``undo``."""

    def latest_unreverted(
        self, table: str, sender_id: str, session: int, below_seq: int | None
    ) -> tuple[int, int | None] | None:
        """(seq, turn_number) of the latest row of ``table`` ("user_messages" or "actions")
        in the session, not reverted, with seq below ``below_seq``; actions skip listen."""


def utc_day(timestamp: float) -> str | None:
    """``YYYY-MM-DD`` of an epoch timestamp in UTC (None when no calendar can show it)."""
    try:
        return _day(int(timestamp // 86_400))
    except (ValueError, OverflowError):
        return None


@functools.lru_cache(maxsize=4096)
def _day(number: int) -> str | None:
    try:
        return datetime.fromtimestamp(number * 86_400, UTC).strftime("%Y-%m-%d")
    except (ValueError, OverflowError, OSError):
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN: none


def _name(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) and value else None


@dataclass
class Changes:
    """What one batch does to the tables; ``writer`` applies it in one transaction."""

    senders: dict[str, Row] = field(default_factory=dict)
    sessions: dict[SessionKey, Row] = field(default_factory=dict)
    turns: dict[TurnKey, Row] = field(default_factory=dict)
    #: keys of the senders/sessions/turns rows above that exist in the database
    stored: set[Any] = field(default_factory=set)
    inserts: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in EVENT_TABLES})
    #: (table, sender_id, seq) of stored user messages/actions to mark reverted
    reverts: list[tuple[str, str, int]] = field(default_factory=list)
    #: stored turns to mark reverted
    turn_reverts: list[TurnKey] = field(default_factory=list)
    #: conversations whose stored rows are deleted before anything else is written
    resets: set[str] = field(default_factory=set)
    projected: int = 0


class Projection:
    """Applies events to ``changes`` (loaded with the stored state of their conversations)."""

    def __init__(self, changes: Changes, lookup: Lookup) -> None:
        self.changes = changes
        self.lookup = lookup
        #: per (sender, session, table): lowest seq reverted from the database this batch
        self._floor: dict[tuple[str, int, str], int] = {}

    # -- per conversation state ------------------------------------------------------
    def _reset(self, sender_id: str) -> None:
        """Forget every row of the conversation: its log begins again."""
        ch = self.changes
        ch.resets.add(sender_id)
        ch.senders.pop(sender_id, None)
        ch.stored = {key for key in ch.stored if _sender_of(key) != sender_id}
        ch.sessions = {k: v for k, v in ch.sessions.items() if k[0] != sender_id}
        ch.turns = {k: v for k, v in ch.turns.items() if k[0] != sender_id}
        for table, rows in ch.inserts.items():
            ch.inserts[table] = [row for row in rows if row["sender_id"] != sender_id]
        ch.reverts = [r for r in ch.reverts if r[1] != sender_id]
        ch.turn_reverts = [k for k in ch.turn_reverts if k[0] != sender_id]
        self._floor = {k: v for k, v in self._floor.items() if k[0] != sender_id}

    def _sender(self, event: StoredEvent) -> Row:
        ch = self.changes
        state = ch.senders.get(event.sender_id)
        if state is not None and event.seq <= state["last_seq"]:
            self._reset(event.sender_id)
            state = None
        if state is None:
            state = {
                "sender_id": event.sender_id,
                "channel": None,
                "first_seen": event.timestamp,
                "last_seen": event.timestamp,
                "sessions": 0,
                "user_messages": 0,
                "events": 0,
                "last_seq": 0,
                "last_position": 0,
                "open_session": None,
                "open_session_fresh": False,
                "open_turn": 0,
            }
            ch.senders[event.sender_id] = state
        return state

    def _open_session(self, state: Row, event: StoredEvent) -> Row:
        state["sessions"] += 1
        number = state["sessions"]
        state["open_session"], state["open_turn"] = number, 0
        row = {
            "sender_id": state["sender_id"],
            "session_number": number,
            "channel": None,
            "start_time": event.timestamp,
            "end_time": event.timestamp,
            "start_day": utc_day(event.timestamp),
            "start_seq": event.seq,
            "end_seq": event.seq,
            "turns": 0,
            "user_messages": 0,
            "bot_messages": 0,
            "actions": 0,
            "events": 0,
            "ended_by": None,
        }
        self.changes.sessions[(state["sender_id"], number)] = row
        return row

    def _close_session(self, state: Row, reason: str) -> None:
        session = self._session(state)
        if session is not None:
            session["ended_by"] = reason
        state["open_session"], state["open_turn"] = None, 0
        state["open_session_fresh"] = False

    def _session(self, state: Row) -> Row | None:
        if state["open_session"] is None:
            return None
        return self.changes.sessions[(state["sender_id"], state["open_session"])]

    def _turn(self, state: Row) -> Row | None:
        if state["open_session"] is None or not state["open_turn"]:
            return None
        key = (state["sender_id"], state["open_session"], state["open_turn"])
        return self.changes.turns[key]

    # -- events ----------------------------------------------------------------------
    def apply(self, events: Iterable[StoredEvent]) -> Changes:
        for event in events:
            self.event(event)
        return self.changes

    def event(self, event: StoredEvent) -> None:
        """Project one event (in seq order within its conversation)."""
        state = self._sender(event)
        data = event.data
        kind = event.type_name
        name = data.get("name")
        marker = kind in SESSION_MARKERS or (kind == "action" and name == SESSION_START_ACTION)
        if marker:
            if state["open_session"] is not None and not state["open_session_fresh"]:
                self._close_session(state, "new_session")
            if state["open_session"] is None:
                self._open_session(state, event)
            state["open_session_fresh"] = True
        elif state["open_session"] is None:
            self._open_session(state, event)
            state["open_session_fresh"] = False
        else:
            state["open_session_fresh"] = False
        session = self._session(state)
        assert session is not None
        if kind == "user":
            self._user(state, session, event)
        turn = self._turn(state)
        for row in (session, turn):
            if row is not None:
                row["end_time"], row["end_seq"] = event.timestamp, event.seq
        session["events"] += 1
        state["events"] += 1
        state["last_seq"], state["last_position"] = event.seq, event.position or 0
        state["last_seen"] = event.timestamp
        self.changes.projected += 1
        if kind == "bot":
            self._bot(state, session, turn, event)
        elif kind == "action":
            self._action(state, session, turn, event)
        elif kind == "slot":
            self._insert("slot_changes", state, event, name=_name(name), value=_json(data))
        elif kind == "restart":
            self._close_session(state, "restart")
        elif kind == "rewind":
            self._rewind(state, session)
        elif kind == "undo":
            self._undo(state)

    def _insert(self, table: str, state: Row, event: StoredEvent, **values: Any) -> Row:
        row = {
            "sender_id": event.sender_id,
            "seq": event.seq,
            "position": event.position or 0,
            "session_number": state["open_session"],
            "turn_number": state["open_turn"] or None,
            "timestamp": event.timestamp,
            "day": utc_day(event.timestamp),
            **values,
        }
        self.changes.inserts[table].append(row)
        return row

    def _user(self, state: Row, session: Row, event: StoredEvent) -> None:
        data = event.data
        parse = _mapping(data.get("parse_data"))
        intent = _mapping(parse.get("intent"))
        channel = _name(data.get("input_channel"))
        intent_name = _name(intent.get("name"))
        state["open_turn"] += 1
        state["user_messages"] += 1
        state["channel"] = state["channel"] or channel
        session["channel"] = session["channel"] or channel
        session["user_messages"] += 1
        session["turns"] += 1
        key = (state["sender_id"], state["open_session"], state["open_turn"])
        self.changes.turns[key] = {
            "sender_id": key[0],
            "session_number": key[1],
            "turn_number": key[2],
            "start_time": event.timestamp,
            "end_time": event.timestamp,
            "start_seq": event.seq,
            "end_seq": event.seq,
            "intent": intent_name,
            "bot_messages": 0,
            "actions": 0,
            "reverted": False,
        }
        entities = parse.get("entities")
        self._insert(
            "user_messages",
            state,
            event,
            text=_text(data.get("text")),
            intent=intent_name,
            confidence=_number(intent.get("confidence")),
            entities=json.dumps(entities if isinstance(entities, list) else []),
            channel=channel,
            message_id=_name(data.get("message_id")),
            reverted=False,
        )

    def _bot(self, state: Row, session: Row, turn: Row | None, event: StoredEvent) -> None:
        response = _mapping(event.data.get("metadata")).get("utter_action")
        session["bot_messages"] += 1
        if turn is not None:
            turn["bot_messages"] += 1
        text = _text(event.data.get("text"))
        self._insert("bot_messages", state, event, text=text, response=_name(response))

    def _action(self, state: Row, session: Row, turn: Row | None, event: StoredEvent) -> None:
        data = event.data
        session["actions"] += 1
        if turn is not None:
            turn["actions"] += 1
        self._insert(
            "actions",
            state,
            event,
            name=_name(data.get("name")),
            policy=_name(data.get("policy")),
            confidence=_number(data.get("confidence")),
            reverted=False,
        )

    # -- rewind and undo -------------------------------------------------------------
    def _latest(self, state: Row, table: str) -> tuple[Row | None, tuple[int, int | None] | None]:
        """The latest unreverted row of the open session: pending (this batch) or stored."""
        sender, session = state["sender_id"], state["open_session"]
        first_pending = None
        for row in reversed(self.changes.inserts[table]):
            if row["sender_id"] != sender or row["session_number"] != session:
                continue
            first_pending = row["seq"]
            if not row["reverted"] and (table != "actions" or row["name"] != LISTEN):
                return row, None
        floor_key = (sender, session, table)
        bounds = [b for b in (first_pending, self._floor.get(floor_key)) if b is not None]
        found = self.lookup.latest_unreverted(table, sender, session, min(bounds, default=None))
        if found is not None:
            self._floor[floor_key] = found[0]
        return None, found

    def _rewind(self, state: Row, session: Row) -> None:
        pending, stored = self._latest(state, "user_messages")
        if pending is not None:
            pending["reverted"] = True
            turn_number = pending["turn_number"]
        elif stored is not None:
            self.changes.reverts.append(("user_messages", state["sender_id"], stored[0]))
            turn_number = stored[1]
        else:
            return
        session["turns"] -= 1
        key = (state["sender_id"], state["open_session"], turn_number)
        turn = self.changes.turns.get(key)
        if turn is not None:
            turn["reverted"] = True
        else:
            self.changes.turn_reverts.append(key)

    def _undo(self, state: Row) -> None:
        if state["open_session"] is None:
            return
        pending, stored = self._latest(state, "actions")
        if pending is not None:
            pending["reverted"] = True
        elif stored is not None:
            self.changes.reverts.append(("actions", state["sender_id"], stored[0]))


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data.get("value"), ensure_ascii=False)


def _sender_of(key: Any) -> str:
    return str(key if isinstance(key, str) else key[0])
