"""``backend``: an endpoints.yml ``tracker_store`` section for each real backend in turn.

Every reliability test that takes ``backend`` runs once per backend, each against its real
server (a fresh database, key prefix, collection or table per test).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ["sqlite", "postgresql", "mariadb", "redis", "mongo", "dynamo"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """A store config for one backend; unique names keep tests apart."""
    name = request.param
    tag = uuid.uuid4().hex[:10]
    if name == "sqlite":
        return {"type": "sql", "dialect": "sqlite", "db": str(tmp_path / "rel.db")}
    if name == "postgresql":
        return {"type": "sql", "url": request.getfixturevalue("postgres_url")}
    if name == "mariadb":
        return {"type": "sql", "url": request.getfixturevalue("mysql_url")}
    if name == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        return {"type": "redis", "url": request.getfixturevalue("redis_url"), "key_prefix": prefix}
    if name == "mongo":
        url = request.getfixturevalue("mongo_url")
        return {"type": "mongod", "url": url, "db": "reliability", "collection": f"rel_{tag}"}
    server = request.getfixturevalue("dynamo_server")
    return {"type": "dynamo", **server.store_config()}
