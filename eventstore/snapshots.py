"""Tracker snapshots: a conversation's current-session state at a version, kept beside the log.

A process that has never seen a conversation reads its snapshot and the log's tail after it
instead of replaying the whole session; the session's events themselves are read only if
someone asks for them (``Tracker.events``). Snapshots are a cache of the log, never the
truth: one from another replay format, for other initial slots, corrupt, or no longer
matching the log is ignored (and a new one written later); ``delete`` and ``replace``
remove them; the log alone rebuilds everything. See ``docs/snapshots.md``.

The state is written by a background thread (``SnapshotWriter``) after a ``save`` or
``retrieve`` that ran ``SNAPSHOT_EVERY`` events past the last snapshot, so no turn waits
for it and a failed write only logs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from eventstore.events import EventDict
from eventstore.lazy_head import _Head
from eventstore.tracker import _EMPTY_MESSAGE, Tracker

logger = logging.getLogger(__name__)

#: The replay's format: bump it whenever replay or this layout changes; snapshots written
#: with another value are ignored and rebuilt from the log.
SNAPSHOT_FORMAT = 2  # 2: the dialogue stack (Rasa Pro) is kept
#: Events a conversation runs past its last snapshot before a new one is written.
SNAPSHOT_EVERY = 50


class SnapshotError(ValueError):
    """A stored snapshot cannot be used (corrupt, another format, other slots); ignored."""


def dump(tracker: Tracker) -> str | None:
    """The snapshot of ``tracker`` as JSON, or None when it is not a snapshot of a session.

    Only a tracker whose events are all stored and start at its current session (what
    ``retrieve`` returns) can stand for the log at its version.
    """
    t = tracker
    count = len(t)
    after = t.version - count
    if count == 0 or t._stored != count or after < 0:
        return None
    if not (t._last_session_started == 0 or (t._last_session_started == -1 and after == 0)):
        return None
    state = {
        "format": SNAPSHOT_FORMAT,
        "version": t.version,
        "count": count,
        "last": t._event_at(count - 1),
        "initial_slots": t._initial_slots,
        "slots": t._slots,
        "paused": t._paused,
        "followup": t._followup,
        "latest_action": t._latest_action,
        "message": dict(t._message),
        "use_text": t._use_text,
        "bot": t._bot,
        "loop": t._loop,
        "input_channel": t._input_channel,
        "after_restart": t._after_restart,
        "last_session_started": t._last_session_started,
        "applied": t._applied,
        "applied_from": t._applied_from,
        "applied_stale": t._applied_stale,
        "loop_names": sorted(t._loop_names),
        "actions_seen": sorted(t._actions_seen),
        "stack": t._stack,
    }
    try:
        return json.dumps(state, separators=(",", ":"))
    except (TypeError, ValueError):  # a slot value that is not JSON: no snapshot
        return None


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise SnapshotError(what)


def _int(state: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = state.get(key)
    _check(type(value) is int and low <= value <= high, f"{key} out of range")
    return value  # type: ignore[return-value]


def _dict_or_none(value: Any, key: str) -> Any:
    _check(value is None or type(value) is dict, f"{key} is not an object")
    return value


def restore(
    sender_id: str,
    data: str | bytes,
    load: Callable[[int, int], list[EventDict]],
    slots: Mapping[str, Any],
) -> Tracker:
    """The tracker a snapshot stands for; its events are read with ``load(after, count)``
    on first use. Raises ``SnapshotError`` for anything that is not a usable snapshot."""
    try:
        state = json.loads(data)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"not JSON: {exc}") from None
    _check(type(state) is dict, "not an object")
    _check(state.get("format") == SNAPSHOT_FORMAT, f"format {state.get('format')!r}")
    _check(state.get("initial_slots") == dict(slots), "other initial slots")
    version = _int(state, "version", 1, 2**63 - 1)
    count = _int(state, "count", 1, version)
    for key in ("slots", "latest_action", "message", "last"):
        _check(type(state.get(key)) is dict, f"{key} is not an object")
    applied = state.get("applied")
    _check(type(applied) is list and len(applied) % 2 == 0, "applied is not a range list")
    applied_from = _int(state, "applied_from", 0, count)
    previous = applied_from
    for value in applied:
        _check(type(value) is int and previous <= value <= count, "applied out of range")
        previous = value
    for key in ("loop_names", "actions_seen"):
        names = state.get(key)
        _check(type(names) is list and all(type(n) is str for n in names), f"{key} not names")
    _check(type(state.get("paused")) is bool, "paused is not a boolean")
    _check(type(state.get("applied_stale")) is bool, "applied_stale is not a boolean")
    _check(state.get("use_text") in (None, True, False), "use_text is not a boolean")
    for key in ("followup", "input_channel"):
        _check(state.get(key) is None or type(state.get(key)) is str, f"{key} not a string")
    last_session = _int(state, "last_session_started", -1, count - 1)
    _check(last_session <= 0, "not a snapshot of the current session")

    tracker = Tracker(sender_id, version=version, slots=slots)
    after = version - count
    tracker._head = _Head(sender_id, version, count, state["last"], lambda: load(after, count))
    tracker._count = tracker._stored = count
    tracker._slots = state["slots"]
    tracker._paused = state["paused"]
    tracker._followup = state["followup"]
    tracker._latest_action = state["latest_action"]
    message = state["message"]
    tracker._message = _EMPTY_MESSAGE if message == _EMPTY_MESSAGE else message
    tracker._use_text = state["use_text"]
    tracker._bot = _dict_or_none(state.get("bot"), "bot")
    tracker._loop = _dict_or_none(state.get("loop"), "loop")
    tracker._input_channel = state["input_channel"]
    tracker._after_restart = _int(state, "after_restart", 0, count)
    tracker._last_session_started = last_session
    tracker._applied = applied
    tracker._applied_from = applied_from
    tracker._applied_stale = state["applied_stale"]
    tracker._loop_names = set(state["loop_names"])
    tracker._actions_seen = set(state["actions_seen"])
    stack = state.get("stack")
    _check(stack is None or type(stack) is list, "stack is not a list")
    tracker._stack = stack
    return tracker


class SnapshotWriter:
    """A background thread writing the latest pending snapshot of each conversation.

    ``write(sender_id, version, data)`` is the store's; a failure is logged, never raised.
    ``discard`` drops a conversation's pending snapshot and waits for one being written
    (``delete``/``replace`` call it first, so no snapshot outlives its log here).
    """

    def __init__(self, write: Callable[[str, int, str], None]) -> None:
        self._write = write
        self._pending: OrderedDict[str, Tracker] = OrderedDict()
        self._busy: str | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, tracker: Tracker) -> None:
        """Queue a snapshot of ``tracker`` (a copy the caller no longer changes)."""
        with self._cond:
            if self._closed:
                return
            queued = self._pending.get(tracker.sender_id)
            if queued is None or queued.version < tracker.version:
                self._pending[tracker.sender_id] = tracker
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="eventstore-snapshots", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def discard(self, sender_id: str) -> None:
        """Forget the conversation's pending snapshot; wait while one is being written."""
        with self._cond:
            self._pending.pop(sender_id, None)
            while self._busy == sender_id:
                self._cond.wait()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued snapshot is written; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._pending and self._busy is None, timeout=timeout
            )

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to ``timeout`` s), then stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                sender_id, tracker = self._pending.popitem(last=False)
                self._busy = sender_id
            try:
                data = dump(tracker)
                if data is not None:
                    self._write(sender_id, tracker.version, data)
            except Exception:  # a snapshot is only a cache: the log is intact
                logger.warning("writing the snapshot of %r failed", sender_id, exc_info=True)
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()


class SnapshotVersions:
    """The version of the last snapshot this process read or queued, per conversation."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._versions: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def due(self, tracker: Tracker, every: int) -> bool:
        """Whether ``tracker`` is ``every`` events past the last snapshot; if so, record it."""
        with self._lock:
            known = self._versions.get(tracker.sender_id, 0)
            if tracker.version - known < every:
                return False
            self._versions[tracker.sender_id] = tracker.version
            self._versions.move_to_end(tracker.sender_id)
            while len(self._versions) > self.size:
                self._versions.popitem(last=False)
            return True

    def seen(self, sender_id: str, version: int) -> None:
        """Record a snapshot read from the store."""
        with self._lock:
            self._versions[sender_id] = version
            self._versions.move_to_end(sender_id)
            while len(self._versions) > self.size:
                self._versions.popitem(last=False)

    def forget(self, sender_id: str) -> None:
        with self._lock:
            self._versions.pop(sender_id, None)
