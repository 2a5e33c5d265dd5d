"""What the pages show, independent of the backend: filters, conversation rows, dashboard data.

``Filters`` is parsed once from the query string (a bad value is a 400 naming the field).
``Scan`` computes the same answers as the SQL queries (``ui/sql.py``) in one pass over
``store.query``, for stores without SQL; it stops after ``SCAN_LIMIT`` events and says so
(``partial``), so a page never costs more than that.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventstore.server.errors import ApiError
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore

#: Intents that mean the NLU did not understand (Rasa's FallbackClassifier).
FALLBACK_INTENTS = frozenset({"nlu_fallback"})
#: Actions a bot runs when it cannot go on (Rasa's default and two-stage fallbacks).
FALLBACK_ACTIONS = frozenset({"action_default_fallback", "action_two_stage_fallback"})
#: Actions that hand the conversation to a human.
ESCALATION_ACTIONS = frozenset(
    {"action_human_handoff", "action_handoff", "utter_human_handoff", "pattern_human_handoff"}
)
#: A user message below this intent confidence is "low confidence" (``below=`` changes it).
LOW_CONFIDENCE = 0.5
#: Most events one page of a non-SQL store reads (the page says when it stopped there).
SCAN_LIMIT = 200_000
#: Rows per page of the conversation list.
PAGE_SIZE = 50
#: Confidence histogram: ten buckets of 0.1.
CONFIDENCE_BUCKETS = 10
#: Turns per session histogram: 0..MAX_TURNS_BUCKET-1, then "MAX_TURNS_BUCKET+".
MAX_TURNS_BUCKET = 10
DAY = 86_400.0
#: Default dashboard range: the 30 days up to the newest event.
DEFAULT_RANGE_DAYS = 30


@dataclass(frozen=True, slots=True)
class Filters:
    """Which conversations (or events) a page shows; every filter is optional (AND)."""

    sender: str | None = None  # part of the sender id (exact characters)
    since: float | None = None  # activity at or after (timestamp)
    until: float | None = None  # activity at or before
    intent: str | None = None  # a user message with this intent
    action: str | None = None  # an event with this name (actions, slots, loops)
    type_name: str | None = None  # an event of this type
    text: str | None = None  # a user message containing this text (case-insensitive)
    flagged: bool = False  # a fallback, or a user message below ``below`` confidence
    below: float = LOW_CONFIDENCE

    def event_matches(self, event: StoredEvent) -> bool:
        """Whether one event passes the event-level filters (the live tail)."""
        data = event.data
        if self.sender is not None and self.sender not in event.sender_id:
            return False
        if not in_range(event.timestamp, self.since, self.until):
            return False
        kind = data.get("event")
        if self.type_name is not None and kind != self.type_name:
            return False
        if self.intent is not None and intent_of(data) != self.intent:
            return False
        if self.action is not None and data.get("name") != self.action:
            return False
        if self.text is not None and not text_matches(data, self.text):
            return False
        return not self.flagged or is_flagged(data, self.below)


def in_range(timestamp: float, since: float | None, until: float | None) -> bool:
    """Whether ``since <= timestamp <= until`` (open ends allowed)."""
    return (since is None or timestamp >= since) and (until is None or timestamp <= until)


def intent_of(data: Mapping[str, Any]) -> str | None:
    """The intent name of a user event."""
    from eventstore.events import intent_name

    return intent_name(data)


def confidence_of(data: Mapping[str, Any]) -> float | None:
    """The intent confidence of a user event, when it is a number."""
    if data.get("event") != "user":
        return None
    parse = data.get("parse_data")
    intent = parse.get("intent") if isinstance(parse, Mapping) else None
    value = intent.get("confidence") if isinstance(intent, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def text_matches(data: Mapping[str, Any], needle: str) -> bool:
    """Whether a user event's text contains ``needle`` (case-insensitive)."""
    text = data.get("text")
    return (
        data.get("event") == "user"
        and isinstance(text, str)
        and needle.casefold() in text.casefold()
    )


def is_flagged(data: Mapping[str, Any], below: float) -> bool:
    """A fallback intent or action, or a user message below ``below`` confidence."""
    kind = data.get("event")
    if kind == "user":
        confidence = confidence_of(data)
        return intent_of(data) in FALLBACK_INTENTS or (
            confidence is not None and confidence < below
        )
    return kind == "action" and data.get("name") in FALLBACK_ACTIONS


# -- parsing ------------------------------------------------------------------------------
def parse_time(value: str | None, field_name: str, end_of_day: bool = False) -> float | None:
    """A day (``2024-05-01``, UTC), a date-time (ISO 8601, UTC unless it says) or a timestamp."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise ApiError(400, f"query parameter {field_name!r} must be finite", {"field": field_name})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            400,
            f"query parameter {field_name!r} must be a day (2024-05-01), an ISO date-time or "
            f"a timestamp, got {value!r}",
            {"field": field_name},
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = moment.timestamp()
    day_only = len(text) == 10
    return stamp + DAY - 0.000001 if day_only and end_of_day else stamp


def format_day(timestamp: float) -> str:
    """``YYYY-MM-DD`` (UTC) of a timestamp."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def format_time(timestamp: float | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC), or an empty string."""
    if timestamp is None:
        return ""
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(timestamp)


def _clean(value: str | None) -> str | None:
    return value if value is not None and value != "" else None


def parse_filters(params: Mapping[str, str]) -> Filters:
    """Filters from query parameters; a bad one is ``ApiError`` 400 naming it."""
    below_text = params.get("below") or ""
    try:
        below = float(below_text) if below_text.strip() else LOW_CONFIDENCE
    except ValueError:
        raise ApiError(
            400, f"query parameter 'below' must be a number, got {below_text!r}", {"field": "below"}
        ) from None
    if not 0.0 <= below <= 1.0:
        raise ApiError(400, "query parameter 'below' must be between 0 and 1", {"field": "below"})
    return Filters(
        sender=_clean(params.get("sender")),
        since=parse_time(params.get("since"), "since"),
        until=parse_time(params.get("until"), "until", end_of_day=True),
        intent=_clean(params.get("intent")),
        action=_clean(params.get("action")),
        type_name=_clean(params.get("type_name")),
        text=_clean(params.get("text")),
        flagged=params.get("flagged") in ("1", "on", "true"),
        below=below,
    )


# -- the conversation list ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One line of the conversation list."""

    sender_id: str
    last_activity: float | None
    sessions: int
    turns: int
    last_intent: str | None


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """A page of rows, newest activity first, and the cursor of the next one."""

    rows: list[ConversationRow]
    next_cursor: str | None
    partial: bool = False  # a scan stopped at SCAN_LIMIT events


def encode_page_cursor(row: ConversationRow) -> str:
    """The keyset cursor after ``row``: its last activity and sender id."""
    raw = json.dumps([row.last_activity, row.sender_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_cursor(cursor: str | None) -> tuple[float, str] | None:
    """``(last_activity, sender_id)`` of a cursor, or 400."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        stamp, sender = json.loads(raw)
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            raise TypeError
        if not isinstance(sender, str):
            raise TypeError
    except (binascii.Error, ValueError, TypeError):
        raise ApiError(400, "query parameter 'cursor' is not valid", {"field": "cursor"}) from None
    return float(stamp), sender


def after_cursor(row: ConversationRow, cursor: tuple[float, str] | None) -> bool:
    """Whether ``row`` sorts after the cursor (newest first, then sender id descending)."""
    if cursor is None:
        return True
    stamp = row.last_activity if row.last_activity is not None else float("-inf")
    return stamp < cursor[0] or (stamp == cursor[0] and row.sender_id < cursor[1])


def sort_key(row: ConversationRow) -> tuple[float, str]:
    """Newest activity first, ties by sender id descending (the keyset order)."""
    stamp = row.last_activity if row.last_activity is not None else float("-inf")
    return (-stamp, _Reverse(row.sender_id))


class _Reverse(str):
    """A string that sorts backwards."""

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)


# -- the dashboard ------------------------------------------------------------------------
@dataclass
class Dashboard:
    """Every number of the dashboard over ``[since, until]`` (UTC days and hours)."""

    since: float
    until: float
    conversations_per_day: dict[int, int] = field(default_factory=dict)
    sessions_per_day: dict[int, int] = field(default_factory=dict)
    turns_per_day: dict[int, int] = field(default_factory=dict)
    fallbacks_per_day: dict[int, int] = field(default_factory=dict)
    escalations_per_day: dict[int, int] = field(default_factory=dict)
    top_intents: list[tuple[str, int]] = field(default_factory=list)
    confidence: list[int] = field(default_factory=lambda: [0] * CONFIDENCE_BUCKETS)
    turns_per_session: list[int] = field(default_factory=lambda: [0] * (MAX_TURNS_BUCKET + 1))
    busiest_hours: list[int] = field(default_factory=lambda: [0] * 24)
    totals: dict[str, int] = field(default_factory=dict)
    partial: bool = False

    def chart_data(self) -> dict[str, Any]:
        """The JSON the page's charts draw (every day of the range, zeros included)."""
        first, last = int(self.since // DAY), int(self.until // DAY)
        days = list(range(first, last + 1))

        def series(per_day: dict[int, int]) -> list[int]:
            return [per_day.get(day, 0) for day in days]

        def rate(part: dict[int, int]) -> list[float | None]:
            return [
                round(100.0 * part.get(d, 0) / self.turns_per_day[d], 2)
                if self.turns_per_day.get(d)
                else None
                for d in days
            ]

        return {
            "range": {"since": format_day(self.since), "until": format_day(self.until)},
            "days": [format_day(day * DAY) for day in days],
            "conversations_per_day": series(self.conversations_per_day),
            "sessions_per_day": series(self.sessions_per_day),
            "fallback_rate": rate(self.fallbacks_per_day),
            "escalation_rate": rate(self.escalations_per_day),
            "top_intents": {
                "labels": [name for name, _ in self.top_intents],
                "counts": [count for _, count in self.top_intents],
            },
            "confidence": {
                "labels": [
                    f"{i / CONFIDENCE_BUCKETS:.1f}-{(i + 1) / CONFIDENCE_BUCKETS:.1f}"
                    for i in range(CONFIDENCE_BUCKETS)
                ],
                "counts": list(self.confidence),
            },
            "turns_per_session": {
                "labels": [str(i) for i in range(MAX_TURNS_BUCKET)] + [f"{MAX_TURNS_BUCKET}+"],
                "counts": list(self.turns_per_session),
            },
            "busiest_hours": {
                "labels": [f"{h:02d}" for h in range(24)],
                "counts": list(self.busiest_hours),
            },
            "totals": dict(self.totals),
            "partial": self.partial,
        }


def confidence_bucket(value: float) -> int:
    """The histogram bucket of a confidence (values outside 0..1 are clamped)."""
    return min(max(int(value * CONFIDENCE_BUCKETS), 0), CONFIDENCE_BUCKETS - 1)


# -- the generic scan (stores without SQL) ------------------------------------------------
class Scan:
    """The list and the dashboard from one bounded pass over ``store.query``."""

    def __init__(self, store: TrackerStore, limit: int = SCAN_LIMIT) -> None:
        self.store = store
        self.limit = limit

    def _events(self, query: EventQuery) -> tuple[Iterable[StoredEvent], list[bool]]:
        stopped = [False]

        def bounded() -> Iterable[StoredEvent]:
            for count, event in enumerate(self.store.query(query)):
                if count >= self.limit:
                    stopped[0] = True
                    return
                yield event

        return bounded(), stopped

    def conversations(
        self, filters: Filters, cursor: str | None, only: str | None, limit: int = PAGE_SIZE
    ) -> ConversationPage:
        """A page of conversations (``only``: the one a JWT user may see)."""
        position = decode_page_cursor(cursor)
        events, stopped = self._events(EventQuery(sender_id=only))
        stats: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"last": None, "sessions": 0, "turns": 0, "intent": None, "match": {}}
        )
        for event in events:
            entry = stats[event.sender_id]
            data = event.data
            stamp = event.timestamp
            entry["last"] = stamp if entry["last"] is None else max(entry["last"], stamp)
            kind = data.get("event")
            if kind == "session_started":
                entry["sessions"] += 1
            elif kind == "user":
                entry["turns"] += 1
                entry["intent"] = intent_of(data)
            _note_matches(entry["match"], filters, event)
        rows = [
            ConversationRow(sender, s["last"], max(s["sessions"], 1), s["turns"], s["intent"])
            for sender, s in stats.items()
            if _conversation_matches(filters, sender, s["match"])
        ]
        rows = sorted((r for r in rows if after_cursor(r, position)), key=sort_key)
        page = rows[:limit]
        more = len(rows) > limit
        return ConversationPage(
            page, encode_page_cursor(page[-1]) if more else None, partial=stopped[0]
        )

    def dashboard(self, since: float, until: float, only: str | None) -> Dashboard:
        """Every dashboard number over ``[since, until]``."""
        board = Dashboard(since, until)
        events, stopped = self._events(EventQuery(sender_id=only, since=since, until=until))
        day_senders: dict[int, set[str]] = defaultdict(set)
        intents: Counter[str] = Counter()
        session_turns: dict[tuple[str, int], int] = {}
        session_no: dict[str, int] = defaultdict(int)
        totals: Counter[str] = Counter()
        for event in sorted(events, key=lambda e: (e.sender_id, e.seq)):
            data = event.data
            kind = data.get("event")
            day = int(event.timestamp // DAY)
            day_senders[day].add(event.sender_id)
            totals["events"] += 1
            if kind == "session_started":
                session_no[event.sender_id] += 1
                session_turns[(event.sender_id, session_no[event.sender_id])] = 0
                _bump(board.sessions_per_day, day)
            elif kind == "user":
                key = (event.sender_id, session_no[event.sender_id])
                session_turns[key] = session_turns.get(key, 0) + 1
                _bump(board.turns_per_day, day)
                intent = intent_of(data)
                if intent is not None:
                    intents[intent] += 1
                confidence = confidence_of(data)
                if confidence is not None:
                    board.confidence[confidence_bucket(confidence)] += 1
                hour = int(event.timestamp % DAY // 3600)
                board.busiest_hours[hour] += 1
            elif kind == "action":
                name = data.get("name")
                if name in FALLBACK_ACTIONS:
                    _bump(board.fallbacks_per_day, day)
                if name in ESCALATION_ACTIONS:
                    _bump(board.escalations_per_day, day)
        board.conversations_per_day = {day: len(s) for day, s in day_senders.items()}
        board.top_intents = sorted(intents.items(), key=lambda item: (-item[1], item[0]))[:10]
        for turns in session_turns.values():
            board.turns_per_session[min(turns, MAX_TURNS_BUCKET)] += 1
        board.totals = {
            "conversations": len(set().union(*day_senders.values())) if day_senders else 0,
            "sessions": sum(board.sessions_per_day.values()),
            "turns": sum(board.turns_per_day.values()),
            "events": totals["events"],
        }
        board.partial = stopped[0]
        return board

    def newest_timestamp(self, only: str | None) -> float | None:
        """The newest event's timestamp (bounded scan)."""
        events, _ = self._events(EventQuery(sender_id=only))
        return max((e.timestamp for e in events), default=None)


def _bump(counter: dict[int, int], key: int) -> None:
    counter[key] = counter.get(key, 0) + 1


def _note_matches(match: dict[str, bool], filters: Filters, event: StoredEvent) -> None:
    """Record which conversation-level filters one event satisfies (within the range)."""
    if not in_range(event.timestamp, filters.since, filters.until):
        return
    data = event.data
    match["range"] = True
    if filters.intent is not None and intent_of(data) == filters.intent:
        match["intent"] = True
    if filters.action is not None and data.get("name") == filters.action:
        match["action"] = True
    if filters.type_name is not None and data.get("event") == filters.type_name:
        match["type_name"] = True
    if filters.text is not None and text_matches(data, filters.text):
        match["text"] = True
    if filters.flagged and is_flagged(data, filters.below):
        match["flagged"] = True


def _conversation_matches(filters: Filters, sender: str, match: dict[str, bool]) -> bool:
    """Whether a conversation passes: every set filter was met by some event in range."""
    if filters.sender is not None and filters.sender not in sender:
        return False
    needed = ["range"] + [
        name
        for name in ("intent", "action", "type_name", "text")
        if getattr(filters, name) is not None
    ]
    if filters.flagged:
        needed.append("flagged")
    return all(match.get(name) for name in needed)
