"""Fixtures of the privacy tests: one ``tracker_store:`` section per backend, real servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from brokers.base import EventBroker
from eventstore.errors import BrokerUnavailable
from tests.servers.mongo import MONGO_TEST_DB

BACKENDS = ["memory", "sqlite", "postgresql", "mariadb", "redis", "mongo", "dynamo"]


@pytest.fixture(params=BACKENDS)
def store_section(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """A ``tracker_store:`` section of a fresh, empty store on each backend in turn."""
    backend = request.param
    tag = uuid.uuid4().hex[:10]
    if backend == "memory":
        return {"type": "in_memory"}
    if backend == "sqlite":
        return {"type": "sql", "url": f"sqlite:///{tmp_path / 'events.db'}"}
    if backend in ("postgresql", "mariadb"):  # an empty database: retention sees only ours
        fresh = request.getfixturevalue("fresh_database")
        return {"type": "sql", "url": fresh("mysql" if backend == "mariadb" else backend)}
    if backend == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        return {"type": "redis", "url": request.getfixturevalue("redis_url"), "key_prefix": prefix}
    if backend == "mongo":
        url = request.getfixturevalue("mongo_url")
        return {"type": "mongod", "url": url, "db": MONGO_TEST_DB, "collection": f"p_{tag}"}
    server = request.getfixturevalue("dynamo_server")
    return {"type": "dynamo", **server.store_config()}


class SwitchBroker(EventBroker):
    """A broker kept in this process that can be switched off (an extra next to the real ones)."""

    def __init__(self) -> None:
        self.up = True
        self.messages: list[dict[str, Any]] = []

    def publish(self, message: dict[str, Any]) -> None:
        if not self.up:
            raise BrokerUnavailable("the test switched the broker off")
        self.messages.append(message)

    def publish_many(self, messages: Iterable[dict[str, Any]]) -> None:
        batch = list(messages)
        if not self.up:
            raise BrokerUnavailable("the test switched the broker off")
        self.messages.extend(batch)
