"""The table under the DynamoDB store: the client, creation on first use, the meta item
per conversation, paginated reads and retried batches. ``store.py`` builds the store's
semantics (appends, replace, reads, queries, outbox) on top.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from eventstore.errors import BackendUnavailable, ConcurrencyError, ConfigError
from eventstore.events import MAX_EVENT_BYTES
from eventstore.stores.base import StoredEvent, TrackerStore
from eventstore.stores.dynamo import items as layout
from eventstore.stores.dynamo.config import DynamoConfig, make_client
from eventstore.stores.dynamo.errors import translate

#: Replaced conversations whose ``seq_base`` a store remembers (others have none).
BASE_CACHE_SIZE = 10_000


class DynamoTable(TrackerStore):
    """The DynamoDB plumbing the store stands on (not a store by itself)."""

    def __init__(
        self,
        settings: DynamoConfig | None = None,
        *,
        client: Any = None,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        self.settings = settings if settings is not None else DynamoConfig.model_validate({})
        super().__init__(max_event_bytes, self.settings.tracker_cache_size)
        if self.max_event_bytes > layout.MAX_ITEM_BYTES - 16 * 1024:
            raise ConfigError(
                f"tracker_store: max_event_bytes {self.max_event_bytes} does not fit a "
                f"DynamoDB item (limit {layout.MAX_ITEM_BYTES} bytes with its other attributes)"
            )
        self.use_store_settings(self.settings)
        self.table = self.settings.tablename
        self._client = client or make_client(self.settings)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._has_keys_index = False
        self._has_outbox_index = False
        self._bases: OrderedDict[str, int] = OrderedDict()
        self._bases_lock = threading.Lock()
        self._outbox_keys: dict[tuple[str, int], int] = {}

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
            with translate("describing the table"):
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
            table: dict[str, Any] = self._client.describe_table(TableName=self.table)["Table"]
            return table
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
        with translate("reading a conversation"):
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

    # -- pages and batches ---------------------------------------------------------
    def _pages(self, operation: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Items of a Query or Scan, one page (up to 1 MB) at a time."""
        call = getattr(self._client, operation)
        start: dict[str, Any] | None = None
        while True:
            request = dict(params, ExclusiveStartKey=start) if start else params
            with translate("reading"):
                response = call(**request)
            yield response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending = {self.table: requests}
        for attempt in range(20):
            with translate("writing a batch"):
                response = self._client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            layout.backoff(attempt)
        raise BackendUnavailable("DynamoDB kept returning unprocessed batch items")

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
            with translate("reading conversations"):
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
            with suppress(ConcurrencyError), translate("deleting", sender_id=sender_id):
                self._client.delete_item(
                    TableName=self.table,
                    Key=layout.key(sender_id, int(item["seq"]["N"])),
                    ConditionExpression="lease = :lease",
                    ExpressionAttributeValues={":lease": item["lease"]},
                )
