"""Databases in the layout Rasa itself wrote (one blob per conversation), read and migrated.

The Rasa data is written here with the plain client libraries in Rasa's exact format
(rasa-compat.md §3), then moved into eventstore stores and read back event for event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventstore.cli import main
from eventstore.errors import ConfigError
from eventstore.factory import create_tracker_store, open_store
from eventstore.stores.base import EventQuery, TrackerStore
from eventstore.stores.dynamo.rasa import from_dynamo
from eventstore.stores.redis.rasa import RasaRedisReader
from eventstore.testing import action, bot, session_start, user
from eventstore.tracker import Tracker


def rasa_events(i: int) -> list[dict[str, Any]]:
    """Events as Rasa 3.6 logs them, including metadata, entities and a slot."""
    t0 = 1_700_000_000.125 + i * 10
    events = session_start(ts=t0)
    hello = user(f"hi from {i}", ts=t0 + 1, intent="greet")
    hello["parse_data"]["entities"] = [{"entity": "city", "value": "Berlin", "start": 0, "end": 2}]
    hello["metadata"] = {"model_id": "m1", "assistant_id": "bot"}
    events += [
        hello,
        {"event": "action", "timestamp": t0 + 2, "name": "utter_greet", "policy": "RulePolicy",
         "confidence": 1.0, "action_text": None, "hide_rule_turn": False},
        {**bot("Hello!"), "timestamp": t0 + 3},
        {"event": "slot", "timestamp": t0 + 4, "name": "city", "value": "Berlin"},
        action("action_listen", ts=t0 + 5),
    ]  # fmt: skip
    return events


def write_yaml(path: Path, section: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({"tracker_store": section}), encoding="utf-8")
    return str(path)


def migrate_cli(args: list[str], capsys: Any) -> tuple[int, str, str]:
    code = main(["migrate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_copied(target: TrackerStore, originals: dict[str, list[dict[str, Any]]]) -> None:
    for sid, events in originals.items():
        assert target.read(sid) == events, sid
        assert [e.seq for e in target.query(EventQuery(sender_id=sid))] == list(
            range(1, len(events) + 1)
        )
        tracker = target.retrieve_full_tracker(sid)
        assert tracker is not None
        expected = Tracker.from_events(sid, events).current_state()
        assert tracker.current_state() == expected


@pytest.fixture
def target_section(redis_url: str) -> Iterator[dict[str, Any]]:
    from tests.servers.redis import drop_prefix

    prefix = f"t{uuid.uuid4().hex[:16]}"
    yield {"type": "redis", "url": redis_url, "key_prefix": prefix}
    drop_prefix(redis_url, prefix)


@pytest.fixture
def target(target_section: dict[str, Any]) -> Iterator[TrackerStore]:
    store = create_tracker_store(target_section)
    yield store
    store.close()


# -- Redis: tracker:<id> blobs --------------------------------------------------------------
@pytest.fixture
def rasa_redis(redis_url: str, redis_prefix: str) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Five conversations written as Rasa's RedisTrackerStore does, under ``P:tracker:``."""
    import redis

    client = redis.Redis.from_url(redis_url)
    data = {f"rasa-user-{i}": rasa_events(i) for i in range(5)}
    data["ünïcode id"] = rasa_events(9)
    for sid, events in data.items():
        client.set(f"{redis_prefix}:tracker:{sid}", json.dumps({"events": events, "name": sid}))
    client.set(f"{redis_prefix}:lock:rasa-user-0", b'{"conversation_id":"x","tickets":[]}')
    client.close()
    yield data


def test_rasa_redis_blobs_migrate_event_for_event(
    tmp_path: Path,
    rasa_redis: dict[str, list[dict[str, Any]]],
    redis_url: str,
    redis_prefix: str,
    target: TrackerStore,
    target_section: dict[str, Any],
    capsys: Any,
) -> None:
    rasa = {"type": "redis", "layout": "rasa", "url": redis_url, "key_prefix": redis_prefix}
    src = write_yaml(tmp_path / "rasa.yml", rasa)
    dst = write_yaml(tmp_path / "es.yml", target_section)
    code, out, err = migrate_cli(["--from", src, "--to", dst, "--verify"], capsys)
    assert code == 0, err
    assert "6 conversations: 6 copied" in out
    assert "0 mismatches" in out
    check_copied(target, rasa_redis)
    # the Rasa data is left as it was, and a re-run finds everything there
    code, out, _ = migrate_cli(["--from", src, "--to", dst], capsys)
    assert code == 0
    assert "6 already there" in out


def test_rasa_redis_reader_lists_only_tracker_keys_and_refuses_writes(
    rasa_redis: dict[str, list[dict[str, Any]]], redis_url: str, redis_prefix: str
) -> None:
    reader = open_store(
        {"type": "redis", "layout": "rasa", "url": redis_url, "key_prefix": redis_prefix}
    )
    assert isinstance(reader, RasaRedisReader)
    assert sorted(reader.keys()) == sorted(rasa_redis)
    assert reader.version("rasa-user-2") == len(rasa_redis["rasa-user-2"])
    assert reader.read("rasa-user-2", after=3) == rasa_redis["rasa-user-2"][3:]
    assert reader.version("nobody") == 0
    with pytest.raises(ConfigError, match="read-only"):
        reader.append("rasa-user-2", [action("x")])
    reader.close()


def test_export_reads_a_rasa_layout_database_directly(
    tmp_path: Path, rasa_redis: dict[str, list[dict[str, Any]]], redis_url: str,
    redis_prefix: str, capsys: Any,
) -> None:  # fmt: skip
    out = tmp_path / "out.log"
    endpoints = tmp_path / "e.yml"
    endpoints.write_text(
        yaml.safe_dump(
            {
                "tracker_store": {"type": "redis", "layout": "rasa", "url": redis_url,
                                  "key_prefix": redis_prefix},
                "event_broker": {"type": "file", "path": str(out)},
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    assert main(["export", "--endpoints", str(endpoints)]) == 0
    messages = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    got: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        body = dict(m)
        sid, seq = body.pop("sender_id"), body.pop("seq")
        assert seq == len(got.get(sid, [])) + 1
        got.setdefault(sid, []).append(body)
    assert got == rasa_redis


def test_events_reads_a_rasa_layout_database_as_export_does(
    tmp_path: Path, rasa_redis: dict[str, list[dict[str, Any]]], redis_url: str,
    redis_prefix: str, capsys: Any,
) -> None:  # fmt: skip
    endpoints = tmp_path / "e.yml"
    section = {"type": "redis", "layout": "rasa", "url": redis_url, "key_prefix": redis_prefix}
    endpoints.write_text(yaml.safe_dump({"tracker_store": section}), encoding="utf-8")
    sid = sorted(rasa_redis)[0]
    capsys.readouterr()
    assert main(["events", "--endpoints", str(endpoints), "--sender-id", sid]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["seq"] for m in printed] == list(range(1, len(rasa_redis[sid]) + 1))
    assert [{k: v for k, v in m.items() if k not in ("sender_id", "seq")} for m in printed] == (
        rasa_redis[sid]
    )


# -- MongoDB: one document per conversation -------------------------------------------------
@pytest.fixture
def rasa_mongo(mongo_url: str) -> Iterator[tuple[str, dict[str, list[dict[str, Any]]]]]:
    """Conversations as Rasa 3.6's MongoTrackerStore stores them: state + ``events`` array."""
    import pymongo

    db_name = f"rasa_{uuid.uuid4().hex[:10]}"
    client: Any = pymongo.MongoClient(mongo_url)
    data = {f"mongo-user-{i}": rasa_events(i) for i in range(4)}
    docs = []
    for sid, events in data.items():
        state = Tracker.from_events(sid, events).current_state()
        state.pop("events", None)
        docs.append({**state, "sender_id": sid, "events": events})
    # Rasa 1.x wrote numeric ids as ints; Rasa 3 still finds them by the digit string
    legacy = rasa_events(7)
    docs.append({"sender_id": 12345, "events": legacy, "paused": False})
    data["12345"] = legacy
    client[db_name]["conversations"].insert_many([dict(d) for d in docs])
    yield db_name, data
    client.drop_database(db_name)
    client.close()


def test_rasa_mongo_documents_migrate_event_for_event(
    tmp_path: Path,
    mongo_url: str,
    rasa_mongo: tuple[str, dict[str, list[dict[str, Any]]]],
    target: TrackerStore,
    target_section: dict[str, Any],
    capsys: Any,
) -> None:
    db_name, data = rasa_mongo
    rasa = {"type": "mongod", "layout": "rasa", "url": mongo_url, "db": db_name}
    src = write_yaml(tmp_path / "rasa.yml", rasa)
    dst = write_yaml(tmp_path / "es.yml", target_section)
    code, out, err = migrate_cli(["--from", src, "--to", dst, "--verify"], capsys)
    assert code == 0, err
    assert "5 conversations: 5 copied" in out
    assert "verified 5 conversations: 0 mismatches" in out
    check_copied(target, data)


def test_rasa_mongo_into_an_eventstore_mongo_store(
    tmp_path: Path,
    mongo_url: str,
    mongo_collection: str,
    rasa_mongo: tuple[str, dict[str, list[dict[str, Any]]]],
    capsys: Any,
) -> None:
    db_name, data = rasa_mongo
    native = {"type": "mongod", "url": mongo_url, "db": db_name, "collection": mongo_collection}
    src = write_yaml(
        tmp_path / "rasa.yml", {**native, "layout": "rasa", "collection": "conversations"}
    )
    dst = write_yaml(tmp_path / "es.yml", native)
    code, _, err = migrate_cli(["--from", src, "--to", dst, "--verify"], capsys)
    assert code == 0, err
    with create_tracker_store(native) as store:
        check_copied(store, data)


# -- DynamoDB: one item per conversation ----------------------------------------------------
def to_dynamo(value: Any) -> Any:
    """Rasa's conversion before ``put_item``: floats become Decimals rounded to 9 places."""
    return json.loads(json.dumps(value), parse_float=lambda x: round(Decimal(x), 9))


def test_rasa_dynamo_items_migrate_with_decimals_turned_back_into_numbers(
    tmp_path: Path,
    dynamo_server: Any,
    target: TrackerStore,
    target_section: dict[str, Any],
    capsys: Any,
) -> None:
    import boto3

    table_name = f"rasa-states-{uuid.uuid4().hex[:10]}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    resource = boto3.resource(
        "dynamodb", endpoint_url=dynamo_server.url, region_name="us-east-1", **creds
    )
    table = resource.create_table(  # as Rasa creates it: sender_id HASH, provisioned 5/5
        TableName=table_name,
        KeySchema=[{"AttributeName": "sender_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "sender_id", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )
    table.wait_until_exists()
    data = {f"dyn-user-{i}": rasa_events(i) for i in range(3)}
    for sid, events in data.items():
        table.put_item(Item=to_dynamo({"sender_id": sid, "name": sid, "events": events}))
    rasa = {
        "type": "dynamo",
        "layout": "rasa",
        "table_name": table_name,
        "region": "us-east-1",
        "endpoint_url": dynamo_server.url,
        **creds,
    }
    src = write_yaml(tmp_path / "rasa.yml", rasa)
    dst = write_yaml(tmp_path / "es.yml", target_section)
    try:
        code, out, err = migrate_cli(["--from", src, "--to", dst, "--verify"], capsys)
        assert code == 0, err
        assert "3 conversations: 3 copied" in out
        check_copied(target, data)
        stamps = [e["timestamp"] for e in target.read("dyn-user-1")]
        assert all(type(s) is float for s in stamps)
    finally:
        table.delete()


def test_from_dynamo_turns_decimals_into_floats_and_integral_ones_into_ints() -> None:
    assert from_dynamo({"a": [Decimal("1.5"), Decimal("2")], "b": "x"}) == {"a": [1.5, 2], "b": "x"}
    assert type(from_dynamo(Decimal("0.1"))) is float


# -- configuration ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"type": "sql", "layout": "rasa"}, "eventstore db upgrade"),
        ({"type": "redis", "layout": "rasa1"}, "unknown layout"),
        ({"type": "in_memory", "layout": "rasa"}, "layout: rasa reads types"),
        ({"type": "redis", "layout": "rasa", "hots": "x"}, "unknown key 'hots'"),
        ({"type": "redis", "layout": "rasa", "key_prefix": "a:b"}, "alphanumeric"),
    ],
)
def test_bad_rasa_layout_sections_are_clear_errors(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_store(section)


def test_a_rasa_layout_reader_is_a_narrow_read_only_event_source(
    redis_url: str, redis_prefix: str
) -> None:
    reader = open_store(
        {"type": "redis", "layout": "rasa", "url": redis_url, "key_prefix": redis_prefix}
    )
    try:
        assert not isinstance(reader, TrackerStore)  # no store methods to refuse one by one
        assert not reader.has_positions and not reader.process_local
        assert list(reader.query(EventQuery(limit=0))) == []
        assert reader.version("nobody") == 0 and reader.read("nobody") == []
    finally:
        reader.close()


def test_a_command_that_writes_refuses_a_rasa_layout(tmp_path: Path) -> None:
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import create_from_endpoints

    path = tmp_path / "e.yml"
    section = {"type": "redis", "layout": "rasa", "url": "127.0.0.1"}
    path.write_text(yaml.safe_dump({"tracker_store": section}), encoding="utf-8")
    with pytest.raises(ConfigError, match="read-only"):
        create_from_endpoints(load_endpoints(path), "eventstore run")
