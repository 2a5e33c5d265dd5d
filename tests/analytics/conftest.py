"""``feed_backend``: a tracker_store section for each backend with global positions.

SQL backends get a database of their own (``fresh_database``), Redis a key prefix and
MongoDB a collection, so the feed a test reads holds only the events it wrote.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

FEED_BACKENDS = ["sqlite", "postgresql", "mariadb", "redis", "mongo"]


@pytest.fixture(params=FEED_BACKENDS)
def feed_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A store config on its own empty database, prefix or collection."""
    name = request.param
    if name in ("sqlite", "postgresql", "mariadb"):
        fresh = request.getfixturevalue("fresh_database")
        return {"type": "sql", "url": fresh("mysql" if name == "mariadb" else name)}
    if name == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        return {"type": "redis", "url": request.getfixturevalue("redis_url"), "key_prefix": prefix}
    url = request.getfixturevalue("mongo_url")
    return {"type": "mongod", "url": url, "db": "feed", "collection": f"f_{uuid.uuid4().hex[:10]}"}
