"""Redis: the machine's server at 127.0.0.1:6379, with a fresh key prefix per test.

Each test gets its own alphanumeric ``key_prefix`` and only that prefix's keys are removed
afterwards (SCAN, never FLUSHDB), so concurrent runs never see each other.
A server that is down fails the tests that need it; it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

REDIS_URL = os.environ.get("EVENTSTORE_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the Redis server the tests use; fails the session's Redis tests when down."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix:`` (SCAN + DEL; other prefixes are left alone)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        batch = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
    finally:
        client.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are removed after the test."""
    prefix = f"t{uuid.uuid4().hex[:16]}"
    yield prefix
    drop_prefix(redis_url, prefix)
