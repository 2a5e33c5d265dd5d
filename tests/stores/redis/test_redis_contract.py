"""The store contract on Redis (127.0.0.1:6379), each test under its own key prefix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from brokers.file import FileEventBroker
from eventstore.relay import relay_of, with_broker
from eventstore.stores.redis.store import RedisConfig, RedisTrackerStore
from eventstore.testing import (
    OutboxContract,
    PositionsContract,
    QueryContract,
    SnapshotContract,
    TrackerStoreContract,
)


class TestRedisStore(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    @pytest.fixture
    def store(self, redis_url: str, redis_prefix: str) -> Iterator[RedisTrackerStore]:
        store = RedisTrackerStore.from_config({"url": redis_url, "key_prefix": redis_prefix})
        assert isinstance(store, RedisTrackerStore)
        with store:
            yield store


class TestRedisStoreWithTTL(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    """The same contract with ``record_exp`` set: the TTL path must not change behaviour."""

    @pytest.fixture
    def store(self, redis_url: str, redis_prefix: str) -> Iterator[RedisTrackerStore]:
        store = RedisTrackerStore.from_config(
            {"url": redis_url, "key_prefix": redis_prefix, "record_exp": 600}
        )
        assert isinstance(store, RedisTrackerStore)
        with store:
            yield store


class TestRedisStoreWithOutbox(
    TrackerStoreContract, QueryContract, PositionsContract, OutboxContract, SnapshotContract
):
    """The same contract with a broker attached: every append also fills the outbox."""

    @pytest.fixture
    def store(
        self, redis_url: str, redis_prefix: str, tmp_path: Path
    ) -> Iterator[RedisTrackerStore]:
        broker = FileEventBroker(path=tmp_path / "events.jsonl")
        settings = RedisConfig(url=redis_url, key_prefix=redis_prefix)
        store = with_broker(RedisTrackerStore(settings), broker)
        assert store.uses_outbox
        with store:
            yield store
            # the relay publishes everything stored, and only then empties the outbox
            assert relay_of(store).stop(drain_timeout=10)
            assert store.outbox_pending() == []

    @pytest.fixture
    def outbox_store(self, redis_url: str, redis_prefix: str) -> Iterator[RedisTrackerStore]:
        """The same keys without the relay, which would drain the outbox under the test."""
        with RedisTrackerStore(RedisConfig(url=redis_url, key_prefix=redis_prefix)) as store:
            yield store
