"""MongoDB: a SecantusDB server (MongoDB wire protocol) started in-process for the session.

It binds a free loopback port, keeps its data in memory and advertises a single-node
replica set, so transactions work as on a real replica set. Each test class or test uses
its own collection name, so concurrent runs never see each other. A server that cannot
start fails the tests that need it; they are never skipped.

Transactions left open by a killed client are aborted after 5 s (MongoDB's
``transactionLifetimeLimitSeconds``, 60 s by default), the setting docs/mongo.md
recommends: an append killed mid-way blocks its conversation only that long.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

MONGO_TEST_DB = "eventstore_test"


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """``mongodb://127.0.0.1:<port>/`` of a fresh in-memory SecantusDB, stopped at the end."""
    try:
        from secantus import SecantusDBServer

        server = SecantusDBServer(
            host="127.0.0.1", port=0, storage_path=":memory:", transaction_lifetime_seconds=5
        )
        server.start()
    except Exception as exc:  # any failure to start is a failed test, never a skip
        pytest.fail(f"the SecantusDB (MongoDB-wire) test server did not start: {exc!r}")
    try:
        yield str(server.uri)
    finally:
        server.stop()


@pytest.fixture
def mongo_collection() -> str:
    """A collection name no other test uses."""
    return f"events_{uuid.uuid4().hex[:12]}"
