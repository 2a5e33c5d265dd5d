"""DynamoDB store: one item per event (partition ``sender_id``, sort ``seq``) and a meta item.

Features: atomic, version-checked appends (one ``TransactWriteItems`` for up to 99 events;
larger appends under a lease on the conversation, committed by one final transaction),
atomic replace (the new log is written above the old one and ``seq_base`` moves in one
commit), exact float and timestamp round trips (``data`` is a JSON string), queries
paginated past 1 MB, an outbox (a sparse index over unpublished events), the table created
on first use. No global position (``has_positions`` is false). Layout, guarantees and
limits: ``docs/dynamo.md``.

Options (``type: dynamo``): ``tablename`` (alias ``table_name``, ``states``), ``region``
(``us-east-1``), ``endpoint_url``, ``aws_access_key_id`` / ``aws_secret_access_key`` /
``aws_session_token`` (else boto3's default credential chain), ``connect_timeout``,
``read_timeout``, ``max_attempts``, ``create_table`` (true), ``lease_seconds`` (60).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import suppress
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from eventstore.config import StoreSettings, StrictConfig, parse_config, secret_value
from eventstore.drivers import require
from eventstore.errors import (
    BackendUnavailable,
    ConcurrencyError,
    ConfigError,
    EventStoreError,
)
from eventstore.stores import dynamo_items as layout
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.tracker import Tracker

#: Attempts of an append without ``expected_version`` before it gives up on contention.
UNVERSIONED_ATTEMPTS = 200
#: Reads of a conversation that a concurrent replace or delete may restart.
SNAPSHOT_ATTEMPTS = 20
#: Replaced conversations whose ``seq_base`` a store remembers (others have none).
BASE_CACHE_SIZE = 10_000

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class DynamoConfig(StoreSettings):
    """``tracker_store: {type: dynamo, ...}``; credentials default to boto3's chain."""

    tablename: str = Field("states", validation_alias=AliasChoices("tablename", "table_name"))
    region: str = "us-east-1"
    endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(10.0, gt=0)
    max_attempts: int = Field(3, ge=1, le=20)
    create_table: bool = True
    lease_seconds: float = Field(60.0, gt=0)

    @field_validator("tablename")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not _TABLE_NAME.match(value):
            raise ValueError("a DynamoDB table name is 3-255 characters of A-Z a-z 0-9 _ . -")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _key_pair(self) -> DynamoConfig:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("aws_access_key_id and aws_secret_access_key go together")
        return self


class DynamoTrackerStore(TrackerStore):
    """Event items in one DynamoDB table, checked by a meta item per conversation."""

    Config: ClassVar[type[StrictConfig] | None] = DynamoConfig
    has_positions: ClassVar[bool] = False
    supports_outbox: ClassVar[bool] = True

    def __init__(
        self,
        tablename: str = "states",
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        *,
        event_broker: Any = None,
        settings: DynamoConfig | None = None,
        client: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(event_broker, **kwargs)
        if self.max_event_bytes > layout.MAX_ITEM_BYTES - 16 * 1024:
            raise ConfigError(
                f"tracker_store: max_event_bytes {self.max_event_bytes} does not fit a "
                f"DynamoDB item (limit {layout.MAX_ITEM_BYTES} bytes with its other attributes)"
            )
        self.settings = settings or parse_config(
            DynamoConfig,
            {"tablename": tablename, "region": region, "endpoint_url": endpoint_url},
            "tracker_store",
        )
        self.table = self.settings.tablename
        self._client = client or _make_client(self.settings)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._has_keys_index = False
        self._has_outbox_index = False
        self._bases: OrderedDict[str, int] = OrderedDict()
        self._bases_lock = threading.Lock()
        self._outbox_keys: dict[tuple[str, int], int] = {}

    @classmethod
    def from_settings(cls, settings: Any, event_broker: Any = None) -> DynamoTrackerStore:
        return cls(event_broker=event_broker, settings=settings)

    def __repr__(self) -> str:
        where = self.settings.endpoint_url or f"aws:{self.settings.region}"
        return f"{type(self).__name__}(table={self.table!r}, endpoint={where!r})"

    # -- the table -----------------------------------------------------------------
    def ensure_table(self) -> None:
        """Create the table (and its indexes) if it is missing, and wait until it is active."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            with layout.translated("describing the table"):
                description = self._describe()
                if description is None:
                    if not self.settings.create_table:
                        raise BackendUnavailable(
                            f"DynamoDB table {self.table!r} does not exist and create_table "
                            "is false"
                        )
                    self._create()
                    description = self._describe()
                if description is None or description.get("TableStatus") != "ACTIVE":
                    self._client.get_waiter("table_exists").wait(
                        TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
                    )
                    description = self._describe() or {}
            layout.check_schema(self.table, description)
            indexes = {i["IndexName"] for i in description.get("GlobalSecondaryIndexes", [])}
            self._has_keys_index = layout.KEYS_INDEX in indexes
            self._has_outbox_index = layout.OUTBOX_INDEX in indexes
            self._ready = True

    def _describe(self) -> dict[str, Any] | None:
        try:
            return self._client.describe_table(TableName=self.table)["Table"]
        except self._client.exceptions.ResourceNotFoundException:
            return None

    def _create(self) -> None:
        """Create the table on demand billing, with the two sparse indexes."""
        # ResourceInUse: another process is creating it; wait for it like for our own
        with suppress(self._client.exceptions.ResourceInUseException):
            self._client.create_table(**layout.table_definition(self.table))

    # -- the meta item -------------------------------------------------------------
    def _meta(self, sender_id: str) -> dict[str, Any]:
        """The conversation's meta item (strongly consistent), ``{}`` when it has none."""
        self.ensure_table()
        if not layout.storable_key(sender_id):  # e.g. "": no such conversation can exist
            return {}
        with layout.translated("reading a conversation"):
            response = self._client.get_item(
                TableName=self.table,
                Key=layout.key(sender_id, layout.META_SEQ),
                ConsistentRead=True,
            )
        meta: dict[str, Any] = response.get("Item") or {}
        self._remember_base(sender_id, layout.number(meta, "seq_base"))
        return meta

    def _remember_base(self, sender_id: str, base: int) -> None:
        """Cache a conversation's ``seq_base`` (only replaced conversations have one)."""
        with self._bases_lock:
            if base:
                self._bases[sender_id] = base
                self._bases.move_to_end(sender_id)
                if len(self._bases) > BASE_CACHE_SIZE:
                    self._bases.popitem(last=False)
            else:
                self._bases.pop(sender_id, None)

    def version(self, sender_id: str) -> int:
        return layout.number(self._meta(sender_id), "version")

    def _session_start(self, sender_id: str) -> int:
        return layout.number(self._meta(sender_id), "session_start")

    # -- append and replace ----------------------------------------------------------
    def _append(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        self.ensure_table()
        if expected_version is not None:
            base = self._bases.get(sender_id, 0)
            try:
                return self._write(sender_id, events, expected_version, base)
            except layout.Conflict as conflict:  # maybe only our cached seq_base was stale
                found = conflict.found
                if (
                    layout.number(found, "version") != expected_version
                    or layout.lease_live(found)
                    or layout.number(found, "seq_base") == base
                ):
                    raise
                base = layout.number(found, "seq_base")
                self._remember_base(sender_id, base)
                return self._write(sender_id, events, expected_version, base)
        for attempt in range(UNVERSIONED_ATTEMPTS):
            meta = self._meta(sender_id)
            if not layout.lease_live(meta):
                with suppress(ConcurrencyError):
                    version, base = layout.number(meta, "version"), layout.number(meta, "seq_base")
                    return self._write(sender_id, events, version, base)
            layout.backoff(attempt)
        raise BackendUnavailable(
            f"could not append to conversation {sender_id!r}: "
            f"{UNVERSIONED_ATTEMPTS} attempts lost to concurrent writers"
        )

    def _replace(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        """Write the new log above the old one, then move ``seq_base`` past the old one.

        Readers see the old log until the commit and the new one after it, never a mix;
        the old items are deleted afterwards.
        """
        if not events:
            self._clear(sender_id, expected_version)
            return []
        for attempt in range(UNVERSIONED_ATTEMPTS):
            meta = self._meta(sender_id)
            version, base = layout.number(meta, "version"), layout.number(meta, "seq_base")
            if expected_version is not None and version != expected_version:
                raise ConcurrencyError(sender_id, expected_version, version)
            try:
                if layout.lease_live(meta):
                    raise ConcurrencyError(sender_id, expected_version, version)
                stored = self._write(sender_id, events, version, base, replace=True)
            except ConcurrencyError:
                if expected_version is not None:
                    raise
                layout.backoff(attempt)
                continue
            self._collect(sender_id, base + version)
            return stored
        raise BackendUnavailable(f"could not replace conversation {sender_id!r}: it keeps changing")

    def _write(
        self,
        sender_id: str,
        events: list[dict[str, Any]],
        expected: int,
        base: int,
        replace: bool = False,
    ) -> list[StoredEvent]:
        """Store ``events`` after version ``expected`` (or instead of the log, ``replace``).

        The items go to the physical seqs right above the log (``base + expected``); one
        transaction commits them, or a lease covers the chunks of a large write.
        """
        first = 1 if replace else expected + 1
        stored = [StoredEvent(sender_id, first + i, e) for i, e in enumerate(events)]
        start = base + expected + 1
        items = [layout.event_item(e, start + i, self.uses_outbox) for i, e in enumerate(stored)]
        commit = layout.meta_commit(sender_id, stored, base + expected if replace else None)
        guard = f"{layout.version_is(expected)} AND {layout.base_is(base)}"
        guard_values = {":expected": {"N": str(expected)}, ":base": {"N": str(base)}}
        chunks = layout.chunks(items)
        if len(chunks) == 1:
            condition = f"{guard} AND {layout.NO_LIVE_LEASE}"
            now = {":now": {"N": repr(time.time())}}
            self._transact(
                sender_id,
                expected,
                layout.conditioned(commit, condition, guard_values | now),
                items,
            )
        else:
            self._write_leased(sender_id, expected, guard, guard_values, chunks, commit)
        return stored

    def _write_leased(
        self,
        sender_id: str,
        expected: int,
        guard: str,
        guard_values: dict[str, Any],
        chunks: list[list[dict[str, Any]]],
        commit: dict[str, Any],
    ) -> None:
        """A large write: take a lease on the conversation, write chunks, commit at once.

        Readers see events only up to the meta item's version, so the chunks stay invisible
        until the final transaction moves it; every chunk is written in a transaction that
        renews (and so checks) the lease, so a writer that lost its lease writes no more.
        """
        lease = {":lease": {"S": uuid.uuid4().hex}}
        key = layout.key(sender_id, layout.META_SEQ)
        with layout.translated("appending", sender_id=sender_id, expected=expected):
            self._client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET lease = :lease, lease_expires = :until",
                # our own lease passes too: a retry of this request after a lost reply
                ConditionExpression=f"{guard} AND (attribute_not_exists(lease) "
                "OR lease_expires < :now OR lease = :lease)",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues=guard_values
                | lease
                | {":until": self._lease_until(), ":now": {"N": repr(time.time())}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        marked = [[{**item, "lease": lease[":lease"]} for item in chunk] for chunk in chunks]
        try:
            for chunk in marked[:-1]:
                renew = {
                    "UpdateExpression": "SET lease_expires = :until",
                    "ConditionExpression": "lease = :lease",
                    "ExpressionAttributeValues": lease | {":until": self._lease_until()},
                }
                self._transact(sender_id, expected, renew, chunk)
            final = layout.conditioned(commit, "lease = :lease", lease)
            self._transact(sender_id, expected, final, marked[-1])
        except EventStoreError:
            with suppress(Exception):  # best effort: the lease expires by itself anyway
                self._client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="REMOVE lease, lease_expires",
                    ConditionExpression="lease = :lease",
                    ExpressionAttributeValues=lease,
                )
            raise

    def _lease_until(self) -> dict[str, str]:
        return {"N": repr(time.time() + self.settings.lease_seconds)}

    def _transact(
        self,
        sender_id: str,
        expected: int,
        meta_update: dict[str, Any],
        items: list[dict[str, Any]],
    ) -> None:
        """One ``TransactWriteItems``: the meta item update first, then the event puts."""
        meta_update = {
            "TableName": self.table,
            "Key": layout.key(sender_id, layout.META_SEQ),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **meta_update,
        }
        transact = [{"Update": meta_update}]
        transact += [{"Put": {"TableName": self.table, "Item": item}} for item in items]
        with layout.translated("appending", sender_id=sender_id, expected=expected):
            self._client.transact_write_items(TransactItems=transact)

    # -- read ----------------------------------------------------------------------
    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        return self._snapshot(sender_id, max(after, 0))[1]

    def _load_session(self, sender_id: str) -> Tracker | None:
        """The current session: one read of the meta item, one Query from the session start."""
        after, events = self._snapshot(sender_id, None)
        if not events:
            return None
        return Tracker.from_events(sender_id, events, version=after + len(events))

    def _snapshot(self, sender_id: str, after: int | None) -> tuple[int, list[dict[str, Any]]]:
        """The events after ``after`` (None: from the current session's start), all of them.

        A replace or delete that commits during the read deletes the items being read; the
        count then falls short and the read starts over from the new meta item.
        """
        for _ in range(SNAPSHOT_ATTEMPTS):
            meta = self._meta(sender_id)
            version, base = layout.number(meta, "version"), layout.number(meta, "seq_base")
            start = max(layout.number(meta, "session_start") - 1, 0) if after is None else after
            if version <= start:
                return start, []
            events = [e.data for e in self._events(sender_id, base, start + 1, version)]
            if len(events) == version - start:
                return start, events
        raise BackendUnavailable(f"conversation {sender_id!r} kept changing while read")

    def _events(
        self, sender_id: str, base: int, first: int, last: int, query: EventQuery | None = None
    ) -> Iterator[StoredEvent]:
        """Events ``first..last`` of a conversation matching ``query``, page by page."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "sender_id = :sid AND seq BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":sid": {"S": sender_id},
                ":first": {"N": str(base + first)},
                ":last": {"N": str(base + last)},
            },
            "ConsistentRead": True,
            "ProjectionExpression": "sender_id, seq, #d",
            "ExpressionAttributeNames": {"#d": "data"},
        }
        if query is not None:
            layout.add_filters(params, query)
        for page in self._pages("query", params):
            for item in page:
                yield layout.stored_event(item, base)

    def _pages(self, operation: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Items of a Query or Scan, one page (up to 1 MB) at a time."""
        call = getattr(self._client, operation)
        start: dict[str, Any] | None = None
        while True:
            request = dict(params, ExclusiveStartKey=start) if start else params
            with layout.translated("reading"):
                response = call(**request)
            yield response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    # -- keys, delete ---------------------------------------------------------------
    def keys(self) -> Iterator[str]:
        self.ensure_table()
        if self._has_keys_index:
            params: dict[str, Any] = {"TableName": self.table, "IndexName": layout.KEYS_INDEX}
        else:  # a table made without the index: scan the meta items
            params = {
                "TableName": self.table,
                "FilterExpression": "seq = :meta AND attribute_exists(conversation)",
                "ExpressionAttributeValues": {":meta": {"N": str(layout.META_SEQ)}},
                "ProjectionExpression": "sender_id",
            }
        for page in self._pages("scan", params):
            for item in page:
                yield item["sender_id"]["S"]

    def delete(self, sender_id: str) -> int:
        return self._clear(sender_id, None)

    def _clear(self, sender_id: str, expected: int | None) -> int:
        """Empty the conversation at once (the meta item becomes a tombstone), then delete
        its items and the tombstone. Returns the number of events removed."""
        for attempt in range(UNVERSIONED_ATTEMPTS):
            meta = self._meta(sender_id)
            version, base = layout.number(meta, "version"), layout.number(meta, "seq_base")
            if expected is not None and version != expected:
                raise ConcurrencyError(sender_id, expected, version)
            if not meta:
                return 0
            end = base + version
            try:
                with layout.translated("deleting", sender_id=sender_id, expected=version):
                    self._client.update_item(
                        TableName=self.table,
                        Key=layout.key(sender_id, layout.META_SEQ),
                        UpdateExpression="SET #v = :zero, seq_base = :end "
                        "REMOVE conversation, session_start",
                        ConditionExpression=f"{layout.version_is(version)} AND "
                        f"{layout.base_is(base)} AND {layout.NO_LIVE_LEASE}",
                        ExpressionAttributeNames={"#v": "version"},
                        ExpressionAttributeValues={
                            ":zero": {"N": "0"},
                            ":end": {"N": str(end)},
                            ":expected": {"N": str(version)},
                            ":base": {"N": str(base)},
                            ":now": {"N": repr(time.time())},
                        },
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
            except ConcurrencyError:
                if expected is not None:
                    raise
                layout.backoff(attempt)
                continue
            self._collect(sender_id, end)
            self._drop_orphans(sender_id, end)
            with suppress(ConcurrencyError), layout.translated("deleting", sender_id=sender_id):
                self._client.delete_item(  # unless an append came meanwhile
                    TableName=self.table,
                    Key=layout.key(sender_id, layout.META_SEQ),
                    ConditionExpression="#v = :zero AND seq_base = :end "
                    "AND attribute_not_exists(lease)",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":zero": {"N": "0"}, ":end": {"N": str(end)}},
                )
            self._remember_base(sender_id, 0)
            return version
        raise BackendUnavailable(f"could not delete conversation {sender_id!r}: it keeps changing")

    def _collect(self, sender_id: str, end: int) -> None:
        """Delete the items at physical seqs 1..``end`` (a log no longer visible), 25 a batch."""
        if end < 1:
            return
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "sender_id = :sid AND seq BETWEEN :first AND :end",
            "ExpressionAttributeValues": {
                ":sid": {"S": sender_id},
                ":first": {"N": "1"},
                ":end": {"N": str(end)},
            },
            "ConsistentRead": True,
            "ProjectionExpression": "sender_id, seq",
        }
        for page in self._pages("query", params):
            for start in range(0, len(page), 25):
                requests = [{"DeleteRequest": {"Key": k}} for k in page[start : start + 25]]
                self._batch_write(requests)

    def _drop_orphans(self, sender_id: str, above: int) -> None:
        """Delete what large appends that died or lost their lease left above the log.

        Such items carry a ``lease`` that is not the meta item's and lie above its version.
        Items are listed before the meta item is read, so a lease taken later is not among
        them; each delete is conditional on that lease, so an item overwritten meanwhile by
        a new append stays.
        """
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "sender_id = :sid AND seq > :above",
            "FilterExpression": "attribute_exists(lease)",
            "ExpressionAttributeValues": {":sid": {"S": sender_id}, ":above": {"N": str(above)}},
            "ConsistentRead": True,
            "ProjectionExpression": "sender_id, seq, lease",
        }
        leftovers = [item for page in self._pages("query", params) for item in page]
        if not leftovers:
            return
        meta = self._meta(sender_id)
        end = layout.number(meta, "seq_base") + layout.number(meta, "version")
        current = meta.get("lease", {}).get("S")
        for item in leftovers:
            if int(item["seq"]["N"]) <= end or item["lease"]["S"] == current:
                continue
            with suppress(ConcurrencyError), layout.translated("deleting", sender_id=sender_id):
                self._client.delete_item(
                    TableName=self.table,
                    Key=layout.key(sender_id, int(item["seq"]["N"])),
                    ConditionExpression="lease = :lease",
                    ExpressionAttributeValues={":lease": item["lease"]},
                )

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending = {self.table: requests}
        for attempt in range(20):
            with layout.translated("writing a batch"):
                response = self._client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            layout.backoff(attempt)
        raise BackendUnavailable("DynamoDB kept returning unprocessed batch items")

    # -- query ---------------------------------------------------------------------
    def query(self, query: EventQuery) -> Iterator[StoredEvent]:
        if query.after_position is not None:  # no positions here: nothing is after one
            return
        if (query.limit is not None and query.limit <= 0) or layout.matches_nothing(query):
            return
        if query.sender_id is not None:
            meta = self._meta(query.sender_id)
            version, base = layout.number(meta, "version"), layout.number(meta, "seq_base")
            if version == 0:
                return
            events: Iterator[StoredEvent] = self._events(query.sender_id, base, 1, version, query)
        else:
            events = iter(self._scan(query))
        for count, event in enumerate(events, 1):
            yield event
            if query.limit is not None and count >= query.limit:
                return

    def _scan(self, query: EventQuery) -> list[StoredEvent]:
        """A Scan of the whole table for matching events, ordered by timestamp."""
        self.ensure_table()
        params: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "ProjectionExpression": "sender_id, seq, #d",
            "ExpressionAttributeNames": {"#d": "data"},
            "FilterExpression": "seq > :meta",
            "ExpressionAttributeValues": {":meta": {"N": str(layout.META_SEQ)}},
        }
        layout.add_filters(params, query)
        metas: dict[str, tuple[int, int]] = {}
        found = [e for page in self._pages("scan", params) for e, _ in self._live(page, metas)]
        found.sort(key=lambda e: (e.timestamp, e.sender_id, e.seq))
        return found

    def _live(
        self, items: list[dict[str, Any]], metas: dict[str, tuple[int, int]]
    ) -> Iterator[tuple[StoredEvent, int]]:
        """The items that are in their conversation's visible log, as events (with the
        physical seq): not a replaced log, not an uncommitted or abandoned large append.

        ``metas`` caches ``(seq_base, version)`` per conversation, read in batches of 100.
        """
        missing = list(
            dict.fromkeys(i["sender_id"]["S"] for i in items if i["sender_id"]["S"] not in metas)
        )
        for start in range(0, len(missing), 100):
            metas.update(self._batch_metas(missing[start : start + 100]))
        for item in items:
            base, version = metas.get(item["sender_id"]["S"], (0, 0))
            physical = int(item["seq"]["N"])
            if base < physical <= base + version:
                yield layout.stored_event(item, base), physical

    def _batch_metas(self, sender_ids: list[str]) -> dict[str, tuple[int, int]]:
        """``(seq_base, version)`` of up to 100 conversations, strongly consistent."""
        result = {sid: (0, 0) for sid in sender_ids}
        request: dict[str, Any] = {
            self.table: {
                "Keys": [layout.key(sid, layout.META_SEQ) for sid in sender_ids],
                "ConsistentRead": True,
                "ProjectionExpression": "sender_id, seq_base, #v",
                "ExpressionAttributeNames": {"#v": "version"},
            }
        }
        for attempt in range(20):
            with layout.translated("reading conversations"):
                response = self._client.batch_get_item(RequestItems=request)
            for meta in response.get("Responses", {}).get(self.table, []):
                result[meta["sender_id"]["S"]] = (
                    layout.number(meta, "seq_base"),
                    layout.number(meta, "version"),
                )
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return result
            layout.backoff(attempt)
        raise BackendUnavailable("DynamoDB kept returning unprocessed keys")

    # -- outbox --------------------------------------------------------------------
    def outbox_pending(self, limit: int = 500) -> list[StoredEvent]:
        """Unpublished events from the sparse ``outbox`` index, per conversation in seq order."""
        self.ensure_table()
        if not self._has_outbox_index:
            raise BackendUnavailable(
                f"DynamoDB table {self.table!r} has no {layout.OUTBOX_INDEX!r} index; "
                "see docs/dynamo.md to add it"
            )
        params = {"TableName": self.table, "IndexName": layout.OUTBOX_INDEX}
        metas: dict[str, tuple[int, int]] = {}
        found: list[tuple[StoredEvent, int]] = []
        for page in self._pages("scan", params):
            found.extend(self._live(page, metas))
            if len(found) >= limit:
                break
        order = {sid: n for n, sid in enumerate(dict.fromkeys(e.sender_id for e, _ in found))}
        found.sort(key=lambda pair: (order[pair[0].sender_id], pair[0].seq))
        found = found[:limit]
        with self._bases_lock:
            self._outbox_keys = {(e.sender_id, e.seq): physical for e, physical in found}
        return [e for e, _ in found]

    def outbox_ack(self, events: Sequence[StoredEvent]) -> None:
        """Remove the outbox marker of confirmed events, 100 per transaction.

        Each update is conditional on the marker, so an event deleted meanwhile is never
        recreated; a chunk holding such an event is redone one update at a time.
        """
        self.ensure_table()
        with self._bases_lock:
            known = dict(self._outbox_keys)
        keys = list(
            dict.fromkeys(
                (
                    e.sender_id,
                    known.get((e.sender_id, e.seq), self._bases.get(e.sender_id, 0) + e.seq),
                )
                for e in events
            )
        )
        for start in range(0, len(keys), layout.MAX_TRANSACTION_ITEMS):
            updates = [
                {
                    "TableName": self.table,
                    "Key": layout.key(sender_id, physical),
                    "UpdateExpression": "REMOVE outbox",
                    "ConditionExpression": "attribute_exists(outbox)",
                }
                for sender_id, physical in keys[start : start + layout.MAX_TRANSACTION_ITEMS]
            ]
            try:
                with layout.translated("acknowledging"):
                    self._client.transact_write_items(
                        TransactItems=[{"Update": u} for u in updates]
                    )
            except ConcurrencyError:  # some were acknowledged or deleted already
                for update in updates:
                    with suppress(ConcurrencyError), layout.translated("acknowledging"):
                        self._client.update_item(**update)

    def close(self) -> None:
        super().close()  # stops the outbox relay first
        self._client.close()


def _make_client(settings: DynamoConfig) -> Any:
    """A boto3 DynamoDB client with the configured timeouts, retries and credentials."""
    boto3 = require("boto3", "dynamo")
    botocore_config = require("botocore.config", "dynamo")
    config = botocore_config.Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        max_pool_connections=32,
    )
    with layout.translated("creating the client"):
        return boto3.session.Session().client(
            "dynamodb",
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            aws_access_key_id=secret_value(settings.aws_access_key_id),
            aws_secret_access_key=secret_value(settings.aws_secret_access_key),
            aws_session_token=secret_value(settings.aws_session_token),
            config=config,
        )
