"""Hostile input at the library level, on every backend (property-based, hypothesis).

Whatever is thrown at ``append``: it stores the events and reads them back byte for byte,
or refuses with ``EventValidationError`` and stores nothing. Never another exception,
never a partial write.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import EventValidationError, TrackerStore, create_tracker_store

NASTY_STRINGS = [
    "../../etc/passwd",
    "'; DROP TABLE events; --",
    '" OR 1=1 --',
    "$where",
    '{"$gt": ""}',
    "tracker:*",
    "a.b.c",
    "\\x00",
    "\u202e\u200b\ufeff",
    "emoji 👋🏽",
    "\t\n\r\x0b\x0c\x1b",
    "%s%s%n",
    "*",
    "[]{}",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(NASTY_STRINGS)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.sampled_from(NASTY_STRINGS), inner, max_size=4)
    ),
    max_leaves=20,
)
sender_ids = st.text(min_size=1, max_size=60) | st.sampled_from(NASTY_STRINGS)
#: Intent, action and slot names: anything but NUL and lone surrogates (indexed, so refused).
names = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=30
) | st.sampled_from(NASTY_STRINGS)

valid_events = st.one_of(
    st.builds(
        lambda text, meta: {
            "event": "user",
            "text": text,
            "parse_data": {"intent": {"name": _indexable(text)[:10]}, "entities": []},
            "metadata": meta,
        },
        st.text(max_size=80) | st.sampled_from(NASTY_STRINGS),
        st.dictionaries(
            st.text(max_size=8) | st.sampled_from(NASTY_STRINGS), json_values, max_size=3
        ),
    ),
    st.builds(
        lambda name, value: {"event": "slot", "name": name, "value": value}, names, json_values
    ),
    st.builds(lambda name: {"event": "action", "name": name}, names),
    st.builds(
        lambda text, data: {"event": "bot", "text": text, "data": data},
        st.text(max_size=50),
        st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    ),
)
malformed_events = st.one_of(
    json_values,  # not an event at all (or missing its "event" key)
    st.dictionaries(st.sampled_from(["event", "name", "text", "timestamp", "value"]), json_values),
    st.builds(lambda e, v: {"event": e, "value": v}, st.text(max_size=12), json_values),
)
any_event = valid_events | malformed_events


def _indexable(text: str) -> str:
    """``text`` without what names may not hold (NUL, lone surrogates)."""
    return "".join(c for c in text if c != "\x00" and not 0xD800 <= ord(c) <= 0xDFFF)


def _valid_id(sid: Any) -> bool:
    return isinstance(sid, str) and 0 < len(sid) <= 255 and "\x00" not in sid


def _fresh_id(draw_id: str) -> str:
    # the generated id plus a unique suffix so examples never share a conversation
    return f"{draw_id[:200]}|{uuid.uuid4().hex[:8]}"


def _check(store: TrackerStore, sid: str, events: list[Any]) -> None:
    before = store.read(sid) if _valid_id(sid) else []
    try:
        version = store.append(sid, events)
    except EventValidationError:
        if _valid_id(sid):
            assert store.read(sid) == before  # nothing of the request was stored
        return
    stored = store.read(sid)
    assert version == len(stored)
    new = stored[len(before) :]
    assert len(new) == len(events)
    for given_event, got in zip(events, new, strict=True):
        expected = dict(given_event)
        if not expected.get("timestamp"):
            expected.pop("timestamp", None)
            got = {k: v for k, v in got.items() if k != "timestamp"}
        # byte for byte: the same JSON text, key order aside
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sid=sender_ids, events=st.lists(any_event, min_size=1, max_size=4))
def test_random_events_store_exactly_or_are_refused_cleanly(
    backend: dict[str, Any], sid: str, events: list[Any]
) -> None:
    store = _store(backend)
    _check(store, _fresh_id(sid), events)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sid=sender_ids.filter(_valid_id), events=st.lists(valid_events, min_size=1, max_size=4))
def test_valid_hostile_content_round_trips(
    backend: dict[str, Any], sid: str, events: list[Any]
) -> None:
    store = _store(backend)
    sid = _fresh_id(sid)
    store.append(sid, events)
    back = store.read(sid)
    for given_event, got in zip(events, back, strict=True):
        got = {k: v for k, v in got.items() if k != "timestamp"}
        assert json.dumps(got, sort_keys=True) == json.dumps(given_event, sort_keys=True)
    assert sid in set(store.keys())


@pytest.mark.parametrize(
    "sid", ["", "x" * 256, "a\x00b", "\ud800lone", 7, None, ["list"], {"$gt": ""}]
)
def test_bad_sender_ids_are_refused_on_every_backend(backend: dict[str, Any], sid: Any) -> None:
    store = _store(backend)
    with pytest.raises(EventValidationError):
        store.append(sid, [{"event": "pause"}])


def test_big_and_deep_payloads_are_refused_and_store_nothing(backend: dict[str, Any]) -> None:
    store = _store(backend)
    sid = f"big-{uuid.uuid4().hex[:8]}"
    store.append(sid, [{"event": "pause"}])
    deep: Any = "x"
    for _ in range(5000):
        deep = {"k": deep}
    for bad in (
        {"event": "bot", "text": "x" * (10 * 1024 * 1024)},
        {"event": "slot", "name": "s", "value": deep},
        {"event": "slot", "name": "s", "value": ["y" * 1024] * 1024},
    ):
        with pytest.raises(EventValidationError):
            store.append(sid, [{"event": "resume"}, bad])
    assert [e["event"] for e in store.read(sid)] == ["pause"]


_STORES: dict[str, TrackerStore] = {}


def _store(config: dict[str, Any]) -> TrackerStore:
    """One store per backend config for all examples of a test (creating one is slow)."""
    key = json.dumps(config, sort_keys=True)
    if key not in _STORES:
        _STORES[key] = create_tracker_store(config)
    return _STORES[key]


@pytest.fixture(autouse=True, scope="module")
def _close_stores() -> Any:
    yield
    for store in _STORES.values():
        store.close()
    _STORES.clear()
