"""Named locks that keep a maintenance job (retention) to one process at a time.

Each backend holds its lock in its own server (see ``TrackerStore.exclusive``): the
in-process lock of the in-memory store, SQLite's lock file, Redis' ``SET NX PX`` key and
MongoDB's lock document are here; SQL servers and DynamoDB keep theirs in their store.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

_UNLOCK_LUA = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\nreturn 0"
)

_local_guard = threading.Lock()
_local: dict[str, threading.Lock] = {}


@contextmanager
def local_lock(name: str) -> Iterator[bool]:
    """Yield True if this process took lock ``name`` (no wait), False if it is held."""
    with _local_guard:
        lock = _local.setdefault(name, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


@contextmanager
def file_lock(path: Path) -> Iterator[bool]:
    """Yield True if this process took an exclusive ``flock`` on ``path`` (no wait).

    The kernel releases it when the process dies, so a crash never leaves it held.
    """
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def redis_lock(
    client: Any, key: str, seconds: float, translate: Callable[[str], AbstractContextManager[None]]
) -> Iterator[bool]:
    """``SET key token NX PX``; released by a compare-and-delete, so only by its holder."""
    token = secrets.token_hex(8)
    with translate("taking a lock"):
        taken = bool(client.set(key, token, nx=True, px=max(int(seconds * 1000), 1)))
    try:
        yield taken
    finally:
        if taken:
            with translate("releasing a lock"):
                client.eval(_UNLOCK_LUA, 1, key, token)


@contextmanager
def mongo_lock(
    locks: Any, name: str, seconds: float, translate: Callable[[], AbstractContextManager[None]]
) -> Iterator[bool]:
    """Document ``{_id: name, token, expires}``: taken when absent or expired (an upsert
    that loses the race hits the unique ``_id``: ``translate`` makes it a conflict)."""
    from eventstore.errors import ConcurrencyError, EventStoreError

    token, now = secrets.token_hex(8), time.time()
    try:
        with translate():
            locks.update_one(
                {"_id": name, "expires": {"$lt": now}},
                {"$set": {"token": token, "expires": now + seconds}},
                upsert=True,
            )
        taken = True
    except ConcurrencyError:  # another process holds it
        taken = False
    try:
        yield taken
    finally:
        if taken:
            with suppress(EventStoreError), translate():
                locks.delete_one({"_id": name, "token": token})
