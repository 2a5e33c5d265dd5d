"""``export_events`` and ``eventstore export``: what reaches the broker, filters, errors, resume."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from brokers.file import FileEventBroker
from eventstore.cli import main
from eventstore.errors import BrokerError, ConfigError
from eventstore.export import ExportFailed, export_events, sorted_keys
from eventstore.stores.base import TrackerStore
from eventstore.stores.memory import InMemoryTrackerStore
from eventstore.testing import action, user
from tests.servers import free_port


def read_messages(path: Path) -> list[dict[str, Any]]:
    """What a plain consumer of the file broker sees: one JSON body per line."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def fill(store: TrackerStore, sid: str, n: int, t0: float = 1_700_000_000.0) -> None:
    store.append(sid, [action(f"a{i}", ts=t0 + i) for i in range(n)])


class FlakyFileBroker(FileEventBroker):
    """A file broker whose ``publish_many`` fails once ``fail_after`` messages went out.

    Used as a custom broker class (``type: tests.export.test_export.FlakyFileBroker``).
    """

    Config = None  # keys go to __init__ as they are

    def __init__(self, path: str, fail_after: int = 10**9, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.fail_after = fail_after
        self.sent = 0

    def publish_many(self, messages: Any) -> None:
        batch = list(messages)
        if self.sent + len(batch) > self.fail_after:
            raise BrokerError("broker went away")
        super().publish_many(batch)
        self.sent += len(batch)


def by_conversation(messages: list[dict[str, Any]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for m in messages:
        out.setdefault(m["sender_id"], []).append(m["seq"])
    return out


# -- the library function ----------------------------------------------------------------
def test_every_event_reaches_the_broker_once_in_order_with_rasa_body(tmp_path: Path) -> None:
    store = InMemoryTrackerStore()
    fill(store, "bob", 3)
    store.append("alice", [user("hi", ts=1_700_000_000.5), action("utter_greet", ts=1.7e9 + 1)])
    out = tmp_path / "events.log"
    with FileEventBroker(out) as broker:
        summary = export_events(store, broker)
    messages = read_messages(out)
    assert summary.conversations == 2
    assert summary.events == 5
    # sorted conversation order, seq order inside each
    assert [(m["sender_id"], m["seq"]) for m in messages] == [
        ("alice", 1), ("alice", 2), ("bob", 1), ("bob", 2), ("bob", 3),
    ]  # fmt: skip
    first = messages[0]
    assert first["event"] == "user" and first["text"] == "hi"
    assert first["parse_data"]["intent"]["name"] == "greet"
    assert next(iter(first)) == "sender_id"
    assert isinstance(first["position"], int)
    assert messages[1]["name"] == "utter_greet"


def test_time_window_is_min_inclusive_max_exclusive_and_offset_touches_only_the_copy(
    tmp_path: Path,
) -> None:
    store = InMemoryTrackerStore()
    fill(store, "c1", 10, t0=100.0)  # timestamps 100..109
    out = tmp_path / "events.log"
    with FileEventBroker(out) as broker:
        summary = export_events(
            store, broker, minimum_timestamp=102, maximum_timestamp=105, offset_seconds=1000
        )
    messages = read_messages(out)
    assert [m["seq"] for m in messages] == [3, 4, 5]
    assert [m["timestamp"] for m in messages] == [1102.0, 1103.0, 1104.0]
    assert summary.events == 3
    assert [e["timestamp"] for e in store.read("c1")] == [100.0 + i for i in range(10)]


def test_maximum_below_minimum_is_refused_before_anything_is_published(tmp_path: Path) -> None:
    store = InMemoryTrackerStore()
    fill(store, "c1", 2)
    out = tmp_path / "events.log"
    with FileEventBroker(out) as broker, pytest.raises(ConfigError, match="maximum-timestamp"):
        export_events(store, broker, minimum_timestamp=5, maximum_timestamp=4)
    assert read_messages(out) == []


def test_requested_ids_intersect_the_store_and_missing_ones_are_reported(tmp_path: Path) -> None:
    store = InMemoryTrackerStore()
    fill(store, "a", 2)
    fill(store, "b", 2)
    out = tmp_path / "events.log"
    with FileEventBroker(out) as broker:
        summary = export_events(store, broker, conversation_ids=["b", "ghost"])
        with pytest.raises(ConfigError, match="none of the requested conversations"):
            export_events(store, broker, conversation_ids=["ghost", "phantom"])
    assert summary.missing_ids == ["ghost"]
    assert by_conversation(read_messages(out)) == {"b": [1, 2]}


def test_an_empty_store_is_an_error(tmp_path: Path) -> None:
    with FileEventBroker(tmp_path / "x.log") as broker, pytest.raises(ConfigError, match="no conv"):
        export_events(InMemoryTrackerStore(), broker)


def test_failure_gives_a_resume_point_and_resuming_completes_without_duplicates(
    tmp_path: Path,
) -> None:
    store = InMemoryTrackerStore()
    for i in range(6):
        fill(store, f"conv-{i}", 7)
    out = tmp_path / "events.log"
    flaky = FlakyFileBroker(str(out), fail_after=20)
    with pytest.raises(ExportFailed) as info:
        export_events(store, flaky, publish_batch=5)
    flaky.close()
    point = info.value.resume
    assert point is not None
    first = read_messages(out)
    assert len(first) == 20  # four confirmed batches of five
    assert (first[-1]["sender_id"], first[-1]["seq"]) == (point.sender_id, point.seq)
    with FileEventBroker(out) as broker:
        export_events(store, broker, resume=point, publish_batch=5)
    messages = read_messages(out)
    keys = [(m["sender_id"], m["seq"]) for m in messages]
    assert len(keys) == len(set(keys)) == 42
    assert by_conversation(messages) == {f"conv-{i}": list(range(1, 8)) for i in range(6)}


def test_sorted_keys_pages_through_many_ids_with_a_small_batch() -> None:
    store = InMemoryTrackerStore()
    ids = [f"id-{i:03d}" for i in range(25)]
    for sid in reversed(ids):
        fill(store, sid, 1)
    assert list(sorted_keys(store, batch=4)) == ids
    assert list(sorted_keys(store, "id-010", batch=4, inclusive=True)) == ids[10:]
    assert list(sorted_keys(store, "id-010", batch=4)) == ids[11:]


# -- the command line --------------------------------------------------------------------
def write_endpoints(path: Path, store: dict[str, Any] | None, broker: dict[str, Any] | None) -> str:
    import yaml

    data = {}
    if store is not None:
        data["tracker_store"] = store
    if broker is not None:
        data["event_broker"] = broker
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


@pytest.fixture
def redis_store_section(redis_url: str, redis_prefix: str) -> dict[str, Any]:
    return {"type": "redis", "url": redis_url, "key_prefix": redis_prefix}


@pytest.fixture
def redis_store(redis_store_section: dict[str, Any]) -> Any:
    from eventstore.factory import create_tracker_store

    store = create_tracker_store(redis_store_section)
    yield store
    store.close()


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_exports_from_redis_to_a_file_and_prints_a_summary(
    tmp_path: Path, redis_store: Any, redis_store_section: dict[str, Any], capsys: Any
) -> None:
    for i in range(3):
        fill(redis_store, f"u{i}", 4, t0=1000.0)
    out = tmp_path / "out.log"
    endpoints = write_endpoints(
        tmp_path / "e.yml", redis_store_section, {"type": "file", "path": str(out)}
    )
    args = ["--minimum-timestamp", "1001", "--maximum-timestamp", "1002.5"]
    code, stdout, _ = run(
        ["export", "--endpoints", endpoints, *args, "--offset-timestamps-by-seconds", "-1000"],
        capsys,
    )
    assert code == 0
    assert "exported 6 events of 3 conversations" in stdout
    messages = read_messages(out)
    assert by_conversation(messages) == {f"u{i}": [2, 3] for i in range(3)}
    assert {m["timestamp"] for m in messages} == {1.0, 2.0}
    assert [e["timestamp"] for e in redis_store.read("u0")] == [1000.0, 1001.0, 1002.0, 1003.0]


@pytest.mark.parametrize(
    ("store", "broker", "args", "message"),
    [
        (False, True, [], "has no tracker_store section"),
        (True, False, [], "has no event_broker section"),
        (True, True, ["--minimum-timestamp", "5", "--maximum-timestamp", "4"], "must not be"),
        (True, True, ["--minimum-timestamp", "soon"], "must be epoch seconds or an ISO 8601"),
        (True, True, ["--conversation-ids", "ghost1,ghost2"], "none of the requested"),
        (True, True, ["--resume-after-seq", "3"], "needs --resume-conversation"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_1(
    tmp_path: Path,
    redis_store: Any,
    redis_store_section: dict[str, Any],
    capsys: Any,
    store: bool,
    broker: bool,
    args: list[str],
    message: str,
) -> None:
    fill(redis_store, "present", 2)
    out = tmp_path / "out.log"
    endpoints = write_endpoints(
        tmp_path / "e.yml",
        redis_store_section if store else None,
        {"type": "file", "path": str(out)} if broker else None,
    )
    code, _, err = run(["export", "--endpoints", endpoints, *args], capsys)
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert read_messages(out) == []


def test_cli_warns_about_unknown_ids_and_exports_the_others(
    tmp_path: Path,
    redis_store: Any,
    redis_store_section: dict[str, Any],
    capsys: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fill(redis_store, "known", 2)
    fill(redis_store, "other", 2)
    out = tmp_path / "out.log"
    endpoints = write_endpoints(
        tmp_path / "e.yml", redis_store_section, {"type": "file", "path": str(out)}
    )
    code, printed, err = run(
        ["export", "--endpoints", endpoints, "--conversation-ids", "known,ghost"], capsys
    )
    assert code == 0
    assert "warning: conversation 'ghost' is not in the tracker store" in err
    assert err.count("ghost") == 1 and "ghost" not in caplog.text  # one warning, not two
    assert "exported 2 events of 1 conversation in " in printed
    assert by_conversation(read_messages(out)) == {"known": [1, 2]}


def test_cli_failure_prints_a_resume_command_that_completes_the_export(
    tmp_path: Path, redis_store: Any, redis_store_section: dict[str, Any], capsys: Any
) -> None:
    # 3 conversations of 400 events: the flaky broker dies inside the second one
    for name in ("c-a", "c-b", "c-c"):
        fill(redis_store, name, 400)
    out = tmp_path / "out.log"
    flaky = {
        "type": "tests.export.test_export.FlakyFileBroker",
        "path": str(out),
        "fail_after": 600,
    }
    endpoints = write_endpoints(tmp_path / "e.yml", redis_store_section, flaky)
    code, _, err = run(["export", "--endpoints", endpoints], capsys)
    assert code == 1
    assert "broker went away" in err
    line = next(x for x in err.splitlines() if "resume with:" in x)
    command = shlex.split(line.split("resume with:", 1)[1])
    assert command[:2] == ["eventstore", "export"]
    assert command[command.index("--resume-conversation") + 1] == "c-b"
    seq = int(command[command.index("--resume-after-seq") + 1])
    assert 0 < seq < 400  # per-conversation point, not a timestamp
    assert len(read_messages(out)) == 400 + seq

    write_endpoints(tmp_path / "e.yml", redis_store_section, {"type": "file", "path": str(out)})
    code, _, _ = run(command[1:], capsys)
    assert code == 0
    messages = read_messages(out)
    keys = [(m["sender_id"], m["seq"]) for m in messages]
    assert len(keys) == len(set(keys)) == 1200
    assert by_conversation(messages) == {n: list(range(1, 401)) for n in ("c-a", "c-b", "c-c")}


def test_cli_unreachable_broker_is_one_line_and_nothing_is_read(
    tmp_path: Path, redis_store: Any, redis_store_section: dict[str, Any], capsys: Any
) -> None:
    fill(redis_store, "c1", 3)
    port = free_port()  # a port nothing listens on
    broker = {"type": "pika", "url": "127.0.0.1", "port": port, "connection_attempts": 1,
              "retry_delay_in_seconds": 0, "queues": ["never-created"]}  # fmt: skip
    endpoints = write_endpoints(tmp_path / "e.yml", redis_store_section, broker)
    code, _, err = run(["export", "--endpoints", endpoints], capsys)
    assert code == 1
    assert f"PikaEventBroker(host='127.0.0.1', port={port}" in err
    assert "is not reachable; nothing was exported" in err
    assert len(err.strip().splitlines()) == 1


def test_sorted_keys_survives_a_store_listing_ids_twice() -> None:
    class Repeating(InMemoryTrackerStore):
        def keys(self) -> Any:
            listed = super().keys()
            for sid in listed:
                yield sid
                yield sid

    store = Repeating()
    ids = [f"r{i:02d}" for i in range(9)]
    for sid in ids:
        fill(store, sid, 1)
    assert list(sorted_keys(store, batch=3)) == ids


def test_resuming_a_finished_export_publishes_nothing(tmp_path: Path) -> None:
    store = InMemoryTrackerStore()
    fill(store, "a", 2)
    out = tmp_path / "events.log"
    with FileEventBroker(out) as broker:
        done = export_events(store, broker)
        assert done.last_confirmed is not None
        again = export_events(store, broker, resume=done.last_confirmed)
    assert (again.events, again.conversations) == (0, 1)
    assert len(read_messages(out)) == 2
