"""Encryption at rest of the SQL ``data`` column: nothing in the clear, rotation, wrong keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from eventstore.cli import main
from eventstore.errors import ConfigError, DecryptionError
from eventstore.factory import create_tracker_store
from eventstore.privacy.crypto import generate_key
from eventstore.stores.base import EventQuery
from tests.privacy.conversation import SECRETS, personal_events

OLD, NEW = generate_key(), generate_key()
ENV = "ES_TEST_ENCRYPTION_KEYS"


def section(url: str) -> dict[str, Any]:
    return {"type": "sql", "url": url, "encryption_keys_env": ENV}


def raw_data(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT data FROM events ORDER BY id"))]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    kind = request.param
    fresh: Any = request.getfixturevalue("fresh_database")
    return str(fresh(kind))


def test_no_event_text_in_the_clear_and_plain_columns_still_queryable(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, f"k1:{OLD}")
    store = create_tracker_store(section(url))
    try:
        store.append("alice", personal_events())
        assert store.read_all("alice") == personal_events()
        assert store.retrieve("alice") is not None
        users = list(store.query(EventQuery(intent="inform")))
        assert [e.data for e in users] == [personal_events()[1]]
        actions = list(store.query(EventQuery(action="utter_confirm", sender_id="alice")))
        assert len(actions) == 1
    finally:
        store.close()
    assert all(value.startswith("enc1:k1:") for value in raw_data(url))
    if url.startswith("sqlite"):
        files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if ".db" in p.name)
        assert b"alice" in files  # the plain columns are there...
        for clear in (*SECRETS, "I am", "Thanks, I will", "RulePolicy", "parse_data"):
            assert clear.encode() not in files, f"{clear!r} is stored in the clear"


def test_a_wrong_or_missing_key_is_a_clear_error(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, f"k1:{OLD}")
    with create_tracker_store(section(url)) as store:
        store.append("alice", personal_events())
    monkeypatch.setenv(ENV, f"k1:{NEW}")
    with (
        create_tracker_store(section(url)) as store,
        pytest.raises(DecryptionError, match="wrong key or altered data"),
    ):
        store.read_all("alice")
    monkeypatch.setenv(ENV, f"k2:{NEW}")
    with (
        create_tracker_store(section(url)) as store,
        pytest.raises(DecryptionError, match="key id 'k1'"),
    ):
        store.retrieve("alice")
    monkeypatch.delenv(ENV)
    with pytest.raises(ConfigError, match=ENV):
        create_tracker_store(section(url))


def test_rotation_keeps_every_conversation_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(yaml.safe_dump({"tracker_store": section(url)}))
    with create_tracker_store({"type": "sql", "url": url}) as store:  # before encryption
        store.append("plain", personal_events())
    monkeypatch.setenv(ENV, f"k1:{OLD}")
    with create_tracker_store(section(url)) as store:
        store.append("old-key", personal_events())
        assert store.read_all("plain") == personal_events()
    monkeypatch.setenv(ENV, f"k2:{NEW},k1:{OLD}")  # new key first, old still accepted
    with create_tracker_store(section(url)) as store:
        store.append("new-key", personal_events())
        for sender in ("plain", "old-key", "new-key"):
            assert store.read_all(sender) == personal_events()
    assert main(["rotate-key", "--endpoints", str(endpoints), "--batch-size", "5"]) == 0
    assert "16 events re-encrypted under key 'k2'" in capsys.readouterr().out
    assert all(value.startswith("enc1:k2:") for value in raw_data(url))
    monkeypatch.setenv(ENV, f"k2:{NEW}")  # the old key retired
    with create_tracker_store(section(url)) as store:
        for sender in ("plain", "old-key", "new-key"):
            assert store.read_all(sender) == personal_events()
    assert main(["rotate-key", "--endpoints", str(endpoints)]) == 0
    assert "0 events re-encrypted" in capsys.readouterr().out


def test_rotate_key_needs_an_encrypted_sql_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: in_memory\n")
    assert main(["rotate-key", "--endpoints", str(endpoints)]) == 1
    assert "supported by the SQL store" in capsys.readouterr().err
    endpoints.write_text(f"tracker_store:\n  type: sql\n  url: sqlite:///{tmp_path / 'x.db'}\n")
    assert main(["rotate-key", "--endpoints", str(endpoints)]) == 1
    assert "no encryption_keys_env" in capsys.readouterr().err
