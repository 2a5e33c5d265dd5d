"""The list and the dashboard answer the same on every backend (SQL aggregates on SQLite,
PostgreSQL and MariaDB; the bounded scan on the in-memory store), for a known data set."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstore.factory import create_tracker_store
from eventstore.server.errors import ApiError
from eventstore.server.ui.model import Filters, Scan, format_day, parse_filters
from eventstore.server.ui.queries import Queries, queries_for
from eventstore.stores.base import TrackerStore
from tests.ui.dataset import BASE, DAY, EXPECTED, LIST_ORDER, conversations, user

Loaded = tuple[TrackerStore, Queries, str, float]


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb", "sqlite-encrypted"])
def loaded(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Loaded]:
    """A store holding the known data set under a unique prefix, and its queries."""
    backend = request.param
    if backend == "memory":
        store = create_tracker_store({"type": "in_memory"})
    elif backend.startswith("sqlite"):
        config = {"type": "sql", "url": f"sqlite:///{tmp_path / 'ui.db'}"}
        if backend == "sqlite-encrypted":  # the database cannot read inside: a bounded scan
            key = base64.b64encode(bytes(range(32))).decode()
            monkeypatch.setenv("EVENTSTORE_UI_TEST_KEYS", f"k1:{key}")
            config["encryption_keys_env"] = "EVENTSTORE_UI_TEST_KEYS"
        store = create_tracker_store(config)
    else:
        fixture = "postgres_url" if backend == "postgresql" else "mysql_url"
        store = create_tracker_store({"type": "sql", "url": request.getfixturevalue(fixture)})
    prefix = f"q{uuid.uuid4().hex[:8]}-"
    # days of their own: tests sharing the PostgreSQL/MariaDB database never overlap
    base = BASE + random.randrange(1, 100_000) * DAY
    for sender, events in conversations(prefix, base).items():
        store.append(sender, events)
    try:
        queries = queries_for(store)
        assert isinstance(queries, Scan) == (backend in ("memory", "sqlite-encrypted"))
        yield store, queries, prefix, base
    finally:
        store.close()


def ids(queries: Queries, prefix: str, **filters: object) -> list[str]:
    page = queries.conversations(Filters(sender=prefix, **filters), None, None)  # type: ignore[arg-type]
    return [row.sender_id.removeprefix(prefix) for row in page.rows]


def test_rows_newest_first_with_sessions_turns_and_last_intent(
    loaded: Loaded,
) -> None:
    _, queries, prefix, base = loaded
    page = queries.conversations(Filters(sender=prefix), None, None)
    rows = {row.sender_id.removeprefix(prefix): row for row in page.rows}
    assert [r.sender_id.removeprefix(prefix) for r in page.rows] == LIST_ORDER
    assert (rows["alice"].sessions, rows["alice"].turns, rows["alice"].last_intent) == (
        1,
        2,
        "book_table",
    )
    assert (rows["bob"].sessions, rows["bob"].turns, rows["bob"].last_intent) == (
        1,
        2,
        "nlu_fallback",
    )
    assert (rows["carol"].sessions, rows["carol"].turns, rows["carol"].last_intent) == (
        2,
        4,
        "goodbye",
    )
    assert rows["carol"].last_activity == base + DAY + 20 * 3600 + 40
    assert page.next_cursor is None


def test_filters(loaded: Loaded) -> None:
    _, queries, prefix, base = loaded
    assert ids(queries, prefix, text="TABLE") == ["carol", "alice"]
    assert ids(queries, prefix, text="100%") == []  # LIKE's wildcards are literal
    assert ids(queries, prefix, flagged=True) == ["bob"]
    assert ids(queries, prefix, flagged=True, below=0.93) == ["carol", "bob", "alice"]
    assert ids(queries, prefix, intent="nlu_fallback") == ["bob"]
    assert ids(queries, prefix, intent="greet", text="hello") == ["carol"]
    assert ids(queries, prefix, action="guests") == ["alice"]
    assert ids(queries, prefix, type_name="rewind") == ["carol"]
    assert ids(queries, prefix, since=base + DAY) == ["carol"]
    assert ids(queries, prefix, until=base + DAY - 1) == ["bob", "alice"]
    # the intent must be met inside the range: bob's greet is on day 1
    assert ids(queries, prefix, intent="greet", since=base + DAY) == ["carol"]
    assert ids(queries, prefix.upper() + "ALICE") == []  # sender ids compare exactly


def test_nul_characters_in_stored_text_neither_break_nor_hide_a_search(loaded: Loaded) -> None:
    """JSON may escape NUL (``\\u0000``), which PostgreSQL text cannot hold: a search that
    reads such a row must still answer, and find it."""
    store, queries, prefix, base = loaded
    nul = user("a NUL\x00TABLE here", "book_table", 0.9, base + 10)
    literal = user("escaped \\u0000 table", "greet", 0.9, base + 11)  # a backslash, then text
    store.append(f"{prefix}dave", [nul, literal])
    assert ids(queries, prefix, text="nul") == ["dave"]
    assert ids(queries, prefix, text="\\u0000 table") == ["dave"]
    assert ids(queries, prefix, text="TABLE") == ["carol", "alice", "dave"]


def test_keyset_pages(loaded: Loaded) -> None:
    _, queries, prefix, _ = loaded
    first = queries.conversations(Filters(sender=prefix), None, None, limit=2)
    assert [r.sender_id.removeprefix(prefix) for r in first.rows] == ["carol", "bob"]
    assert first.next_cursor is not None
    second = queries.conversations(Filters(sender=prefix), first.next_cursor, None, limit=2)
    assert [r.sender_id.removeprefix(prefix) for r in second.rows] == ["alice"]
    assert second.next_cursor is None


def test_a_jwt_user_sees_only_their_conversation(loaded: Loaded) -> None:
    _, queries, prefix, base = loaded
    page = queries.conversations(Filters(), None, f"{prefix}bob")
    assert [row.sender_id for row in page.rows] == [f"{prefix}bob"]
    board = queries.dashboard(base, base + 2 * DAY - 1, f"{prefix}bob").chart_data()
    assert board["totals"]["conversations"] == 1
    assert board["totals"]["turns"] == 2


def test_dashboard_numbers(loaded: Loaded) -> None:
    _, queries, _, base = loaded
    data = queries.dashboard(base, base + 2 * DAY - 1, None).chart_data()
    assert data["days"] == [format_day(base), format_day(base + DAY)]
    for key in ("conversations_per_day", "sessions_per_day", "fallback_rate", "escalation_rate"):
        assert data[key] == EXPECTED[key], key
    assert data["top_intents"] == EXPECTED["top_intents"]
    assert data["confidence"]["counts"] == EXPECTED["confidence"]
    assert data["turns_per_session"]["counts"] == EXPECTED["turns_per_session"]
    hours = {h: n for h, n in enumerate(data["busiest_hours"]["counts"]) if n}
    assert hours == EXPECTED["busiest_hours"]
    assert data["totals"] == EXPECTED["totals"]


def test_bad_filters_are_refused_naming_the_field() -> None:
    with pytest.raises(ApiError) as caught:
        parse_filters({"since": "last tuesday"})
    assert caught.value.details == {"field": "since"}
    with pytest.raises(ApiError) as caught:
        parse_filters({"below": "2"})
    assert caught.value.details == {"field": "below"}
    assert parse_filters({"until": "2033-05-19"}).until == BASE + DAY - 0.000001
