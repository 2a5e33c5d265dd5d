"""The statements of the SQL store: reads, the current session, an ``EventQuery``, a folded
append."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    TextClause,
    bindparam,
    false,
    func,
    literal,
    select,
    text,
)

from eventstore.stores.records import INT64_MAX, EventQuery
from eventstore.stores.sql.schema import events

_MAX_INT64 = INT64_MAX


def _storable(value: str) -> bool:
    """Whether a string can be sent to every driver: no NUL, encodable as UTF-8."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _current_session() -> Select[Any]:
    sender: Any = bindparam("sender_id")
    start = (
        select(func.max(events.c.seq))
        .where(events.c.sender_id == sender, events.c.type_name == "session_started")
        .scalar_subquery()
    )
    return (
        select(events.c.seq, events.c.data)
        .where(events.c.sender_id == sender, events.c.seq >= func.coalesce(start, 1))
        .order_by(events.c.seq)
    )


#: seq and data of the current session: from the last ``session_started`` (or seq 1).
#: Built once and bound per call (``sender_id``), as every statement of a read or an append
#: is: building a statement costs more than its round trip on a fast server.
CURRENT_SESSION = _current_session()
#: data of a conversation's events after seq ``after``, in seq order.
READ_AFTER = (
    select(events.c.data)
    .where(events.c.sender_id == bindparam("sender_id"), events.c.seq > bindparam("after"))
    .order_by(events.c.seq)
)


def query_statement(query: EventQuery) -> Select[Any]:
    """The SELECT behind ``query``: filters on indexed columns, by id (by seq for one sender)."""
    stmt = select(events.c.id, events.c.sender_id, events.c.seq, events.c.data)
    column_filters = (
        (events.c.sender_id, query.sender_id),
        (events.c.type_name, query.type_name),
        (events.c.intent_name, query.intent),
        (events.c.action_name, query.action),
    )
    for column, value in column_filters:
        if value is None:
            continue
        # no stored name holds NUL or a lone surrogate (appends refuse them), and drivers
        # cannot send them: such a filter matches nothing
        stmt = stmt.where(column == value if _storable(value) else false())
    # Bounds no column can hold are decided here, not sent to the driver (which would fail
    # on NaN, infinities or integers past 64 bits).
    if query.since is not None:
        stmt = _time_bound(stmt, float(query.since), lower=True)
    if query.until is not None:
        stmt = _time_bound(stmt, float(query.until), lower=False)
    if query.after_position is not None:
        after = int(query.after_position)
        if after >= _MAX_INT64:
            stmt = stmt.where(false())
        elif after >= -_MAX_INT64:  # bound as BIGINT: PostgreSQL would cast it to the id's int4
            stmt = stmt.where(events.c.id > literal(after, BigInteger))
    stmt = stmt.order_by(events.c.seq if query.sender_id is not None else events.c.id)
    if query.limit is not None:
        stmt = stmt.limit(min(max(int(query.limit), 0), _MAX_INT64))
    return stmt


def _time_bound(stmt: Select[Any], bound: float, lower: bool) -> Select[Any]:
    """``timestamp >= bound`` (``<=`` for an upper bound); NaN and infinities in Python."""
    if math.isnan(bound):
        return stmt.where(false())  # nothing compares with NaN
    if math.isinf(bound):  # since=-inf / until=+inf filter nothing; the others match nothing
        return stmt if (bound < 0) == lower else stmt.where(false())
    column = events.c.timestamp
    return stmt.where(column >= bound if lower else column <= bound)


#: The most rows one folded append sends (6 bound values each, far below every limit).
FOLDED_MAX_ROWS = 200

_FOLDED_ROW = (
    "({n}, CAST(:t{n} AS VARCHAR), CAST(:ts{n} AS DOUBLE PRECISION), CAST(:i{n} AS VARCHAR), "
    "CAST(:a{n} AS VARCHAR), CAST(:d{n} AS TEXT))"
)


@lru_cache(maxsize=FOLDED_MAX_ROWS)
def _folded_append_sql(count: int) -> TextClause:
    rows = ", ".join(_FOLDED_ROW.format(n=n) for n in range(1, count + 1))
    return text(
        "INSERT INTO events (sender_id, seq, type_name, timestamp, intent_name, action_name, "
        "data) SELECT :sender_id, head.seq + new_rows.n, new_rows.type_name, "
        "new_rows.timestamp, new_rows.intent_name, new_rows.action_name, new_rows.data "
        f"FROM (VALUES {rows}) AS new_rows (n, type_name, timestamp, intent_name, "
        "action_name, data) CROSS JOIN (SELECT coalesce(max(seq), 0) AS seq FROM events "
        "WHERE sender_id = :sender_id) AS head RETURNING id, seq"
    )


def folded_append_statement(
    sender_id: str, rows: list[dict[str, Any]]
) -> tuple[TextClause, dict[str, Any]]:
    """One PostgreSQL INSERT numbering ``rows`` after ``max(seq)``, returning id and seq.

    ``INSERT .. SELECT .. FROM (VALUES ..) CROSS JOIN (SELECT max(seq))`` reads the version
    and writes the rows in one round trip. Run it only after the conversation's lock is
    held, as its own statement: its snapshot then includes every earlier writer's rows.
    The SQL text is cached per row count, so SQLAlchemy compiles it once.
    """
    params: dict[str, Any] = {"sender_id": sender_id}
    for n, row in enumerate(rows, start=1):
        params[f"t{n}"] = row["type_name"]
        params[f"ts{n}"] = row["timestamp"]
        params[f"i{n}"] = row["intent_name"]
        params[f"a{n}"] = row["action_name"]
        params[f"d{n}"] = row["data"]
    return _folded_append_sql(len(rows)), params
