"""Redis store: one Redis list per conversation, one JSON event per element.

Features: the full store contract; atomic, version-checked appends in one Lua script
(EVALSHA, cached); O(new events) appends; the current session read with one LRANGE; global
positions (``INCRBY``) and a global stream for queries across conversations; a durable
outbox stream; ``record_exp`` (a sliding TTL on every key of a conversation).

Connection: ``url`` is a host name (``localhost``) or a full ``redis://`` / ``rediss://``
URL. Options: ``port``, ``db``, ``username``, ``password``, ``record_exp``, ``key_prefix``,
``use_ssl``, ``ssl_keyfile``, ``ssl_certfile``, ``ssl_ca_certs``, ``socket_timeout``,
``socket_connect_timeout``. Key layout and guarantees: ``docs/redis.md``.

Needs a standalone Redis >= 5 (or a Sentinel-managed primary); the append script touches
keys of several hash slots, so Redis Cluster is not supported.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from itertools import islice
from typing import Any, ClassVar

from eventstore.config import StrictConfig, secret_value
from eventstore.drivers import require
from eventstore.errors import ConcurrencyError
from eventstore.events import MAX_EVENT_BYTES, action_name, intent_name
from eventstore.secrets import MASK
from eventstore.stores.base import EventQuery, StoredEvent, TrackerStore
from eventstore.stores.redis.config import RedisConfig
from eventstore.stores.redis.errors import translate
from eventstore.tracker import Tracker

#: Events per RPUSH/XDEL call inside the scripts (Lua's unpack has a stack limit).
_CHUNK = 500
#: Entries fetched per round trip when streaming queries, keys and the outbox.
_PAGE = 500
#: The largest position INCRBY can hand out (a signed 64-bit counter).
_MAX_POSITION = 2**63 - 1

# Every script gets the same keys, so they share one builder:
#   1 log   2 positions   3 meta   4 ids   5 position counter   6 global stream   7 outbox
_DROP_LUA = """
local old = redis.call('LRANGE', KEYS[2], 0, -1)
for i = 1, #old, CHUNK do
  local ids = {}
  for j = i, math.min(i + CHUNK - 1, #old) do ids[#ids + 1] = old[j] .. '-0' end
  redis.call('XDEL', KEYS[6], unpack(ids))
  redis.call('XDEL', KEYS[7], unpack(ids))
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
""".replace("CHUNK", str(_CHUNK))

# ARGV: sender_id, expected version (-1: none), ttl ms (0: none), outbox (0/1),
# replace (0/1), then 5 per event: json, type, intent, action, timestamp.
_WRITE_LUA = (
    """
local sid = ARGV[1]
local expected = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local outbox = ARGV[4] == '1'
local current = redis.call('LLEN', KEYS[1])
if expected >= 0 and expected ~= current then
  return {0, current, 0}
end
if ARGV[5] == '1' or current == 0 then
  -- a replaced log, or keys an expired log left behind: start from nothing
"""
    + _DROP_LUA
    + """
  current = 0
end
local n = (#ARGV - 5) / 5
if n == 0 then
  redis.call('ZREM', KEYS[4], sid)
  return {1, 0, 0}
end
local last = redis.call('INCRBY', KEYS[5], n)
local first = last - n + 1
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local session = nil
local jsons, positions = {}, {}
for i = 1, n do
  local o = 5 + (i - 1) * 5
  local json, kind = ARGV[o + 1], ARGV[o + 2]
  local seq = string.format('%d', current + i)
  local pos = string.format('%d', first + i - 1)
  redis.call('XADD', KEYS[6], pos .. '-0', 's', sid, 'q', seq, 't', kind,
             'i', ARGV[o + 3], 'a', ARGV[o + 4], 'ts', ARGV[o + 5])
  if outbox then
    redis.call('XADD', KEYS[7], pos .. '-0', 's', sid, 'q', seq, 'd', json)
  end
  if kind == 'session_started' then session = seq end
  jsons[#jsons + 1] = json
  positions[#positions + 1] = pos
  if #jsons == CHUNK then
    redis.call('RPUSH', KEYS[1], unpack(jsons))
    redis.call('RPUSH', KEYS[2], unpack(positions))
    jsons, positions = {}, {}
  end
end
if #jsons > 0 then
  redis.call('RPUSH', KEYS[1], unpack(jsons))
  redis.call('RPUSH', KEYS[2], unpack(positions))
end
redis.call('HSET', KEYS[3], 't', now)
if session then redis.call('HSET', KEYS[3], 's', session) end
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. now)
  redis.call('ZADD', KEYS[4], now + ttl, sid)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
  redis.call('PERSIST', KEYS[3])
  redis.call('ZADD', KEYS[4], '+inf', sid)
end
return {1, current + n, first}
""".replace("CHUNK", str(_CHUNK))
)

_DELETE_LUA = (
    "local n = redis.call('LLEN', KEYS[1])\n"
    + "if ARGV[2] and tonumber(ARGV[2]) ~= n then return -1 - n end\n"  # delete_at_version
    + _DROP_LUA
    + "redis.call('ZREM', KEYS[4], ARGV[1])\nreturn n\n"
)

# A snapshot lives in the meta hash (dropped with the log, same TTL): stored only while the
# log holds ARGV[1] events, never over a newer one. ARGV: version, data.
_SNAPSHOT_LUA = """
if redis.call('LLEN', KEYS[1]) < tonumber(ARGV[1]) then return 0 end
if tonumber(redis.call('HGET', KEYS[3], 'snapv') or '0') > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[3], 'snapv', ARGV[1], 'snap', ARGV[2])
return 1
"""

# The current session in one atomic step: events from the last session_started on.
_RETRIEVE_LUA = """
local start = tonumber(redis.call('HGET', KEYS[3], 's') or '0')
local after = 0
if start > 0 then after = start - 1 end
return {after, redis.call('LRANGE', KEYS[1], after, -1)}
"""


class RedisTrackerStore(TrackerStore):
    """Conversations as Redis lists, appended by one cached Lua script per write."""

    Config: ClassVar[type[StrictConfig] | None] = RedisConfig
    has_positions: ClassVar[bool] = True
    supports_outbox: ClassVar[bool] = True
    supports_snapshots: ClassVar[bool] = True

    def __init__(
        self, settings: RedisConfig | None = None, *, max_event_bytes: int = MAX_EVENT_BYTES
    ) -> None:
        """Create the client (no connection yet)."""
        self.settings = settings if settings is not None else RedisConfig()
        super().__init__(max_event_bytes, self.settings.tracker_cache_size)
        self.use_store_settings(self.settings)
        redis = require("redis", "redis")
        retry, backoff = require("redis.retry", "redis"), require("redis.backoff", "redis")
        s = self.settings
        ssl: dict[str, Any] = {}
        if s.use_ssl:
            ssl = {
                "ssl": True,
                "ssl_keyfile": s.ssl_keyfile,
                "ssl_certfile": s.ssl_certfile,
                "ssl_ca_certs": s.ssl_ca_certs,
            }
        self._client = redis.Redis(
            host=s.url,
            port=s.port,
            db=s.db,
            username=s.username,
            password=secret_value(s.password),
            socket_timeout=s.socket_timeout,
            socket_connect_timeout=s.socket_connect_timeout,
            # never resend on its own: a script that timed out may have run, and running
            # it again would append the events twice; callers retry with expected_version
            retry=retry.Retry(backoff.NoBackoff(), 0),
            # a pooled connection idle this long is checked first (server restarts)
            health_check_interval=30,
            **ssl,
        )
        self._ttl_ms = round(s.record_exp * 1000) if s.record_exp else 0
        self._ns = f"{s.key_prefix}:es:" if s.key_prefix else "es:"
        self._write_script = self._client.register_script(_WRITE_LUA)
        self._delete_script = self._client.register_script(_DELETE_LUA)
        self._retrieve_script = self._client.register_script(_RETRIEVE_LUA)
        self._snapshot_script = self._client.register_script(_SNAPSHOT_LUA)

    @classmethod
    def from_settings(cls, settings: Any) -> RedisTrackerStore:
        return cls(settings)

    def __repr__(self) -> str:
        s = self.settings
        user = f"{s.username}@" if s.username else ""
        secret = f":{MASK}@" if s.password is not None and not user else ""
        where = f"{'rediss' if s.use_ssl else 'redis'}://{user or secret}{s.url}:{s.port}/{s.db}"
        return f"RedisTrackerStore({where!r}, key_prefix={s.key_prefix!r})"

    # -- keys and errors -----------------------------------------------------------
    def key(self, kind: str, sender_id: str | None = None) -> str:
        """The Redis key of ``kind`` (log, pos, meta; ids, position, global, outbox)."""
        return f"{self._ns}{kind}:{sender_id}" if sender_id is not None else f"{self._ns}{kind}"

    def conversation_keys(self, sender_id: str) -> list[str]:
        """Every key that holds part of one conversation (each carries ``record_exp``)."""
        return [self.key("log", sender_id), self.key("pos", sender_id), self.key("meta", sender_id)]

    def _keys_for(self, sender_id: str) -> list[str]:
        return [
            *self.conversation_keys(sender_id),
            self.key("ids"),
            self.key("position"),
            self.key("global"),
            self.key("outbox"),
        ]

    def _translate(self, doing: str) -> AbstractContextManager[None]:
        """Driver errors inside become ``BackendUnavailable`` naming ``doing``, password masked."""
        where = f"{self.settings.url}:{self.settings.port}"
        return translate(doing, where, secret_value(self.settings.password))

    def ping(self) -> None:
        """Check the server answers (raises ``BackendUnavailable`` when it does not)."""
        with self._translate("pinging"):
            self._client.ping()

    # -- writes ----------------------------------------------------------------------
    def _write(
        self,
        sender_id: str,
        events: list[dict[str, Any]],
        expected_version: int | None,
        replace: bool,
    ) -> list[StoredEvent]:
        args: list[Any] = [
            sender_id,
            -1 if expected_version is None else expected_version,
            self._ttl_ms,
            1 if self.uses_outbox else 0,
            1 if replace else 0,
        ]
        for event in events:
            args += [
                json.dumps(event),
                _text(str(event.get("event"))),
                _text(intent_name(event) or ""),
                _text(action_name(event) or ""),
                repr(float(event["timestamp"])),
            ]
        with self._translate("appending"):
            ok, version, first = self._write_script(keys=self._keys_for(sender_id), args=args)
        if not ok:
            raise ConcurrencyError(sender_id, expected_version, int(version))
        start = int(version) - len(events)
        return [
            StoredEvent(sender_id, start + i, event, int(first) + i - 1)
            for i, event in enumerate(events, start=1)
        ]

    def _append(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        return self._write(sender_id, events, expected_version, replace=False)

    def _replace(
        self, sender_id: str, events: list[dict[str, Any]], expected_version: int | None
    ) -> list[StoredEvent]:
        """Check, drop and store in one script: nobody sees a half-replaced log."""
        return self._write(sender_id, events, expected_version, replace=True)

    def delete(self, sender_id: str) -> int:
        """Drop the conversation's keys, its id and its entries in the global/outbox streams."""
        self._forget_snapshot(sender_id)
        with self._translate("deleting"):
            return int(self._delete_script(keys=self._keys_for(sender_id), args=[sender_id]))

    def delete_at_version(self, sender_id: str, version: int) -> int:
        """``delete`` in the same script, only while the log holds ``version`` events."""
        self._forget_snapshot(sender_id)
        with self._translate("deleting"):
            args = [sender_id, version]
            removed = int(self._delete_script(keys=self._keys_for(sender_id), args=args))
        if removed < 0:
            raise ConcurrencyError(sender_id, version, -1 - removed)
        return removed

    def _read_snapshot(self, sender_id: str) -> str | None:
        with self._translate("reading the snapshot"):
            data = self._client.hget(self.key("meta", sender_id), "snap")
        if data is None:
            return None
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    def _write_snapshot(self, sender_id: str, version: int, data: str) -> None:
        with self._translate("writing the snapshot"):
            self._snapshot_script(keys=self._keys_for(sender_id), args=[version, data])

    def exclusive(self, name: str, seconds: float) -> AbstractContextManager[bool]:
        """``SET key token NX PX``; released only by its holder (compare and delete)."""
        from eventstore.stores.locks import redis_lock

        return redis_lock(self._client, self.key("lock", name), seconds, self._translate)

    # -- reads -----------------------------------------------------------------------
    def read(self, sender_id: str, after: int = 0) -> list[dict[str, Any]]:
        with self._translate("reading"):
            raw = self._client.lrange(self.key("log", sender_id), max(after, 0), -1)
        return _decode_all(raw)

    def load_checkpoint(self, name: str) -> int | None:
        with self._translate(f"reading checkpoint {name!r}"):
            value = self._client.hget(self.key("checkpoints"), name)
        return None if value is None else int(value)

    def save_checkpoint(self, name: str, position: int) -> None:
        with self._translate(f"saving checkpoint {name!r}"):
            self._client.hset(self.key("checkpoints"), name, position)

    def version(self, sender_id: str) -> int:
        with self._translate("reading the version"):
            return int(self._client.llen(self.key("log", sender_id)))

    def _session_start(self, sender_id: str) -> int:
        with self._translate("reading the session start"):
            start = self._client.hget(self.key("meta", sender_id), "s")
        return int(start) if start else 0

    def _load_session(self, sender_id: str) -> Tracker | None:
        """The current session, read in one atomic script (one round trip)."""
        with self._translate("reading"):
            after, raw = self._retrieve_script(keys=self._keys_for(sender_id), args=[])
        if not raw:
            return None
        events = _decode_all(raw)
        return Tracker.from_events(sender_id, events, version=int(after) + len(events))

    def keys(self) -> Iterator[str]:
        """Conversation ids from the id index (ZSCAN, never KEYS), expired ones left out."""
        ids_key = self.key("ids")
        with self._translate("listing conversations"):
            seconds, micros = self._client.time()
        now_ms = seconds * 1000 + micros // 1000
        seen: set[bytes] = set()
        cursor = 0
        while True:
            with self._translate("listing conversations"):
                cursor, page = self._client.zscan(ids_key, cursor, count=_PAGE)
            for member, deadline in page:
                if deadline > now_ms and member not in seen:
                    seen.add(member)
                    yield member.decode("utf-8")
            if cursor == 0:
                return

    def _query(self, query: EventQuery) -> Iterator[StoredEvent]:
        """One conversation from its lists, or all of them from the global stream, paged.

        Bounds Redis cannot take are answered here, as the SQL store does: a limit of 0 or
        less, or ``after_position`` at or past the largest position, match nothing; a
        negative ``after_position`` filters nothing; a limit past ``sys.maxsize`` (more than
        any store holds) is no limit.
        """
        limit = query.limit
        after = query.after_position
        if (limit is not None and limit <= 0) or (after is not None and after >= _MAX_POSITION):
            return iter(())
        if query.sender_id is not None:
            events = self._query_conversation(query, query.sender_id)
        else:
            events = self._query_global(query)
        return islice(
            filter(query.matches, events), None if limit is None or limit > sys.maxsize else limit
        )

    def _query_conversation(self, query: EventQuery, sender_id: str) -> Iterator[StoredEvent]:
        log, pos = self.key("log", sender_id), self.key("pos", sender_id)
        start = 0
        while True:
            with self._translate("querying"):
                pipe = self._client.pipeline(transaction=True)
                pipe.lrange(log, start, start + _PAGE - 1)
                pipe.lrange(pos, start, start + _PAGE - 1)
                raw, positions = pipe.execute()
            events = _decode_all(raw)
            for offset, (data, position) in enumerate(zip(events, positions, strict=False)):
                yield StoredEvent(sender_id, start + offset + 1, data, int(position))
            if len(raw) < _PAGE:
                return
            start += _PAGE

    def _query_global(self, query: EventQuery) -> Iterator[StoredEvent]:
        """Walk the global stream from ``after_position``; fetch only the events that pass."""
        cursor = f"{max(query.after_position or 0, 0) + 1}-0"  # positions start at 1
        while True:
            with self._translate("querying"):
                page = self._client.xrange(self.key("global"), min=cursor, count=_PAGE)
            wanted = [(entry_id, fields) for entry_id, fields in page if _prefilter(query, fields)]
            if wanted:
                with self._translate("querying"):
                    pipe = self._client.pipeline(transaction=False)
                    for _, fields in wanted:
                        sid = fields[b"s"].decode("utf-8")
                        index = int(fields[b"q"]) - 1
                        pipe.lindex(self.key("log", sid), index)
                        pipe.lindex(self.key("pos", sid), index)
                    fetched = pipe.execute()
                for n, (entry_id, fields) in enumerate(wanted):
                    item, position = fetched[2 * n], fetched[2 * n + 1]
                    expected = int(entry_id.split(b"-", 1)[0])
                    # a deleted or expired conversation (or a newer one under the same id)
                    # leaves entries behind that no longer match its lists: skip them
                    if item is None or position is None or int(position) != expected:
                        continue
                    sid = fields[b"s"].decode("utf-8")
                    yield StoredEvent(sid, int(fields[b"q"]), json.loads(item), expected)
            if len(page) < _PAGE:
                return
            last = int(page[-1][0].split(b"-", 1)[0])
            cursor = f"{last + 1}-0"

    # -- the outbox ------------------------------------------------------------------
    def outbox_pending(self, limit: int = 500) -> list[StoredEvent]:
        """The oldest unacknowledged events, straight from the outbox stream (one XRANGE)."""
        with self._translate("reading the outbox"):
            page = self._client.xrange(self.key("outbox"), count=limit)
        return [
            StoredEvent(
                fields[b"s"].decode("utf-8"),
                int(fields[b"q"]),
                json.loads(fields[b"d"]),
                int(entry_id.split(b"-", 1)[0]),
            )
            for entry_id, fields in page
        ]

    def outbox_ack(self, events: Sequence[StoredEvent]) -> None:
        """XDEL the confirmed events from the outbox stream (by their positions)."""
        ids = [f"{e.position}-0" for e in events if e.position is not None]
        for start in range(0, len(ids), _PAGE):
            with self._translate("acknowledging outbox events"):
                self._client.xdel(self.key("outbox"), *ids[start : start + _PAGE])

    def close(self) -> None:
        super().close()
        with self._translate("closing"):
            self._client.close()


def _decode_all(raw: list[bytes]) -> list[dict[str, Any]]:
    """Parse stored events with one ``json.loads`` over them all (about twice as fast)."""
    return json.loads(b"[" + b",".join(raw) + b"]") if raw else []


def _text(value: str) -> bytes:
    """UTF-8 for the index fields; lone surrogates survive instead of failing the append."""
    return value.encode("utf-8", "surrogatepass")


def _prefilter(query: EventQuery, fields: dict[bytes, bytes]) -> bool:
    """The query's filters on the global stream's index fields, before fetching the event."""
    if query.type_name is not None and fields[b"t"] != _text(query.type_name):
        return False
    if query.intent is not None and fields[b"i"] != _text(query.intent):
        return False
    if query.action is not None and fields[b"a"] != _text(query.action):
        return False
    if query.since is None and query.until is None:
        return True
    stamp = float(fields[b"ts"])
    return not (
        (query.since is not None and stamp < query.since)
        or (query.until is not None and stamp > query.until)
    )


__all__ = ["RedisConfig", "RedisTrackerStore"]
