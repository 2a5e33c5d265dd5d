"""A 20,000-event conversation on SQLite, PostgreSQL and MariaDB: no size ceiling."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import EventQuery, create_tracker_store
from eventstore.testing import action, new_id, session_start, user


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_twenty_thousand_events_append_and_retrieve(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'large.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if kind == "postgresql" else "mysql_url")
    store = create_tracker_store({"type": "sql", "url": url})
    sid = new_id("large")
    version = 0
    for batch in range(20):
        events = [user(f"m{batch}-{i}") if i % 2 else action("a") for i in range(1000)]
        version = store.append(sid, events, expected_version=version)
    assert version == 20_000
    store.append(sid, [*session_start(), user("last")], expected_version=20_000)
    assert len(store.read(sid)) == 20_004
    assert [e["event"] for e in store.read(sid, after=19_999)][:2] == ["user", "action"]
    current = store.retrieve(sid)
    assert current is not None and current.version == 20_004
    assert [e["event"] for e in current.events] == ["session_started", "action", "user"]
    full = store.retrieve_full_tracker(sid)
    assert full is not None and len(full.events) == 20_004
    seqs = [e.seq for e in store.query(EventQuery(sender_id=sid))]
    assert seqs == list(range(1, 20_005))
    assert store.delete(sid) == 20_004
    store.close()
