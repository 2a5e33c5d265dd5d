"""MongoDB store: one document per event, appended in a transaction, never one growing array.

Features: the full store contract, global positions, a durable outbox, atomic ``replace``.
Connection string: ``mongodb://host:27017/?options`` (or ``mongodb+srv://``); a user and
password in the URL are moved to ``username`` / ``password`` and never shown again.
Options: ``url``, ``db`` (rasa), ``username``, ``password``, ``auth_source`` (admin),
``collection`` (conversations), ``server_selection_timeout_ms``, ``connect_timeout_ms``,
``socket_timeout_ms``, ``transaction_retry_seconds``, ``query_indexes`` (true). Needs a
replica set or a sharded cluster (transactions); docs/mongo.md has the layout and guarantees.
The settings model lives in ``config``, the error translation in ``errors``.

Collections (``C`` is ``collection``):

- ``C``: one document per event ``{sender_id, seq, position, timestamp, type_name,
  intent_name?, action_name?, data}``; unique index (sender_id, seq).
- ``C_meta``: one document per conversation ``{_id: sender_id, version, session_start?}``
  (``session_start``: the seq of its last ``session_started``). Every append updates it in
  its transaction, so two appends to one conversation conflict there; ``keys()``,
  ``version()`` and ``retrieve`` read it instead of scanning events.
- ``C_counters``: the position counter (``$inc``ed in each append's transaction); checkpoints.
- ``C_outbox``: stored events not yet confirmed by the broker (``_id`` = position).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from eventstore.config import StrictConfig, secret_value
from eventstore.drivers import require
from eventstore.errors import (
    BackendUnavailable,
    ConcurrencyError,
    ConfigError,
)
from eventstore.events import MAX_EVENT_BYTES, action_name, intent_name
from eventstore.secrets import mask_url
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.stores.common import backoff, clamp_int64, utf8_encodable
from eventstore.stores.locks import mongo_lock
from eventstore.stores.mongo.config import MongoConfig
from eventstore.stores.mongo.errors import Server, translate
from eventstore.stores.mongo.values import bson_safe

if TYPE_CHECKING:
    from pymongo.client_session import ClientSession
    from pymongo.collection import Collection
    from pymongo.mongo_client import MongoClient

logger = logging.getLogger(__name__)

T = TypeVar("T")

_COUNTER_ID = "position"
_SESSION_STARTED = "session_started"
_HAS = {"$exists": True}
#: Indexes the log needs: its key (conflicts) and the global order.
_LOG_INDEXES: list[tuple[str, tuple[str, ...], dict[str, Any]]] = [
    ("sender_seq", ("sender_id", "seq"), {"unique": True}),
    ("position", ("position",), {"unique": True}),
]
#: Indexes for ``query`` filters (``query_indexes: false`` leaves them out).
_QUERY_INDEXES: list[tuple[str, tuple[str, ...], dict[str, Any]]] = [
    ("type_position", ("type_name", "position"), {}),
    (
        "intent_position",
        ("intent_name", "position"),
        {"partialFilterExpression": {"intent_name": _HAS}},
    ),
    (
        "action_position",
        ("action_name", "position"),
        {"partialFilterExpression": {"action_name": _HAS}},
    ),
    ("timestamp", ("timestamp",), {}),
]


def _driver() -> tuple[ModuleType, ModuleType]:
    """pymongo and pymongo.errors, imported on first use only."""
    return require("pymongo", "mongo"), require("pymongo.errors", "mongo")


class _Retry(Exception):
    """Raised inside a transaction when it must simply run again (a lost upsert race)."""


class MongoTrackerStore(TrackerStore):
    """Tracker store on MongoDB: an event log of one document per event (see module doc)."""

    Config: ClassVar[type[StrictConfig] | None] = MongoConfig
    has_positions: ClassVar[bool] = True
    supports_outbox: ClassVar[bool] = True
    supports_snapshots: ClassVar[bool] = True

    def __init__(
        self, settings: MongoConfig | None = None, *, max_event_bytes: int = MAX_EVENT_BYTES
    ) -> None:
        """Create the client (it connects on first use)."""
        self.settings = settings = settings if settings is not None else MongoConfig()
        super().__init__(max_event_bytes, settings.tracker_cache_size)
        self.use_store_settings(settings)
        self._password = secret_value(settings.password)
        self._server = Server(
            settings.url, settings.db, settings.username, settings.auth_source, self._password
        )
        pymongo, _ = _driver()
        client_options: dict[str, Any] = {
            "serverSelectionTimeoutMS": settings.server_selection_timeout_ms,
            "connectTimeoutMS": settings.connect_timeout_ms,
            "socketTimeoutMS": settings.socket_timeout_ms,
            "appname": "eventstore",
            "connect": False,  # connect on first use: building the store needs no server
        }
        if settings.username is not None:
            client_options.update(
                username=settings.username,
                password=self._password or "",
                authSource=settings.auth_source,
            )
        with self._translate():
            self._client: MongoClient[dict[str, Any]] = pymongo.MongoClient(
                settings.url, **client_options
            )
        database = self._client[settings.db]
        self._events: Collection[dict[str, Any]] = database[settings.collection]
        self._meta: Collection[dict[str, Any]] = database[f"{settings.collection}_meta"]
        self._counters: Collection[dict[str, Any]] = database[f"{settings.collection}_counters"]
        self._outbox: Collection[dict[str, Any]] = database[f"{settings.collection}_outbox"]
        self._ready = False
        self._ready_lock = threading.Lock()
        logger.debug("MongoDB tracker store on %s", self)

    @classmethod
    def from_settings(cls, settings: Any) -> MongoTrackerStore:
        return cls(settings)

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"{type(self).__name__}(url={mask_url(s.url)!r}, db={s.db!r}, "
            f"collection={s.collection!r}, username={s.username!r})"
        )

    def _translate(
        self, sender_id: str | None = None, expected: int | None = None
    ) -> AbstractContextManager[None]:
        """Driver errors inside become eventstore errors (``errors.translate``)."""
        return translate(self._server, sender_id, expected)

    # -- setup ----------------------------------------------------------------------
    def _ensure_ready(self) -> None:
        """Create the indexes and the position counter once (idempotent on the server)."""
        if self._ready:
            return
        with self._ready_lock, self._translate():
            if self._ready:
                return
            pymongo, _ = _driver()
            asc = pymongo.ASCENDING
            first = self._events.find_one({}, {"events": 1, "seq": 1})
            if first is not None and "events" in first and "seq" not in first:
                raise ConfigError(
                    f"tracker_store: collection {self.settings.collection!r} holds Rasa's "
                    "one-document-per-conversation layout; use another 'collection' "
                    "(eventstore keeps one document per event)"
                )
            self._events.create_indexes(
                [
                    pymongo.IndexModel([(key, asc) for key in keys], name=name, **options)
                    for name, keys, options in _LOG_INDEXES
                    + (_QUERY_INDEXES if self.settings.query_indexes else [])
                ]
            )
            self._outbox.create_index([("sender_id", asc), ("seq", asc)], name="sender_seq")
            self._counters.update_one(
                {"_id": _COUNTER_ID}, {"$setOnInsert": {"value": 0}}, upsert=True
            )
            self._ready = True

    def close(self) -> None:
        super().close()
        self._client.close()

    # -- transactions ---------------------------------------------------------------
    def _transaction(self, work: Callable[[ClientSession], T]) -> T:
        """Run ``work`` in a transaction and commit; rerun it on transient conflicts.

        Gives up after ``transaction_retry_seconds`` and lets the last error out. A commit
        whose outcome is unknown is retried as a commit, never rerun (no double append).
        """
        _, errors = _driver()
        deadline = time.monotonic() + self.settings.transaction_retry_seconds
        attempt = 0
        with self._client.start_session() as session:
            while True:
                attempt += 1
                session.start_transaction()
                try:
                    result = work(session)
                except BaseException as exc:
                    with suppress(errors.PyMongoError):
                        session.abort_transaction()
                    retry = isinstance(exc, _Retry) or (
                        isinstance(exc, errors.PyMongoError)
                        and exc.has_error_label("TransientTransactionError")
                    )
                    if retry and time.monotonic() < deadline:
                        backoff(attempt, base=0.001)
                        continue
                    if isinstance(exc, _Retry):
                        raise BackendUnavailable("MongoDB: too many conflicting writers") from exc
                    raise
                try:
                    self._commit(session, deadline)
                except errors.PyMongoError as exc:
                    if exc.has_error_label("TransientTransactionError") and (
                        time.monotonic() < deadline
                    ):
                        backoff(attempt, base=0.001)
                        continue
                    raise
                return result

    @staticmethod
    def _commit(session: ClientSession, deadline: float) -> None:
        _, errors = _driver()
        while True:
            try:
                session.commit_transaction()
                return
            except errors.PyMongoError as exc:
                unknown = exc.has_error_label("UnknownTransactionCommitResult")
                if not unknown or time.monotonic() >= deadline:
                    raise

    # -- documents ------------------------------------------------------------------
    @staticmethod
    def _document(sender_id: str, seq: int, position: int, event: dict[str, Any]) -> dict[str, Any]:
        """The stored document of one event: indexed columns plus the full event."""
        doc: dict[str, Any] = {
            "sender_id": sender_id,
            "seq": seq,
            "position": position,
            "timestamp": float(event["timestamp"]),
            "type_name": event["event"],
        }
        intent = intent_name(event)
        if intent is not None and utf8_encodable(intent):
            doc["intent_name"] = intent
        action = action_name(event)
        if action is not None and utf8_encodable(action):
            doc["action_name"] = action
        if bson_safe(event):
            doc["data"] = event
        else:  # keys MongoDB may refuse ('$x', 'a.b'), ints past 64 bits, lone surrogates
            doc["data_json"] = json.dumps(event)
        return doc

    @staticmethod
    def _data(doc: dict[str, Any]) -> dict[str, Any]:
        if "data" in doc:
            data: dict[str, Any] = doc["data"]
            return data
        loaded: dict[str, Any] = json.loads(doc["data_json"])
        return loaded

    def _stored(self, doc: dict[str, Any]) -> StoredEvent:
        return StoredEvent(doc["sender_id"], doc["seq"], self._data(doc), doc.get("position"))

    def _reserve_positions(self, count: int, session: ClientSession) -> int:
        """Take ``count`` positions in the append's transaction (they commit in order)."""
        pymongo, _ = _driver()
        counter = self._counters.find_one_and_update(
            {"_id": _COUNTER_ID},
            {"$inc": {"value": count}},
            upsert=True,
            return_document=pymongo.ReturnDocument.AFTER,
            session=session,
        )
        return int(_found(counter)["value"]) - count + 1

    def load_checkpoint(self, name: str) -> int | None:
        with self._translate():
            doc = self._counters.find_one({"_id": f"checkpoint:{name}"})
        return None if doc is None else int(doc["value"])

    def save_checkpoint(self, name: str, position: int) -> None:
        key, value = {"_id": f"checkpoint:{name}"}, {"$set": {"value": position}}
        with self._translate():
            self._counters.update_one(key, value, upsert=True)

    # -- primitives -----------------------------------------------------------------
    def _append(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        self._ensure_ready()

        def work(session: ClientSession) -> list[StoredEvent]:
            base = self._claim_seqs(session, sender_id, events, expected_version)
            return self._insert(session, sender_id, base, events)

        with self._translate(sender_id, expected_version):
            return self._transaction(work)

    def _claim_seqs(
        self,
        session: ClientSession,
        sender_id: str,
        events: list[dict[str, Any]],
        expected: int | None,
    ) -> int:
        """Move the conversation's meta document on by len(events); return the old version.

        This write is what makes two appends to one conversation conflict: the second one
        gets a write conflict (retried) and then sees the new version. It also records the
        seq of the batch's last ``session_started``, so ``retrieve`` finds it by ``_id``.
        """
        pymongo, errors = _driver()
        after = pymongo.ReturnDocument.AFTER
        count = len(events)
        start = _last_session_start(events)  # offset in the batch, 0 when none
        if expected is None:
            try:
                doc = self._meta.find_one_and_update(
                    {"_id": sender_id},
                    {"$inc": {"version": count}},
                    upsert=True,
                    return_document=after,
                    session=session,
                )
            except errors.DuplicateKeyError as exc:  # two first appends raced on the upsert
                raise _Retry from exc
            base = int(_found(doc)["version"]) - count
            if start:  # the base was unknown until now: one more write, once per session
                self._meta.update_one(
                    {"_id": sender_id}, {"$set": {"session_start": base + start}}, session=session
                )
            return base
        new = {"version": expected + count} | ({"session_start": expected + start} if start else {})
        if expected == 0:
            self._meta.insert_one({"_id": sender_id} | new, session=session)
            return 0
        doc = self._meta.find_one_and_update(
            {"_id": sender_id, "version": expected},
            {"$set": new},
            return_document=after,
            session=session,
        )
        if doc is None:
            current = self._meta.find_one({"_id": sender_id}, session=session)
            raise ConcurrencyError(sender_id, expected, int(current["version"]) if current else 0)
        return expected

    def _insert(
        self, session: ClientSession, sender_id: str, base: int, events: list[dict[str, Any]]
    ) -> list[StoredEvent]:
        """Insert the events at seqs base+1.. (and into the outbox) inside ``session``."""
        first = self._reserve_positions(len(events), session)
        docs = [
            self._document(sender_id, base + i, first + i - 1, event)
            for i, event in enumerate(events, start=1)
        ]
        self._events.insert_many(docs, ordered=True, session=session)
        if self.uses_outbox:
            outbox = [
                {k: v for k, v in d.items() if k in ("sender_id", "seq", "data", "data_json")}
                | {"_id": d["position"]}
                for d in docs
            ]
            self._outbox.insert_many(outbox, ordered=True, session=session)
        return [
            StoredEvent(sender_id, d["seq"], event, d["position"])
            for d, event in zip(docs, events, strict=True)
        ]

    def _replace(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        """Check, drop and store the new log in one transaction: readers see old or new."""
        self._ensure_ready()

        def work(session: ClientSession) -> list[StoredEvent]:
            current = self._meta.find_one_and_delete({"_id": sender_id}, session=session)
            version = int(current["version"]) if current else 0
            if expected_version is not None and version != expected_version:
                raise ConcurrencyError(sender_id, expected_version, version)
            self._events.delete_many({"sender_id": sender_id}, session=session)
            if not events:
                return []
            return self._insert(
                session, sender_id, self._claim_seqs(session, sender_id, events, 0), events
            )

        with self._translate(sender_id, expected_version):
            return self._transaction(work)

    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        self._ensure_ready()
        with self._translate(sender_id):
            cursor = self._events.find(
                {"sender_id": sender_id, "seq": {"$gt": clamp_int64(after)}},
                {"_id": 0, "data": 1, "data_json": 1},
            ).sort("seq", 1)
            return [self._data(doc) for doc in cursor]

    def version(self, sender_id: str) -> int:
        self._ensure_ready()
        with self._translate(sender_id):
            doc = self._meta.find_one({"_id": sender_id}, {"version": 1})
        return int(doc["version"]) if doc else 0

    def _session_start(self, sender_id: str) -> int:
        self._ensure_ready()
        with self._translate(sender_id):
            doc = self._meta.find_one({"_id": sender_id}, {"session_start": 1})
        return int(doc.get("session_start", 0)) if doc else 0

    def keys(self) -> Iterator[str]:
        """Conversation ids from the meta collection, streamed (no 16 MB ``distinct`` cap)."""
        self._ensure_ready()
        return self._stream(self._meta.find({}, {"_id": 1}), lambda doc: str(doc["_id"]))

    def delete(self, sender_id: str) -> int:
        """Remove events, meta document and pending outbox entries in one transaction."""
        return self._delete(sender_id, None)

    def delete_at_version(self, sender_id: str, version: int) -> int:
        return self._delete(sender_id, version)

    def exclusive(self, name: str, seconds: float) -> AbstractContextManager[bool]:
        """A document ``{_id: name, token, expires}`` in ``<collection>_locks``."""
        locks = self._meta.database[f"{self.settings.collection}_locks"]
        return mongo_lock(locks, name, seconds, self._translate)

    # -- snapshots: fields of the meta document, gone with it (delete, replace) ----------
    def _read_snapshot(self, sender_id: str) -> str | None:
        self._ensure_ready()
        with self._translate(sender_id):
            doc = self._meta.find_one({"_id": sender_id}, {"snap": 1})
        data = doc.get("snap") if doc else None
        return data if isinstance(data, str) else None

    def _write_snapshot(self, sender_id: str, version: int, data: str) -> None:
        """One conditional update: only while the log reaches ``version`` (no upsert, so a
        deleted conversation gets none) and never over a newer snapshot."""
        self._ensure_ready()
        at = clamp_int64(version)
        match = {
            "_id": sender_id,
            "version": {"$gte": at},
            "$or": [{"snapv": {"$exists": False}}, {"snapv": {"$lte": at}}],
        }
        with self._translate(sender_id):
            self._meta.update_one(match, {"$set": {"snap": data, "snapv": at}})

    def _delete(self, sender_id: str, expected: int | None) -> int:
        self._forget_snapshot(sender_id)
        self._ensure_ready()

        def work(session: ClientSession) -> int:
            meta = self._meta.find_one({"_id": sender_id}, session=session) or {}
            if expected is not None and int(meta.get("version", 0)) != expected:
                raise ConcurrencyError(sender_id, expected, int(meta.get("version", 0)))
            self._meta.delete_one({"_id": sender_id}, session=session)
            self._outbox.delete_many({"sender_id": sender_id}, session=session)
            result = self._events.delete_many({"sender_id": sender_id}, session=session)
            return int(result.deleted_count)

        with self._translate(sender_id):
            return self._transaction(work)

    def _query(self, query: EventQuery) -> Iterator[StoredEvent]:
        """Events matching ``query`` from a server cursor: by seq for one sender, else position."""
        self._ensure_ready()
        if query.limit is not None and query.limit <= 0:
            return iter(())
        filters: dict[str, Any] = {}
        if query.sender_id is not None:
            filters["sender_id"] = query.sender_id
        if query.type_name is not None:
            filters["type_name"] = query.type_name
        if query.intent is not None:
            filters["intent_name"] = query.intent
        if query.action is not None:
            filters["action_name"] = query.action
        stamp: dict[str, float] = {}
        if query.since is not None:
            stamp["$gte"] = query.since
        if query.until is not None:
            stamp["$lte"] = query.until
        if stamp:
            filters["timestamp"] = stamp
        if query.after_position is not None:
            filters["position"] = {"$gt": clamp_int64(query.after_position)}
        order = "seq" if query.sender_id is not None else "position"
        # a filter without a matching index sorts on the server: let a big sort spill to disk
        cursor = self._events.find(filters, {"_id": 0}, allow_disk_use=True).sort(order, 1)
        if query.limit is not None:
            cursor = cursor.limit(clamp_int64(query.limit))
        return self._stream(cursor, self._stored)

    def _stream(self, cursor: Any, convert: Callable[[dict[str, Any]], T]) -> Iterator[T]:
        """Yield converted documents from ``cursor``, closing it and translating errors."""
        with self._translate(), cursor:
            for doc in cursor:
                yield convert(doc)

    # -- outbox ---------------------------------------------------------------------
    def outbox_pending(self, limit: int = 500) -> list[StoredEvent]:
        self._ensure_ready()
        if limit <= 0:
            return []
        with self._translate():
            cursor = self._outbox.find({}).sort("_id", 1).limit(clamp_int64(limit))
            return [StoredEvent(d["sender_id"], d["seq"], self._data(d), d["_id"]) for d in cursor]

    def outbox_ack(self, events: Sequence[StoredEvent]) -> None:
        self._ensure_ready()
        positions = [e.position for e in events if e.position is not None]
        others = [{"sender_id": e.sender_id, "seq": e.seq} for e in events if e.position is None]
        with self._translate():
            if positions:
                self._outbox.delete_many({"_id": {"$in": positions}})
            if others:
                self._outbox.delete_many({"$or": others})


def _last_session_start(events: list[dict[str, Any]]) -> int:
    """The 1-based offset of the batch's last ``session_started`` event, 0 when none."""
    for offset in range(len(events), 0, -1):
        if events[offset - 1].get("event") == _SESSION_STARTED:
            return offset
    return 0


def _found(doc: dict[str, Any] | None) -> dict[str, Any]:
    """The document an upsert returned (the server always returns one)."""
    if doc is None:  # pragma: no cover - only a broken server gets here
        raise BackendUnavailable("MongoDB returned no document for an upsert")
    return doc


__all__ = ["MongoConfig", "MongoTrackerStore"]
