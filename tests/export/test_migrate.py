"""``eventstore migrate`` between real stores: copy, verify, re-run, complete, conflicts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventstore.cli import main
from eventstore.factory import create_tracker_store
from eventstore.migrate import canonical_json, checksum, copy_conversation, migrate
from eventstore.stores.base import EventQuery, TrackerStore
from eventstore.stores.memory import InMemoryTrackerStore
from eventstore.testing import action, bot, session_start, user


def conversation(i: int, turns: int = 3) -> list[dict[str, Any]]:
    """A realistic conversation: session start, then user/action/bot/slot turns."""
    t0 = 1_700_000_000.0 + i * 100
    events = session_start(ts=t0)
    for k in range(turns):
        events += [
            user(f"msg {i}.{k} grüße", ts=t0 + k + 0.25),
            action("utter_reply", ts=t0 + k + 0.5),
            {**bot(f"reply {k}"), "timestamp": t0 + k + 0.75},
            {"event": "slot", "name": "n", "value": k, "timestamp": t0 + k + 0.8},
        ]
    return events


def write(path: Path, section: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({"tracker_store": section}), encoding="utf-8")
    return str(path)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def same_events(a: TrackerStore, b: TrackerStore, sid: str) -> None:
    assert b.read(sid) == a.read(sid)
    assert [e.seq for e in b.query(EventQuery(sender_id=sid))] == list(range(1, a.version(sid) + 1))


# -- checksums and the per-conversation rules (in-memory stores) ---------------------------
def test_checksum_is_canonical_over_key_order_and_integral_floats() -> None:
    a = {"event": "slot", "name": "n", "value": 1.0, "timestamp": 5.5}
    b = {"timestamp": 5.5, "value": 1, "name": "n", "event": "slot"}
    assert canonical_json(a) == canonical_json(b)
    assert checksum([a]) == checksum([b])
    assert checksum([a]) != checksum([{**a, "value": 2}])
    assert checksum([a, a]) != checksum([a])


def test_copy_rules_skip_complete_and_conflict() -> None:
    source, target = InMemoryTrackerStore(), InMemoryTrackerStore()
    events = conversation(1)
    source.append("s", events)
    assert copy_conversation(source, target, "s").outcome == "copied"
    assert copy_conversation(source, target, "s").outcome == "skipped"
    source.append("s", [action("late")])
    result = copy_conversation(source, target, "s")
    assert (result.outcome, result.copied) == ("completed", 1)
    target.append("s", [action("only-in-target")])
    assert copy_conversation(source, target, "s").outcome == "conflict"
    other = InMemoryTrackerStore()
    other.append("s", [action("different")])
    before = other.read("s")
    result = copy_conversation(source, other, "s")
    assert result.outcome == "conflict"
    assert "differ" in result.detail
    assert other.read("s") == before


def test_long_conversations_go_in_checked_chunks_and_a_concurrent_writer_is_a_conflict() -> None:
    source = InMemoryTrackerStore()
    source.append("long", [action(f"a{i}", ts=float(i + 1)) for i in range(10)])
    target = InMemoryTrackerStore()
    result = copy_conversation(source, target, "long", chunk=3)
    assert (result.outcome, result.copied) == ("copied", 10)
    assert target.read("long") == source.read("long")

    class Busy(InMemoryTrackerStore):
        """A target another writer appends to right after the first chunk lands."""

        def append(self, sender_id: str, events: Any, expected_version: Any = None) -> int:
            version = super().append(sender_id, events, expected_version)
            if version == 3:
                super().append(sender_id, [action("someone_else")])
            return version

    busy = Busy()
    result = copy_conversation(source, busy, "long", chunk=3)
    assert (result.outcome, result.copied) == ("conflict", 3)
    assert "changed while copying" in result.detail
    assert [e["name"] for e in busy.read("long")] == ["a0", "a1", "a2", "someone_else"]


def test_a_bad_event_in_one_conversation_fails_it_and_the_rest_is_copied() -> None:
    class Raw(InMemoryTrackerStore):
        """A source whose stored data predates validation (as a Rasa database may)."""

    source, target = Raw(), InMemoryTrackerStore()
    source.append("good", conversation(1))
    source.append("bad", [action("x")])
    source._logs["bad"][0].data["event"] = "no_such_event"  # corrupted source row
    report = migrate(source, target, verify=True)
    assert not report.ok
    assert [f.sender_id for f in report.failures] == ["bad"]
    assert "no_such_event" in report.failures[0].detail
    assert target.read("good") == source.read("good")
    assert not target.exists("bad")


# -- Redis -> MongoDB through the CLI ----------------------------------------------------
@pytest.fixture
def redis_section(redis_url: str, redis_prefix: str) -> dict[str, Any]:
    return {"type": "redis", "url": redis_url, "key_prefix": redis_prefix}


@pytest.fixture
def mongo_section(mongo_url: str, mongo_collection: str) -> dict[str, Any]:
    return {
        "type": "mongod",
        "url": mongo_url,
        "db": "migrate_test",
        "collection": mongo_collection,
    }


@pytest.fixture
def redis_store(redis_section: dict[str, Any]) -> Iterator[TrackerStore]:
    store = create_tracker_store(redis_section)
    yield store
    store.close()


@pytest.fixture
def mongo_store(mongo_section: dict[str, Any]) -> Iterator[TrackerStore]:
    store = create_tracker_store(mongo_section)
    yield store
    store.close()


def test_redis_to_mongo_verified_rerun_copies_nothing_and_partial_copy_completes(
    tmp_path: Path,
    redis_store: TrackerStore,
    mongo_store: TrackerStore,
    redis_section: dict[str, Any],
    mongo_section: dict[str, Any],
    capsys: Any,
) -> None:
    ids = [f"user-{i}" for i in range(12)]
    for i, sid in enumerate(ids):
        redis_store.append(sid, conversation(i, turns=1 + i % 4))
    # a previous, interrupted run copied part of one conversation
    mongo_store.append("user-5", redis_store.read("user-5")[:4])
    src = write(tmp_path / "redis.yml", redis_section)
    dst = write(tmp_path / "mongo.yml", mongo_section)

    code, out, err = run(["migrate", "--from", src, "--to", dst, "--verify"], capsys)
    assert code == 0, err
    assert "12 conversations: 11 copied, 1 completed, 0 already there, 0 conflicts" in out
    assert "verified 12 conversations: 0 mismatches" in out
    for sid in ids:
        same_events(redis_store, mongo_store, sid)
    # the store's own reads agree too: same tracker state on both sides
    assert (
        mongo_store.retrieve("user-7").current_state()
        == redis_store.retrieve(  # type: ignore[union-attr]
            "user-7"
        ).current_state()
    )  # type: ignore[union-attr]

    code, out, _ = run(["migrate", "--from", src, "--to", dst, "--verify"], capsys)
    assert code == 0
    assert "0 copied, 0 completed, 12 already there" in out
    assert "0 events copied" in out
    assert sum(mongo_store.version(sid) for sid in ids) == sum(
        redis_store.version(sid) for sid in ids
    )

    # new events on the source are copied by a re-run, nothing else
    redis_store.append("user-3", [action("action_listen", ts=1.8e9)])
    code, out, _ = run(
        ["migrate", "--from", src, "--to", dst, "--conversation-ids", "user-3,user-4"], capsys
    )
    assert code == 0
    assert "2 conversations: 0 copied, 1 completed, 1 already there" in out
    assert "1 event copied" in out
    same_events(redis_store, mongo_store, "user-3")


def test_conflicts_and_verify_mismatches_exit_non_zero_and_overwrite_nothing(
    tmp_path: Path,
    redis_store: TrackerStore,
    mongo_store: TrackerStore,
    redis_section: dict[str, Any],
    mongo_section: dict[str, Any],
    capsys: Any,
) -> None:
    redis_store.append("ok", conversation(1))
    redis_store.append("diverged", conversation(2))
    redis_store.append("same-length", [action("a", ts=1.0), action("b", ts=2.0)])
    mongo_store.append("diverged", [action("something_else", ts=3.0)])
    mongo_store.append("same-length", [action("a", ts=1.0), action("B!", ts=2.0)])
    src = write(tmp_path / "redis.yml", redis_section)
    dst = write(tmp_path / "mongo.yml", mongo_section)

    code, out, err = run(["migrate", "--from", src, "--to", dst], capsys)
    assert code == 1
    assert "conflict: 'diverged'" in err
    assert mongo_store.read("diverged")[0]["name"] == "something_else"
    assert mongo_store.version("diverged") == 1
    same_events(redis_store, mongo_store, "ok")
    assert "'same-length'" not in err  # equal versions are skipped without --verify

    code, out, err = run(["migrate", "--from", src, "--to", dst, "--verify"], capsys)
    assert code == 1
    assert "mismatch: 'same-length': source 2 events" in err
    assert "mismatch: 'diverged'" in err
    assert "mismatch: 'ok'" not in err
    assert "verified 3 conversations: 2 mismatches" in out


def test_in_memory_source_or_missing_section_is_refused_in_one_line(
    tmp_path: Path, mongo_section: dict[str, Any], capsys: Any
) -> None:
    dst = write(tmp_path / "mongo.yml", mongo_section)
    memory = write(tmp_path / "memory.yml", {"type": "in_memory"})
    empty = tmp_path / "empty.yml"
    empty.write_text("event_broker:\n  type: file\n", encoding="utf-8")
    for source, message in (
        (None, "needs both --from A.yml and --to B.yml"),
        (memory, "an in-memory store cannot be a migration source"),
        (str(empty), "has no tracker_store section"),
        (str(tmp_path / "nope.yml"), "cannot read endpoints file"),
    ):
        args = ["--to", dst] if source is None else ["--from", source, "--to", dst]
        code, _, err = run(["migrate", *args], capsys)
        assert code == 1
        assert message in err
        assert len(err.strip().splitlines()) == 1


# -- SQLite -> PostgreSQL ------------------------------------------------------------------
def test_sqlite_to_postgresql_verified_rerun_and_partial_copy(
    tmp_path: Path, postgres_url: str, capsys: Any
) -> None:
    sqlite = {"type": "sql", "dialect": "sqlite", "db": str(tmp_path / "rasa.db")}
    postgres = {"type": "sql", "url": postgres_url}
    ids = [f"pg-user-{i}" for i in range(10)]
    with create_tracker_store(sqlite) as source, create_tracker_store(postgres) as target:
        for i, sid in enumerate(ids):
            source.append(sid, conversation(i, turns=2 + i % 3))
        target.append("pg-user-4", source.read("pg-user-4")[:7])  # an interrupted copy
        src = write(tmp_path / "sqlite.yml", sqlite)
        dst = write(tmp_path / "pg.yml", postgres)

        code, out, err = run(["migrate", "--from", src, "--to", dst, "--verify"], capsys)
        assert code == 0, err
        assert "10 conversations: 9 copied, 1 completed, 0 already there" in out
        assert "verified 10 conversations: 0 mismatches" in out
        for sid in ids:
            same_events(source, target, sid)

        code, out, _ = run(["migrate", "--from", src, "--to", dst, "--verify"], capsys)
        assert code == 0
        assert "0 copied, 0 completed, 10 already there" in out
        assert sum(target.version(sid) for sid in ids) == sum(source.version(s) for s in ids)


# -- into DynamoDB, and MongoDB -> SQLite ----------------------------------------------------
def test_redis_to_dynamodb_verified_and_idempotent(
    tmp_path: Path, redis_store: TrackerStore, redis_section: dict[str, Any],
    dynamo_server: Any, capsys: Any,
) -> None:  # fmt: skip
    for i in range(4):
        redis_store.append(f"d-{i}", conversation(i, turns=2))
    dynamo = {"type": "dynamo", **dynamo_server.store_config()}
    src = write(tmp_path / "redis.yml", redis_section)
    dst = write(tmp_path / "dynamo.yml", dynamo)
    code, out, err = run(["migrate", "--from", src, "--to", dst, "--verify"], capsys)
    assert code == 0, err
    assert "4 conversations: 4 copied" in out
    code, out, _ = run(["migrate", "--from", src, "--to", dst, "--verify"], capsys)
    assert code == 0
    assert "4 already there" in out
    with create_tracker_store(dynamo) as target:
        for i in range(4):
            same_events(redis_store, target, f"d-{i}")


def test_mongo_to_sqlite_with_selected_ids(
    tmp_path: Path, mongo_store: TrackerStore, mongo_section: dict[str, Any], capsys: Any
) -> None:
    for i in range(3):
        mongo_store.append(f"m-{i}", conversation(i))
    sqlite = {"type": "sql", "dialect": "sqlite", "db": str(tmp_path / "t.db")}
    src = write(tmp_path / "mongo.yml", mongo_section)
    dst = write(tmp_path / "sqlite.yml", sqlite)
    code, out, err = run(
        ["migrate", "--from", src, "--to", dst, "--conversation-ids", "m-0,m-2,ghost"], capsys
    )
    assert code == 0, err
    assert "warning: conversation 'ghost' is not in the source store" in err
    assert "2 conversations: 2 copied" in out
    with create_tracker_store(sqlite) as target:
        same_events(mongo_store, target, "m-0")
        same_events(mongo_store, target, "m-2")
        assert not target.exists("m-1")


def test_target_outage_stops_the_run_and_a_rerun_completes_it(
    redis_url: str, redis_prefix: str, mongo_store: TrackerStore
) -> None:
    from urllib.parse import urlsplit

    from eventstore.errors import BackendUnavailable
    from tests.proxy import TcpProxy

    for i in range(8):
        mongo_store.append(f"o-{i}", conversation(i))
    server = urlsplit(redis_url)
    with TcpProxy(server.hostname or "127.0.0.1", server.port or 6379) as proxy:
        section = {
            "type": "redis",
            "url": f"redis://127.0.0.1:{proxy.port}/0",
            "key_prefix": redis_prefix,
            "socket_timeout": 2,
        }
        with create_tracker_store(section) as target:

            def cut_after_third(result: Any) -> None:
                if result.sender_id == "o-2":
                    proxy.cut()

            with pytest.raises(BackendUnavailable):
                migrate(mongo_store, target, on_conversation=cut_after_third)
            proxy.restore()
            assert [target.exists(f"o-{i}") for i in range(8)] == [True] * 3 + [False] * 5
            report = migrate(mongo_store, target, verify=True)
            assert report.ok
            assert (report.skipped, report.copied) == (3, 5)
            for i in range(8):
                same_events(mongo_store, target, f"o-{i}")


def test_in_memory_target_is_refused(
    tmp_path: Path, mongo_section: dict[str, Any], capsys: Any
) -> None:
    src = write(tmp_path / "mongo.yml", mongo_section)
    memory = write(tmp_path / "memory.yml", {"type": "in_memory"})
    code, _, err = run(["migrate", "--from", src, "--to", memory], capsys)
    assert code == 1
    assert "an in-memory store cannot be a migration target" in err
