"""Retention: exactly the idle conversations go, on every backend, while writers append;
the lock in the store's own server keeps two processes from running it at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventstore.cli import main
from eventstore.endpoints import load_endpoints
from eventstore.errors import ConcurrencyError, ConfigError
from eventstore.factory import create_tracker_store
from eventstore.privacy import RetentionSettings, parse_retention
from eventstore.privacy.retention import DAY, apply_retention
from eventstore.relay import relay_of
from eventstore.server import ServerSettings
from eventstore.testing import new_id
from tests.http.conftest import LiveServer
from tests.privacy.conftest import SwitchBroker
from tests.privacy.conversation import holds_secret, personal_events

NOW = time.time()
SETTINGS = RetentionSettings(days=30, batch_size=2)


def turn(ts: float) -> list[dict[str, Any]]:
    return [
        {"event": "action", "name": "action_listen", "timestamp": ts},
        {"event": "user", "text": "hi", "timestamp": ts + 1, "parse_data": {"entities": []}},
    ]


def test_retention_deletes_exactly_the_idle_conversations_while_writers_append(
    store_section: dict[str, Any],
) -> None:
    broker = SwitchBroker()
    store = create_tracker_store(store_section, broker)
    old = [f"old-{i}" for i in range(5)]
    recent = [f"recent-{i}" for i in range(5)]
    try:
        for sender in old:
            store.append(sender, turn(NOW - 40 * DAY))
        for sender in recent:  # started long ago, but spoke yesterday
            store.append(sender, turn(NOW - 90 * DAY) + turn(NOW - DAY))
        store.append("edge", turn(NOW - 29 * DAY))

        dry = apply_retention(store, SETTINGS, dry_run=True, now=NOW)
        assert sorted(dry.expired) == old
        assert all(store.version(sender) == 2 for sender in old)

        stop = threading.Event()
        written: list[str] = []

        def writer() -> None:
            while not stop.is_set() or len(written) < 5:
                sender = f"live-{len(written)}"
                store.append(sender, turn(time.time()))
                written.append(sender)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            report = apply_retention(store, SETTINGS, now=NOW)
        finally:
            stop.set()
            thread.join()
        assert report.ran and report.finished
        assert sorted(report.expired) == old
        assert report.deleted_events == 10
        assert sorted(store.keys()) == sorted([*recent, "edge", *written])
        assert all(store.version(sender) == 2 for sender in written)
        assert all(store.version(sender) == 4 for sender in recent)
        assert relay_of(store).stop(20.0)
    finally:
        store.close()
    tombstones = [m for m in broker.messages if m["event"] == "conversation_deleted"]
    assert sorted(m["sender_id"] for m in tombstones) == old
    assert {m["reason"] for m in tombstones} == {"retention"}


def test_a_conversation_written_to_meanwhile_is_kept(store_section: dict[str, Any]) -> None:
    store = create_tracker_store(store_section)
    try:
        store.append("back", turn(NOW - 40 * DAY))
        store.append("back", turn(NOW))  # the user came back after retention read version 2
        with pytest.raises(ConcurrencyError):
            store.delete_at_version("back", 2)
        assert store.version("back") == 4
        assert store.delete_at_version("back", 4) == 4
        assert store.version("back") == 0
    finally:
        store.close()


def test_two_processes_never_run_retention_at_once(store_section: dict[str, Any]) -> None:
    first = create_tracker_store(store_section)
    # a second store on the same database, as another replica has (memory: one process)
    second = first if store_section["type"] == "in_memory" else create_tracker_store(store_section)
    try:
        first.append("old", turn(NOW - 40 * DAY))
        with first.exclusive("retention", 60) as taken:
            assert taken
            report = apply_retention(second, SETTINGS, now=NOW)
            assert not report.ran and report.expired == []
            assert first.version("old") == 2
        report = apply_retention(second, SETTINGS, now=NOW)  # released: the next run goes
        assert report.ran and report.expired == ["old"]
    finally:
        first.close()
        if second is not first:
            second.close()


def test_retention_section_is_validated() -> None:
    assert parse_retention({"days": 7}) == RetentionSettings(days=7)
    for section, needle in (
        ({}, "'days' is required"),
        ({"days": 0}, "days"),
        ({"days": 7, "action": "archive"}, "action"),
        ({"days": 7, "every": 5}, "every"),
    ):
        with pytest.raises(ConfigError, match="retention") as info:
            parse_retention(section)
        assert needle in str(info.value)


def write_endpoints(tmp_path: Path, retention: dict[str, Any], **extra: Any) -> Path:
    path = tmp_path / "endpoints.yml"
    sections = {
        "tracker_store": {"type": "sql", "url": f"sqlite:///{tmp_path / 'e.db'}"},
        "retention": retention,
        **extra,
    }
    path.write_text(yaml.safe_dump(sections))
    return path


def test_cli_dry_run_then_redact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    redaction = {"rules": [{"detectors": ["email", "phone", "credit_card", "iban"]}]}
    endpoints = write_endpoints(
        tmp_path, {"days": 30, "action": "redact"}, privacy={"redaction": redaction}
    )
    store = create_tracker_store(load_endpoints(endpoints).tracker_store)
    store.append("old", personal_events(NOW - 60 * DAY))
    store.append("fresh", personal_events(NOW))
    store.close()

    assert main(["retention", "--dry-run", "--endpoints", str(endpoints)]) == 0
    assert "old: would be redacted" in capsys.readouterr().out
    assert main(["retention", "--endpoints", str(endpoints)]) == 0
    out = capsys.readouterr().out
    assert "old: redacted" in out and "2 conversations examined" in out
    store = create_tracker_store(load_endpoints(endpoints).tracker_store)
    try:
        old = store.read_all("old")
        assert not holds_secret(old)
        assert [e["timestamp"] for e in old] == [
            e["timestamp"] for e in personal_events(NOW - 60 * DAY)
        ]
        assert store.read_all("fresh") == personal_events(NOW)
    finally:
        store.close()


def test_cli_without_a_retention_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: in_memory\n")
    assert main(["retention", "--endpoints", str(endpoints)]) == 1
    assert "no retention section" in capsys.readouterr().err
    redact = write_endpoints(tmp_path, {"days": 1, "action": "redact"})
    assert main(["retention", "--endpoints", str(redact)]) == 1
    assert "needs privacy.redaction" in capsys.readouterr().err


def test_eventstore_run_applies_retention_on_a_schedule(tmp_path: Path) -> None:
    endpoints = write_endpoints(tmp_path, {"days": 30, "interval_minutes": 0.002})
    store = create_tracker_store(load_endpoints(endpoints).tracker_store)
    store.append("old", turn(NOW - 40 * DAY))
    store.append("fresh", turn(NOW))
    server = LiveServer(store, ServerSettings(endpoints=str(endpoints)))
    try:
        deadline = time.monotonic() + 20
        while store.version("old") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.version("old") == 0
        assert server.app.state.retention.runs >= 1
        assert store.version("fresh") == 2
    finally:
        server.stop()


@pytest.mark.parametrize("store_section", ["redis", "mongo", "dynamo"], indirect=True)
def test_a_lock_left_by_a_crashed_holder_expires(store_section: dict[str, Any]) -> None:
    crashed = create_tracker_store(store_section)
    other = create_tracker_store(store_section)
    try:
        other.version(new_id())  # connected (DynamoDB: table checked) before the clock runs
        held = crashed.exclusive("retention", 3)
        assert held.__enter__()  # and never left: the holder died
        with other.exclusive("retention", 60) as taken:
            assert not taken
        deadline = time.monotonic() + 20
        taken = False
        while not taken and time.monotonic() < deadline:
            time.sleep(0.1)
            with other.exclusive("retention", 60) as taken:
                pass
        assert taken, "the expired lock was never taken over"
    finally:
        crashed.close()
        other.close()
