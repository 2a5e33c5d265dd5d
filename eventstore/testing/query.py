"""Query edge cases: one answer on every backend (the query validates itself, and one that
matches nothing is answered before the backend is asked)."""

from __future__ import annotations

import math

import pytest

from eventstore.errors import EventValidationError
from eventstore.stores.base import INT64_MAX, EventQuery, TrackerStore
from eventstore.testing.builders import new_id, user


class QueryContract:
    """Mix into every ``TrackerStoreContract`` subclass (no capability needed)."""

    @pytest.mark.parametrize("field", ["since", "until"])
    def test_nan_bounds_are_refused_naming_the_field(self, field: str) -> None:
        with pytest.raises(EventValidationError) as info:
            EventQuery(**{field: math.nan})  # type: ignore[arg-type]
        assert info.value.field == field

    @pytest.mark.parametrize(
        ("field", "value"),
        [("since", "1"), ("until", True), ("after_position", 1.5), ("limit", "3"), ("intent", 4)],
    )
    def test_wrongly_typed_filters_are_refused_naming_the_field(
        self, field: str, value: object
    ) -> None:
        with pytest.raises(EventValidationError) as info:
            EventQuery(**{field: value})  # type: ignore[arg-type]
        assert info.value.field == field

    @pytest.mark.parametrize(
        "query",
        [
            {"limit": 0},
            {"limit": -5},
            {"limit": -(2**80)},
            {"since": math.inf},
            {"until": -math.inf},
            {"since": 20.0, "until": 10.0},
            {"after_position": INT64_MAX},
            {"after_position": 2**80},
        ],
    )
    def test_queries_that_match_nothing_answer_nothing(
        self, store: TrackerStore, query: dict[str, object]
    ) -> None:
        a = new_id()
        store.append(a, [user("x", ts=15.0)])
        assert list(store.query(EventQuery(sender_id=a, **query))) == []  # type: ignore[arg-type]
        assert EventQuery(**query).matches_nothing  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "query",
        [
            {"limit": 2**80},
            {"since": -math.inf},
            {"until": math.inf},
            {"since": -1e300, "until": 1e300},
            {"since": 15.0, "until": 15.0},
        ],
    )
    def test_bounds_past_any_event_filter_nothing(
        self, store: TrackerStore, query: dict[str, object]
    ) -> None:
        a = new_id()
        store.append(a, [user("x", ts=15.0), user("y", ts=15.0)])
        found = list(store.query(EventQuery(sender_id=a, **query)))  # type: ignore[arg-type]
        assert [e.seq for e in found] == [1, 2]

    def test_bounds_are_clamped_to_64_bits(self) -> None:
        assert EventQuery(limit=2**80).limit == INT64_MAX
        assert EventQuery(after_position=-(2**80)).after_position == -(2**63)
