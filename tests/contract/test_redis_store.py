"""The store contract on Redis (127.0.0.1:6379), each test under its own key prefix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventstore.stores.redis import RedisTrackerStore
from eventstore.testing import TrackerStoreContract


class TestRedisStore(TrackerStoreContract):
    @pytest.fixture
    def store(self, redis_url: str, redis_prefix: str) -> Iterator[RedisTrackerStore]:
        store = RedisTrackerStore.from_config({"url": redis_url, "key_prefix": redis_prefix})
        assert isinstance(store, RedisTrackerStore)
        with store:
            yield store


class TestRedisStoreWithTTL(TrackerStoreContract):
    """The same contract with ``record_exp`` set: the TTL path must not change behaviour."""

    @pytest.fixture
    def store(self, redis_url: str, redis_prefix: str) -> Iterator[RedisTrackerStore]:
        store = RedisTrackerStore.from_config(
            {"url": redis_url, "key_prefix": redis_prefix, "record_exp": 600}
        )
        assert isinstance(store, RedisTrackerStore)
        with store:
            yield store
