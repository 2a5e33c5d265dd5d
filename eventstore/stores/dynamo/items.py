"""The item layout of the DynamoDB store: keys, attributes, expressions.

Pure helpers for ``eventstore.stores.dynamo.store`` (which holds the store and its config). See
``docs/dynamo.md`` for the layout they implement.
"""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal
from typing import Any

from eventstore.errors import ConfigError
from eventstore.events import action_name, intent_name
from eventstore.stores import common
from eventstore.stores.base import EventQuery, StoredEvent

#: Items per ``TransactWriteItems`` (DynamoDB's limit); one is the meta item.
MAX_TRANSACTION_ITEMS = 100
#: Bytes of events per transaction, under DynamoDB's 4 MB transaction limit.
MAX_TRANSACTION_BYTES = 3_500_000
#: DynamoDB's item size limit; ``max_event_bytes`` must leave room for the other attributes.
MAX_ITEM_BYTES = 400 * 1024
#: The sort key of the per-conversation meta item (events start at seq 1).
META_SEQ = 0
#: The sort key of the conversation's snapshot item (below the meta item: no event range,
#: index or scan of events ever includes it).
SNAPSHOT_SEQ = -1
#: The largest snapshot stored (an item holds 400 KB with its keys); larger ones are not.
MAX_SNAPSHOT_BYTES = MAX_ITEM_BYTES - 1024
KEYS_INDEX = "conversations"
OUTBOX_INDEX = "outbox"


def table_definition(table: str) -> dict[str, Any]:
    """``create_table`` arguments: keys ``sender_id`` (S) + ``seq`` (N), on-demand billing,
    and the two sparse indexes (``conversations`` over meta items, ``outbox``)."""
    return dict(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "sender_id", "KeyType": "HASH"},
            {"AttributeName": "seq", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "sender_id", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
            {"AttributeName": "conversation", "AttributeType": "S"},
            {"AttributeName": "outbox", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": KEYS_INDEX,
                "KeySchema": [{"AttributeName": "conversation", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": OUTBOX_INDEX,
                "KeySchema": [
                    {"AttributeName": "outbox", "KeyType": "HASH"},
                    {"AttributeName": "seq", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    )


def event_item(event: StoredEvent, physical: int, outbox: bool) -> dict[str, Any]:
    """The item of one event at sort key ``physical``: JSON ``data``, query attributes."""
    data = event.data
    item: dict[str, Any] = {
        **key(event.sender_id, physical),
        "data": {"S": json.dumps(data, ensure_ascii=False, separators=(",", ":"))},
        "type_name": {"S": str(data.get("event"))},
    }
    stamp = data.get("timestamp")
    if isinstance(stamp, int | float) and storable_number(float(stamp)):
        item["timestamp"] = {"N": number_text(float(stamp))}
    intent = intent_name(data)
    if intent:
        item["intent_name"] = {"S": intent}
    action = action_name(data)
    if action:
        item["action_name"] = {"S": action}
    if outbox:
        item["outbox"] = {"S": event.sender_id}
    return item


NO_LIVE_LEASE = "(attribute_not_exists(lease) OR lease_expires < :now)"


def version_is(expected: int) -> str:
    """The condition that the meta item is at ``expected`` (uses ``#v`` and ``:expected``)."""
    if expected == 0:
        return "(attribute_not_exists(#v) OR #v = :expected)"
    return "#v = :expected"


def base_is(base: int) -> str:
    """The condition that the log starts at physical ``base`` (uses ``:base``)."""
    if base == 0:
        return "(attribute_not_exists(seq_base) OR seq_base = :base)"
    return "seq_base = :base"


def conditioned(update: dict[str, Any], condition: str, values: dict[str, Any]) -> dict[str, Any]:
    """``update`` with a ConditionExpression and the values it uses."""
    return {
        **update,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": {**update["ExpressionAttributeValues"], **values},
    }


def meta_commit(sender_id: str, stored: list[StoredEvent], new_base: int | None) -> dict[str, Any]:
    """The meta item update that makes ``stored`` visible (version, session start) and,
    for a replace, moves ``seq_base`` past the old log."""
    sets = ["#v = :version", "conversation = :sid"]
    removes = ["lease", "lease_expires"]
    values: dict[str, Any] = {
        ":version": {"N": str(stored[-1].seq)},
        ":sid": {"S": sender_id},
    }
    starts = [e.seq for e in stored if e.data.get("event") == "session_started"]
    if starts:
        sets.append("session_start = :start")
        values[":start"] = {"N": str(starts[-1])}
    elif new_base is not None:
        removes.append("session_start")
    if new_base is not None:
        sets.append("seq_base = :new_base")
        values[":new_base"] = {"N": str(new_base)}
    return {
        "UpdateExpression": f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
        "ExpressionAttributeNames": {"#v": "version"},
        "ExpressionAttributeValues": values,
    }


def chunks(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split event items into transactions of at most 99 items and ~3.5 MB."""
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for item in items:
        item_size = len(item["data"]["S"].encode()) + 200
        if chunks[-1] and (
            len(chunks[-1]) >= MAX_TRANSACTION_ITEMS - 1 or size + item_size > MAX_TRANSACTION_BYTES
        ):
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += item_size
    return chunks


def add_filters(params: dict[str, Any], query: EventQuery) -> None:
    """Add ``query``'s filters to a Query or Scan as a server-side FilterExpression."""
    names: dict[str, str] = params.setdefault("ExpressionAttributeNames", {})
    values: dict[str, Any] = params.setdefault("ExpressionAttributeValues", {})
    terms = [params["FilterExpression"]] if "FilterExpression" in params else []
    for attribute, value in (
        ("type_name", query.type_name),
        ("intent_name", query.intent),
        ("action_name", query.action),
    ):
        if value is not None:
            terms.append(f"{attribute} = :{attribute}")
            values[f":{attribute}"] = {"S": value}
    for name, bound, operator in (("since", query.since, ">="), ("until", query.until, "<=")):
        if bound is None or math.isnan(bound) or math.isinf(bound):
            continue  # NaN excludes nothing (as in EventQuery.matches); see matches_nothing
        terms.append(f"#ts {operator} :{name}")
        values[f":{name}"] = {"N": number_text(_clamped(float(bound)))}
        names["#ts"] = "timestamp"
    if terms:
        params["FilterExpression"] = " AND ".join(terms)
    if not names:
        params.pop("ExpressionAttributeNames")


def matches_nothing(query: EventQuery) -> bool:
    """Whether ``query``'s time window is empty on its face (since +inf, until -inf)."""
    return (query.since is not None and query.since == math.inf) or (
        query.until is not None and query.until == -math.inf
    )


def _clamped(value: float) -> float:
    """``value`` moved into DynamoDB's Number range (stored timestamps lie within it)."""
    if abs(value) >= 1e125:
        return math.copysign(1e125, value)
    return value if abs(value) > 1e-129 else 0.0


def storable_key(sender_id: str) -> bool:
    """Whether DynamoDB takes ``sender_id`` as a partition key (1 to 2,048 bytes)."""
    return 0 < len(sender_id.encode("utf-8", "surrogatepass")) <= 2048


def key(sender_id: str, seq: int) -> dict[str, Any]:
    """The primary key of the item at sort key ``seq`` (0: the meta item)."""
    return {"sender_id": {"S": sender_id}, "seq": {"N": str(seq)}}


def number(item: dict[str, Any], name: str) -> int:
    """An integer attribute of ``item``; 0 when it is absent (a missing meta item too)."""
    value = item.get(name)
    return int(value["N"]) if value else 0


def stored_event(item: dict[str, Any], base: int) -> StoredEvent:
    """The event of an item whose conversation's log starts at physical ``base``."""
    seq = int(item["seq"]["N"]) - base
    return StoredEvent(item["sender_id"]["S"], seq, json.loads(item["data"]["S"]))


def number_text(value: float) -> str:
    """A float as a DynamoDB Number, exactly: the shortest decimal that reads back as it."""
    return str(Decimal(repr(value)))


def storable_number(value: float) -> bool:
    """Whether DynamoDB's Number type holds ``value`` (finite, within 1e-130..1e126)."""
    return math.isfinite(value) and (value == 0 or 1e-129 < abs(value) < 1e125)


def lease_live(meta: dict[str, Any]) -> bool:
    """Whether a large append holds the conversation's lease and it has not run out."""
    expires = meta.get("lease_expires")
    return "lease" in meta and expires is not None and float(expires["N"]) >= time.time()


def backoff(attempt: int) -> None:
    """Sleep a jittered, growing moment (at most 0.2 s) before retrying after a conflict."""
    common.backoff(min(attempt, 7), cap=0.2)


def check_schema(table: str, description: dict[str, Any]) -> None:
    """Refuse a table whose keys are not ``sender_id`` (S) + ``seq`` (N)."""
    keys = {k["AttributeName"]: k["KeyType"] for k in description.get("KeySchema", [])}
    if keys != {"sender_id": "HASH", "seq": "RANGE"}:
        raise ConfigError(
            f"DynamoDB table {table!r} has keys {keys}; this store needs partition key "
            "'sender_id' (S) and sort key 'seq' (N) (a Rasa 'states' table is not compatible: "
            "use another tablename)"
        )
