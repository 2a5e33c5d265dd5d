"""The list and the dashboard as SQL aggregates over the ``events`` table.

The database groups and counts; Python receives one row per conversation of the page, per
day, per intent or per bucket, never the events themselves. Indexed columns
(``timestamp``, ``type_name``, ``intent_name``, ``action_name``, ``sender_id``) do the
filtering; the text of user messages and intent confidences are read from the ``data``
JSON with each dialect's JSON functions (PostgreSQL, SQLite, MySQL/MariaDB; Oracle's
``JSON_VALUE`` is written but untested here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, and_, case, cast, func, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement

from eventstore.server.ui.model import (
    CONFIDENCE_BUCKETS,
    DAY,
    ESCALATION_ACTIONS,
    FALLBACK_ACTIONS,
    FALLBACK_INTENTS,
    MAX_TURNS_BUCKET,
    PAGE_SIZE,
    ConversationPage,
    ConversationRow,
    Dashboard,
    Filters,
    decode_page_cursor,
    encode_page_cursor,
)
from eventstore.stores.sql.schema import events

if TYPE_CHECKING:
    from eventstore.stores.sql.store import SQLTrackerStore

e = events.c

#: ``events.data`` as PostgreSQL ``json`` that text extraction can read. PostgreSQL's text
#: cannot hold NUL, so ``->>`` on a string with ``\u0000`` aborts the whole query; such
#: escapes (not an escaped backslash followed by ``u0000``) become U+FFFD first, only in
#: rows that contain one.
PG_JSON = (
    "CAST(CASE WHEN strpos(events.data, '\\u0000') > 0 "
    "THEN regexp_replace(events.data, '(?<!\\\\)((?:\\\\\\\\)*)\\\\u0000', "
    "'\\1\\\\ufffd', 'g') ELSE events.data END AS json)"
)


def like_pattern(needle: str) -> str:
    """``%needle%`` with LIKE's wildcards and the escape character (``!``) escaped.

    ``!`` rather than a backslash: MySQL reads backslashes inside string literals itself.
    """
    escaped = needle.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class SQLQueries:
    """The UI's questions answered by the SQL store's database."""

    def __init__(self, store: SQLTrackerStore) -> None:
        self.store = store
        self.dialect = store.engine.dialect.name

    # -- dialect helpers ----------------------------------------------------------------
    def json_text(self, key: str) -> ColumnElement[Any]:
        """The string at top-level ``key`` of ``data`` (NULL when absent)."""
        if self.dialect == "postgresql":
            return literal_column(f"({PG_JSON} ->> '{key}')")
        if self.dialect == "sqlite":
            return func.json_extract(e.data, f"$.{key}")
        if self.dialect in ("mysql", "mariadb"):
            return func.json_unquote(func.json_extract(e.data, f"$.{key}"))
        return literal_column(f"JSON_VALUE(events.data, '$.{key}' NULL ON ERROR)")

    def confidence(self) -> ColumnElement[Any]:
        """``parse_data.intent.confidence`` when it is a number, else NULL."""
        path = "parse_data.intent.confidence"
        if self.dialect == "postgresql":
            value = f"{PG_JSON} #> '{{parse_data,intent,confidence}}'"
            return literal_column(
                f"(CASE WHEN json_typeof({value}) = 'number' "
                f"THEN CAST(({value}) #>> '{{}}' AS double precision) END)"
            )
        if self.dialect == "sqlite":
            kind = func.json_type(e.data, f"$.{path}")
            return case((kind.in_(["real", "integer"]), func.json_extract(e.data, f"$.{path}")))
        if self.dialect in ("mysql", "mariadb"):
            raw = func.json_extract(e.data, f"$.{path}")
            numeric = func.json_type(raw).in_(["DOUBLE", "INTEGER", "DECIMAL", "UNSIGNED INTEGER"])
            return case((numeric, raw + 0))
        return literal_column(
            f"JSON_VALUE(events.data, '$.{path}' RETURNING BINARY_DOUBLE NULL ON ERROR)"
        )

    def floor_div(self, value: ColumnElement[Any], width: float) -> ColumnElement[Any]:
        """``floor(value / width)`` as an integer (timestamps are positive)."""
        if self.dialect == "sqlite":  # floor() needs SQLite's math extension
            return cast(value / width, Integer)
        return cast(func.floor(value / width), Integer)

    def contains(self, column: ColumnElement[Any], needle: str) -> ColumnElement[bool]:
        """``needle`` is part of ``column``, case-sensitively (SQLite's LIKE ignores case)."""
        if self.dialect == "sqlite":
            return func.instr(column, needle) > 0
        return column.like(like_pattern(needle), escape="!")

    def _run(self, action: str, stmt: Any) -> list[Any]:
        store = self.store
        with store.db.translate(action), store._connect() as conn:
            return list(conn.execute(stmt).all())

    # -- the conversation list ----------------------------------------------------------
    def _in_range(self, filters: Filters) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if filters.since is not None:
            out.append(e.timestamp >= filters.since)
        if filters.until is not None:
            out.append(e.timestamp <= filters.until)
        return out

    def flagged(self, below: float) -> ColumnElement[bool]:
        """An event that marks trouble: fallback intent or action, or low confidence."""
        return or_(
            and_(e.type_name == "user", e.intent_name.in_(sorted(FALLBACK_INTENTS))),
            and_(e.type_name == "action", e.action_name.in_(sorted(FALLBACK_ACTIONS))),
            and_(e.type_name == "user", self.confidence() < below),
        )

    def _event_predicates(self, filters: Filters) -> list[ColumnElement[bool]]:
        """One predicate per event-level filter; a conversation needs an event for each."""
        preds: list[ColumnElement[bool]] = []
        if filters.intent is not None:
            preds.append(and_(e.type_name == "user", e.intent_name == filters.intent))
        if filters.action is not None:
            preds.append(e.action_name == filters.action)
        if filters.type_name is not None:
            preds.append(e.type_name == filters.type_name)
        if filters.text is not None:
            pattern = like_pattern(filters.text.lower())
            preds.append(
                and_(
                    e.type_name == "user",
                    func.lower(self.json_text("text")).like(pattern, escape="!"),
                )
            )
        if filters.flagged:
            preds.append(self.flagged(filters.below))
        return preds

    def conversations(
        self, filters: Filters, cursor: str | None, only: str | None, limit: int = PAGE_SIZE
    ) -> ConversationPage:
        """A page of conversations, newest activity first (keyset on last activity, id)."""
        position = decode_page_cursor(cursor)
        # the outer query reads an alias, so the filters' subqueries over ``events`` are
        # never correlated with it
        conv = events.alias("conv").c
        last = func.coalesce(func.max(conv.timestamp), 0.0)
        sessions = func.sum(case((conv.type_name == "session_started", 1), else_=0))
        turns = func.sum(case((conv.type_name == "user", 1), else_=0))
        stmt = select(
            conv.sender_id, last.label("last"), sessions.label("sessions"), turns.label("turns")
        ).group_by(conv.sender_id)
        if only is not None:
            stmt = stmt.where(conv.sender_id == only)
        if filters.sender is not None:
            stmt = stmt.where(self.contains(conv.sender_id, filters.sender))
        in_range = self._in_range(filters)
        predicates = self._event_predicates(filters) or ([and_(*in_range)] if in_range else [])
        for predicate in predicates:
            members = select(e.sender_id).where(predicate, *in_range)
            stmt = stmt.where(conv.sender_id.in_(members))
        if position is not None:
            stamp, sender = position
            stmt = stmt.having(or_(last < stamp, and_(last == stamp, conv.sender_id < sender)))
        stmt = stmt.order_by(last.desc(), conv.sender_id.desc()).limit(limit + 1)
        rows = self._run("listing conversations", stmt)
        page = rows[:limit]
        intents = self._last_intents([row.sender_id for row in page])
        out = [
            ConversationRow(
                row.sender_id,
                float(row.last),
                max(int(row.sessions or 0), 1),
                int(row.turns or 0),
                intents.get(row.sender_id),
            )
            for row in page
        ]
        more = len(rows) > limit
        return ConversationPage(out, encode_page_cursor(out[-1]) if more else None)

    def _last_intents(self, senders: list[str]) -> dict[str, str | None]:
        """The intent of each conversation's last user message (one query for the page)."""
        if not senders:
            return {}
        latest = (
            select(e.sender_id, func.max(e.seq).label("seq"))
            .where(e.sender_id.in_(senders), e.type_name == "user")
            .group_by(e.sender_id)
            .subquery()
        )
        stmt = select(e.sender_id, e.intent_name).join(
            latest, and_(e.sender_id == latest.c.sender_id, e.seq == latest.c.seq)
        )
        return {row.sender_id: row.intent_name for row in self._run("reading intents", stmt)}

    # -- the dashboard ------------------------------------------------------------------
    def newest_timestamp(self, only: str | None) -> float | None:
        """The newest event's timestamp (the timestamp index answers it)."""
        stmt = select(func.max(e.timestamp))
        if only is not None:
            stmt = stmt.where(e.sender_id == only)
        rows = self._run("reading the newest event", stmt)
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None

    def dashboard(self, since: float, until: float, only: str | None) -> Dashboard:
        """Every dashboard number over ``[since, until]``, each one GROUP BY query."""
        board = Dashboard(since, until)
        scope: list[ColumnElement[bool]] = [e.timestamp >= since, e.timestamp <= until]
        if only is not None:
            scope.append(e.sender_id == only)
        day = self.floor_div(e.timestamp, DAY).label("day")

        rows = self._run(
            "counting conversations per day",
            select(day, func.count(e.sender_id.distinct())).where(*scope).group_by(day),
        )
        board.conversations_per_day = {int(d): int(n) for d, n in rows}

        is_user = e.type_name == "user"
        is_action = e.type_name == "action"
        fallback = and_(is_action, e.action_name.in_(sorted(FALLBACK_ACTIONS)))
        escalation = and_(is_action, e.action_name.in_(sorted(ESCALATION_ACTIONS)))
        per_day = (
            select(
                day,
                func.sum(case((e.type_name == "session_started", 1), else_=0)),
                func.sum(case((is_user, 1), else_=0)),
                func.sum(case((fallback, 1), else_=0)),
                func.sum(case((escalation, 1), else_=0)),
            )
            .where(*scope, e.type_name.in_(["session_started", "user", "action"]))
            .group_by(day)
        )
        for d, sessions, turns, fallbacks, escalations in self._run("counting per day", per_day):
            for target, value in (
                (board.sessions_per_day, sessions),
                (board.turns_per_day, turns),
                (board.fallbacks_per_day, fallbacks),
                (board.escalations_per_day, escalations),
            ):
                if value:
                    target[int(d)] = int(value)

        count = func.count().label("n")
        intents = self._run(
            "counting intents",
            select(e.intent_name, count)
            .where(*scope, is_user, e.intent_name.is_not(None))
            .group_by(e.intent_name)
            .order_by(count.desc(), e.intent_name)
            .limit(10),
        )
        board.top_intents = [(str(name), int(n)) for name, n in intents]

        confidence = self.confidence()
        bucket = self.floor_div(confidence * CONFIDENCE_BUCKETS, 1).label("bucket")
        for b, n in self._run(
            "counting confidences",
            select(bucket, func.count())
            .where(*scope, is_user, confidence.is_not(None))
            .group_by(bucket),
        ):
            index = min(max(int(b), 0), CONFIDENCE_BUCKETS - 1)
            board.confidence[index] += int(n)

        hour = (self.floor_div(e.timestamp, 3600) - self.floor_div(e.timestamp, DAY) * 24).label(
            "hour"
        )
        for h, n in self._run(
            "counting hours", select(hour, func.count()).where(*scope, is_user).group_by(hour)
        ):
            board.busiest_hours[int(h) % 24] += int(n)

        for turns, n in self._run("counting turns per session", self._turns_per_session(scope)):
            board.turns_per_session[min(int(turns), MAX_TURNS_BUCKET)] += int(n)

        totals = self._run(
            "counting totals",
            select(
                func.count(e.sender_id.distinct()),
                func.count(),
                func.sum(case((is_user, 1), else_=0)),
                func.sum(case((e.type_name == "session_started", 1), else_=0)),
            ).where(*scope),
        )
        conversations, events_n, turns_n, sessions_n = totals[0]
        board.totals = {
            "conversations": int(conversations or 0),
            "sessions": int(sessions_n or 0),
            "turns": int(turns_n or 0),
            "events": int(events_n or 0),
        }
        return board

    def _turns_per_session(self, scope: list[ColumnElement[bool]]) -> Any:
        """``(turns, sessions)``: sessions numbered by a running count of session starts."""
        starts = case((e.type_name == "session_started", 1), else_=0)
        numbered = (
            select(
                e.sender_id,
                e.type_name,
                func.sum(starts)
                .over(partition_by=e.sender_id, order_by=e.seq, rows=(None, 0))
                .label("session"),
            )
            .where(*scope, e.type_name.in_(["session_started", "user"]))
            .subquery()
        )
        turns = func.sum(case((numbered.c.type_name == "user", 1), else_=0)).label("turns")
        per_session = select(turns).group_by(numbered.c.sender_id, numbered.c.session).subquery()
        return select(per_session.c.turns, func.count()).group_by(per_session.c.turns)

    def head_position(self) -> int:
        """Where the live tail starts: the store's feed horizon (no append in flight can
        still commit below it, so none is skipped), or the newest id where ids commit in
        order (SQLite)."""
        horizon = self.store.horizon()
        if horizon is not None:
            return horizon
        rows = self._run("reading the newest position", select(func.max(e.id)))
        return int(rows[0][0] or 0) if rows else 0


__all__ = ["SQLQueries"]
