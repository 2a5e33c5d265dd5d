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

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

from eventstore.config import StrictConfig
from eventstore.errors import BackendUnavailable, ConcurrencyError, EventStoreError
from eventstore.stores.base import EventQuery, StoredEvent
from eventstore.stores.dynamo import items as layout
from eventstore.stores.dynamo.config import DynamoConfig
from eventstore.stores.dynamo.errors import Conflict, translate
from eventstore.stores.dynamo.table import DynamoTable
from eventstore.tracker import Tracker

__all__ = ["DynamoConfig", "DynamoTrackerStore"]

#: Attempts of an append without ``expected_version`` before it gives up on contention.
UNVERSIONED_ATTEMPTS = 200
#: Reads of a conversation that a concurrent replace or delete may restart.
SNAPSHOT_ATTEMPTS = 20


class DynamoTrackerStore(DynamoTable):
    """Event items in one DynamoDB table, checked by a meta item per conversation."""

    Config: ClassVar[type[StrictConfig] | None] = DynamoConfig
    has_positions: ClassVar[bool] = False
    supports_outbox: ClassVar[bool] = True
    supports_snapshots: ClassVar[bool] = True

    @classmethod
    def from_settings(cls, settings: Any) -> DynamoTrackerStore:
        return cls(settings)

    # -- the table -----------------------------------------------------------------

    # -- the meta item -------------------------------------------------------------

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
            except Conflict as conflict:  # maybe only our cached seq_base was stale
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
            self._drop_snapshot(sender_id)
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
        with translate("appending", sender_id=sender_id, expected=expected):
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
        with translate("appending", sender_id=sender_id, expected=expected):
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

    def delete_at_version(self, sender_id: str, version: int) -> int:
        return self._clear(sender_id, version)

    @contextmanager
    def exclusive(self, name: str, seconds: float) -> Iterator[bool]:
        """A conditional put of item (``\x00lock:<name>``, seq -1): taken when absent or
        expired; no conversation, index or outbox ever sees it."""
        self.ensure_table()
        key = layout.key(f"\x00lock:{name}", -1)
        token, now = uuid.uuid4().hex, time.time()
        try:
            with translate("taking a lock"):
                self._client.put_item(
                    TableName=self.table,
                    Item={**key, "token": {"S": token}, "expires": {"N": repr(now + seconds)}},
                    ConditionExpression="attribute_not_exists(sender_id) OR expires < :now",
                    ExpressionAttributeValues={":now": {"N": repr(now)}},
                )
            taken = True
        except ConcurrencyError:
            taken = False
        try:
            yield taken
        finally:
            if taken:
                with suppress(EventStoreError), translate("releasing a lock"):
                    self._client.delete_item(
                        TableName=self.table,
                        Key=key,
                        ConditionExpression="#t = :token",
                        ExpressionAttributeNames={"#t": "token"},
                        ExpressionAttributeValues={":token": {"S": token}},
                    )

    def _clear(self, sender_id: str, expected: int | None) -> int:
        """Empty the conversation at once (the meta item becomes a tombstone), then delete
        its items, its snapshot and the tombstone. Returns the number of events removed."""
        self._forget_snapshot(sender_id)
        for attempt in range(UNVERSIONED_ATTEMPTS):
            meta = self._meta(sender_id)
            version, base = layout.number(meta, "version"), layout.number(meta, "seq_base")
            if expected is not None and version != expected:
                raise ConcurrencyError(sender_id, expected, version)
            if not meta:
                return 0
            end = base + version
            try:
                with translate("deleting", sender_id=sender_id, expected=version):
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
            self._drop_snapshot(sender_id)  # none can be written past the tombstone
            self._collect(sender_id, end)
            self._drop_orphans(sender_id, end)
            with suppress(ConcurrencyError), translate("deleting", sender_id=sender_id):
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

    # -- snapshots: an item at seq -1 under the conversation's partition key ------------
    def _read_snapshot(self, sender_id: str) -> str | None:
        self.ensure_table()
        if not layout.storable_key(sender_id):
            return None
        with translate("reading the snapshot", sender_id=sender_id):
            item = self._client.get_item(
                TableName=self.table,
                Key=layout.key(sender_id, layout.SNAPSHOT_SEQ),
                ConsistentRead=True,
                ProjectionExpression="snap",
            ).get("Item")
        data = (item or {}).get("snap", {}).get("S")
        return data if isinstance(data, str) else None

    def _write_snapshot(self, sender_id: str, version: int, data: str) -> None:
        """One transaction: a check that the meta item reaches ``version`` (a deleted
        conversation, or a tombstone, gets none) and a put that never replaces a newer
        snapshot. A snapshot too large for an item is not stored (the log serves)."""
        self.ensure_table()
        if not layout.storable_key(sender_id) or len(data.encode()) > layout.MAX_SNAPSHOT_BYTES:
            return
        at = {":version": {"N": str(version)}}
        check = {
            "TableName": self.table,
            "Key": layout.key(sender_id, layout.META_SEQ),
            "ConditionExpression": "#v >= :version",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": at,
        }
        item = {
            **layout.key(sender_id, layout.SNAPSHOT_SEQ),
            "snap": {"S": data},
            "snapv": {"N": str(version)},
        }
        put = {
            "TableName": self.table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(snapv) OR snapv <= :version",
            "ExpressionAttributeValues": at,
        }
        with suppress(ConcurrencyError), translate("writing the snapshot"):
            self._client.transact_write_items(
                TransactItems=[{"ConditionCheck": check}, {"Put": put}]
            )

    def _drop_snapshot(self, sender_id: str) -> None:
        """Delete the snapshot item (after a delete or replace committed)."""
        with translate("deleting the snapshot", sender_id=sender_id):
            self._client.delete_item(
                TableName=self.table, Key=layout.key(sender_id, layout.SNAPSHOT_SEQ)
            )

    # -- query ---------------------------------------------------------------------

    def _query(self, query: EventQuery) -> Iterator[StoredEvent]:
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
                with translate("acknowledging"):
                    self._client.transact_write_items(
                        TransactItems=[{"Update": u} for u in updates]
                    )
            except ConcurrencyError:  # some were acknowledged or deleted already
                for update in updates:
                    with suppress(ConcurrencyError), translate("acknowledging"):
                        self._client.update_item(**update)

    def close(self) -> None:
        super().close()  # runs the close hooks first
        self._client.close()
