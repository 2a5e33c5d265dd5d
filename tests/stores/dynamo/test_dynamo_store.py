"""DynamoDB store beyond the contract: config, table creation, exact numbers, outbox, errors."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from brokers.base import EventBroker
from eventstore.errors import (
    BackendUnavailable,
    BrokerUnavailable,
    ConfigError,
    EventValidationError,
)
from eventstore.factory import create_tracker_store
from eventstore.relay import relay_of, with_broker
from eventstore.stores.base import EventQuery
from eventstore.stores.dynamo.store import DynamoConfig, DynamoTrackerStore
from eventstore.stores.memory import InMemoryTrackerStore
from eventstore.testing import action, new_id, turn, user
from tests.servers import free_port
from tests.servers.dynamo import DynamoServer, unique_table


@pytest.fixture
def store(dynamo_server: DynamoServer) -> Iterator[DynamoTrackerStore]:
    store = create_tracker_store({"type": "dynamo", **dynamo_server.store_config()})
    assert isinstance(store, DynamoTrackerStore)
    with store:
        yield store


def raw_item(server: DynamoServer, table: str, sender_id: str, seq: int) -> dict[str, Any]:
    key = {"sender_id": {"S": sender_id}, "seq": {"N": str(seq)}}
    item: dict[str, Any] = server.client().get_item(TableName=table, Key=key)["Item"]
    return item


# -- configuration ---------------------------------------------------------------------
def test_defaults_follow_rasa() -> None:
    config = DynamoConfig()
    assert config.tablename == "states"
    assert config.region == "us-east-1"
    assert config.endpoint_url is None


def test_rasa_table_name_spelling_is_accepted() -> None:
    assert DynamoConfig.model_validate({"table_name": "rasa-states"}).tablename == "rasa-states"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"tablenam": "x"}, "unknown key 'tablenam'; did you mean 'tablename'?"),
        ({"tablename": "ab"}, "key 'tablename'"),
        ({"tablename": "no spaces"}, "3-255 characters"),
        ({"endpoint_url": "localhost:8000"}, "endpoint_url must start with http"),
        ({"aws_access_key_id": "AKIA"}, "go together"),
        ({"read_timeout": 0}, "key 'read_timeout'"),
        ({"max_attempts": "many"}, "key 'max_attempts'"),
    ],
)
def test_bad_config_is_refused_naming_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_tracker_store({"type": "dynamo", **section})
    assert message in str(info.value)


def test_secrets_stay_out_of_reprs(dynamo_server: DynamoServer) -> None:
    config = dynamo_server.store_config(aws_secret_access_key="very-secret-key")
    settings = DynamoConfig.model_validate(config)
    assert "very-secret-key" not in repr(settings)
    with DynamoTrackerStore.from_settings(settings) as store:
        assert "very-secret-key" not in repr(store)


# -- the table -------------------------------------------------------------------------
def test_missing_table_is_created_on_first_use(dynamo_server: DynamoServer) -> None:
    table = unique_table("autocreate")
    client = dynamo_server.client()
    assert table not in client.list_tables()["TableNames"]
    store = DynamoTrackerStore.from_config(dynamo_server.store_config(table))
    assert table not in client.list_tables()["TableNames"]  # nothing happens before use
    sid = new_id()
    assert store.append(sid, turn(0)) == 4
    description = client.describe_table(TableName=table)["Table"]
    assert description["TableStatus"] == "ACTIVE"
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    keys = {k["AttributeName"]: k["KeyType"] for k in description["KeySchema"]}
    assert keys == {"sender_id": "HASH", "seq": "RANGE"}
    types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
    assert types["sender_id"] == "S" and types["seq"] == "N"
    assert {i["IndexName"] for i in description["GlobalSecondaryIndexes"]} == {
        "conversations",
        "outbox",
    }
    # a second store on the existing table uses it as it is
    with DynamoTrackerStore.from_config(dynamo_server.store_config(table)) as again:
        assert again.read(sid) == store.read(sid)
    store.close()


def test_missing_table_without_create_table_is_an_error(dynamo_server: DynamoServer) -> None:
    config = dynamo_server.store_config(create_table=False)
    with DynamoTrackerStore.from_config(config) as store, pytest.raises(BackendUnavailable) as info:
        store.version(new_id())
    assert config["tablename"] in str(info.value)
    assert "does not exist" in str(info.value)


def test_a_rasa_style_table_is_refused(dynamo_server: DynamoServer) -> None:
    table = unique_table("rasa")
    dynamo_server.client().create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "sender_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "sender_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with DynamoTrackerStore.from_config(dynamo_server.store_config(table)) as store:
        with pytest.raises(ConfigError) as info:
            store.append(new_id(), turn(0))
        assert "'sender_id' (S) and sort key 'seq' (N)" in str(info.value)


def test_keys_without_the_index_scan_meta_items(dynamo_server: DynamoServer) -> None:
    table = unique_table("noindex")
    dynamo_server.client().create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "sender_id", "KeyType": "HASH"},
            {"AttributeName": "seq", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "sender_id", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    with DynamoTrackerStore.from_config(dynamo_server.store_config(table)) as store:
        a, b = new_id(), new_id()
        store.append(a, turn(0))
        store.append(b, turn(0) + turn(1))
        assert sorted(store.keys()) == sorted([a, b])
        store.delete(a)
        assert list(store.keys()) == [b]


# -- exact numbers ---------------------------------------------------------------------
def test_floats_and_timestamps_round_trip_exactly(
    store: DynamoTrackerStore, dynamo_server: DynamoServer
) -> None:
    sid = new_id()
    stamp = 1700000001.1234567
    odd = [0.1 + 0.2, 1e-300, 1.7976931348623157e308, -0.0, 2**53 + 1, 5e-324, 1 / 3]
    event = {"event": "slot", "name": "numbers", "value": odd, "timestamp": stamp}
    store.append(sid, [event])
    (back,) = store.read(sid)
    assert back == event
    assert [struct.pack("<d", v) for v in back["value"][:4]] == [
        struct.pack("<d", v) for v in odd[:4]
    ]
    assert back["value"][4] == 2**53 + 1 and isinstance(back["value"][4], int)
    item = raw_item(dynamo_server, store.table, sid, 1)
    assert Decimal(item["timestamp"]["N"]) == Decimal(repr(stamp))


def test_time_filters_compare_exact_timestamps(store: DynamoTrackerStore) -> None:
    sid = new_id()
    stamps = [1700000001.1234567, 1700000001.1234569, 1700000001.1234571]
    store.append(sid, [action("a", ts=t) for t in stamps])
    hit = list(store.query(EventQuery(sender_id=sid, since=stamps[1], until=stamps[1])))
    assert [e.timestamp for e in hit] == [stamps[1]]
    after = list(store.query(EventQuery(sender_id=sid, since=stamps[1])))
    assert [e.seq for e in after] == [2, 3]


def test_odd_time_bounds_and_ids_filter_like_the_in_memory_store(
    store: DynamoTrackerStore,
) -> None:
    sid = new_id()
    store.append(sid, [action("a", ts=100.0), action("b", ts=200.0)])
    memory = InMemoryTrackerStore()
    memory.append(sid, store.read(sid))
    for bound in ("since", "until"):  # NaN is refused before any backend sees it
        with pytest.raises(EventValidationError, match="NaN"):
            EventQuery(sender_id=sid, **{bound: math.nan})
    cases = [
        EventQuery(sender_id=sid, since=-math.inf, until=math.inf),
        EventQuery(sender_id=sid, since=math.inf),
        EventQuery(sender_id=sid, until=-math.inf),
        EventQuery(sender_id=sid, since=-1e300, until=1e300),
        EventQuery(sender_id=sid, since=1e300),
        EventQuery(sender_id=sid, since=1e-300),
        EventQuery(sender_id=""),
        EventQuery(sender_id="x" * 3000),
    ]
    for case in cases:
        assert [e.seq for e in store.query(case)] == [e.seq for e in memory.query(case)], case
    assert store.version("") == 0 and store.read("") == [] and store.delete("") == 0


# -- query, keys, delete -----------------------------------------------------------------
def test_query_without_sender_scans_in_time_order(store: DynamoTrackerStore) -> None:
    tag = new_id("t")
    a, b = new_id(), new_id()
    store.append(b, [user("late", intent=tag, ts=300.0)])
    store.append(a, [user("early", intent=tag, ts=100.0), user("mid", intent=tag, ts=200.0)])
    found = list(store.query(EventQuery(intent=tag)))
    assert [e.data["text"] for e in found] == ["early", "mid", "late"]
    assert [e.position for e in found] == [None, None, None]
    assert [e.data["text"] for e in store.query(EventQuery(intent=tag, limit=2))] == [
        "early",
        "mid",
    ]
    assert list(store.query(EventQuery(intent=tag, after_position=0))) == []


def test_delete_removes_more_than_a_batch(
    store: DynamoTrackerStore, dynamo_server: DynamoServer
) -> None:
    sid = new_id()
    store.append(sid, [action(f"a{i}") for i in range(60)])
    assert store.delete(sid) == 60
    response = dynamo_server.client().query(
        TableName=store.table,
        KeyConditionExpression="sender_id = :s",
        ExpressionAttributeValues={":s": {"S": sid}},
    )
    assert response["Items"] == []  # events and the meta item are gone
    assert sid not in set(store.keys())


def test_reads_and_deletes_page_past_one_megabyte(
    store: DynamoTrackerStore, dynamo_server: DynamoServer
) -> None:
    sid = new_id()
    events = [{"event": "bot", "text": f"{i:03d}" + "x" * 30_000} for i in range(45)]
    store.append(sid, events)  # about 1.35 MB: more than one Query page
    client = dynamo_server.client()
    first_page = client.query(
        TableName=store.table,
        KeyConditionExpression="sender_id = :s AND seq > :z",
        ExpressionAttributeValues={":s": {"S": sid}, ":z": {"N": "0"}},
    )
    assert "LastEvaluatedKey" in first_page and len(first_page["Items"]) < 45
    assert [e["text"][:3] for e in store.read(sid)] == [f"{i:03d}" for i in range(45)]
    assert [e.seq for e in store.query(EventQuery(sender_id=sid, type_name="bot"))] == list(
        range(1, 46)
    )
    assert store.delete(sid) == 45
    assert raw_item_count(dynamo_server, store.table, sid) == 0


def raw_item_count(server: DynamoServer, table: str, sender_id: str) -> int:
    response = server.client().query(
        TableName=table,
        KeyConditionExpression="sender_id = :s",
        ExpressionAttributeValues={":s": {"S": sender_id}},
        Select="COUNT",
    )
    count: int = response["Count"]
    return count


# -- outbox ----------------------------------------------------------------------------
class DownBroker(EventBroker):
    """A broker that is down: every publish fails, so the relay acknowledges nothing."""

    def publish(self, message: dict[str, Any]) -> None:
        raise BrokerUnavailable("broker is down (test)")

    def is_ready(self) -> bool:
        return False


class RecordingBroker(EventBroker):
    """A broker that keeps the bodies it confirms, in order."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def publish(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


def test_outbox_keeps_events_while_the_broker_is_down(dynamo_server: DynamoServer) -> None:
    config = dynamo_server.store_config()
    store = with_broker(DynamoTrackerStore.from_config(config), DownBroker())
    assert store.uses_outbox
    a, b = new_id(), new_id()
    store.append(a, turn(0))
    store.append(b, [action("b1")])
    store.append(a, [action("a5")])
    pending = store.outbox_pending()
    assert sorted((e.sender_id, e.seq) for e in pending) == sorted(
        [(a, 1), (a, 2), (a, 3), (a, 4), (a, 5), (b, 1)]
    )
    assert [e.seq for e in pending if e.sender_id == a] == [1, 2, 3, 4, 5]
    assert [e.data for e in pending if e.sender_id == b] == store.read(b)
    assert len(store.outbox_pending(limit=2)) == 2
    store.outbox_ack([e for e in pending if e.sender_id == a][:3])
    left = store.outbox_pending()
    assert sorted((e.sender_id, e.seq) for e in left) == sorted([(a, 4), (a, 5), (b, 1)])
    assert len(store.read(a)) == 5  # acknowledging keeps the events
    store.delete(b)
    store.outbox_ack([e for e in left if e.sender_id == b])  # deleted: not recreated
    assert store.read(b) == [] and not store.exists(b)
    assert [(e.sender_id, e.seq) for e in store.outbox_pending()] == [(a, 4), (a, 5)]
    assert relay_of(store).stop(drain_timeout=0.2) is False  # still undelivered
    store.close()

    # a later process with a working broker publishes what was left, in order
    broker = RecordingBroker()
    with with_broker(DynamoTrackerStore.from_config(config), broker) as again:
        again.append(a, [action("a6")])
        assert relay_of(again).stop(drain_timeout=10) is True
        assert [(m["sender_id"], m["seq"]) for m in broker.messages] == [(a, 4), (a, 5), (a, 6)]
        assert broker.messages[-1]["name"] == "a6"
        assert again.outbox_pending() == []


def test_without_a_broker_nothing_enters_the_outbox(store: DynamoTrackerStore) -> None:
    store.append(new_id(), turn(0))
    assert not store.uses_outbox
    assert store.outbox_pending() == []


# -- errors ----------------------------------------------------------------------------
def test_unreachable_endpoint_is_backend_unavailable() -> None:
    port = free_port()
    config = {
        "type": "dynamo",
        "endpoint_url": f"http://127.0.0.1:{port}",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "secret-never-shown",
        "connect_timeout": 0.5,
        "max_attempts": 1,
    }
    with create_tracker_store(config) as store, pytest.raises(BackendUnavailable) as info:
        store.append(new_id(), turn(0))
    assert "unreachable" in str(info.value)
    assert "secret-never-shown" not in str(info.value)
