"""SQL snapshots under encryption at rest: encrypted like the events, ignored once the key
is gone, dropped by ``rotate-key`` (they are a cache, rewritten under the new key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from eventstore.privacy.crypto import generate_key
from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.testing import session_start, user

ENV = "ES_TEST_SNAPSHOT_KEYS"


def snapshot_rows(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT data FROM tracker_snapshots"))]
    finally:
        engine.dispose()


def test_snapshots_are_encrypted_and_ignored_without_their_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'enc.db'}"
    old, new = generate_key(), generate_key()
    monkeypatch.setenv(ENV, f"k1:{old}")
    store = SQLTrackerStore.from_url(
        url, encryption_keys_env=ENV, tracker_cache_size=0, snapshot_every=5
    )
    try:
        store.append("alice", session_start())
        for i in range(3):
            tracker = store.retrieve("alice")
            assert tracker is not None
            tracker.update_with_events(
                [user("my number is 555-0199"), {"event": "slot", "name": "phone", "value": i}]
            )
            store.save(tracker)
        assert store.flush_snapshots()
        rows = snapshot_rows(url)
        assert len(rows) == 1 and rows[0].startswith("enc1:k1:")
        assert "555-0199" not in rows[0] and "phone" not in rows[0]
        restored = store.retrieve("alice")
        assert restored is not None and restored._head is not None  # read the snapshot
        assert restored.get_slot("phone") == 2
    finally:
        store.close()

    monkeypatch.setenv(ENV, f"k2:{new},k1:{old}")
    store = SQLTrackerStore.from_url(url, encryption_keys_env=ENV, tracker_cache_size=0)
    try:
        store.rotate_key()
        assert snapshot_rows(url) == []
    finally:
        store.close()

    monkeypatch.setenv(ENV, f"k2:{new}")
    store = SQLTrackerStore.from_url(
        url, encryption_keys_env=ENV, tracker_cache_size=0, snapshot_every=5
    )
    try:
        tracker = store.retrieve("alice")
        assert tracker is not None and tracker.get_slot("phone") == 2
        store.flush_snapshots()
        engine = create_engine(url)  # a snapshot under the removed key k1: unreadable now
        with engine.begin() as conn:
            conn.execute(text("UPDATE tracker_snapshots SET data = 'enc1:k1:AAAA'"))
        engine.dispose()
        again = store.retrieve("alice")
        assert again is not None and again._head is None and again.get_slot("phone") == 2
    finally:
        store.close()
