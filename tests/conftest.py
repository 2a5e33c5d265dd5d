"""Shared test setup: every module in tests/servers/ is a plugin providing server fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = sorted(
    f"tests.servers.{p.stem}"
    for p in (Path(__file__).parent / "servers").glob("*.py")
    if p.stem != "__init__"
)

#: Server marker -> the fixtures (or parameter values) through which a test uses that server.
SERVER_MARKERS: dict[str, frozenset[str]] = {
    "postgres": frozenset({"postgres_url", "postgresql"}),
    "mysql": frozenset({"mysql_url", "mysql", "mariadb"}),
    "redis": frozenset({"redis_url", "redis_prefix", "redis_server", "redis_tls_server", "redis"}),
    "mongo": frozenset({"mongo_url", "mongo_collection", "mongo", "mongod", "mongodb"}),
    "dynamo": frozenset({"dynamo_server", "dynamo", "dynamodb"}),
    "kafka": frozenset({"kafka_bootstrap", "kafka_topic", "kafka"}),
    "rabbitmq": frozenset({"rabbitmq_server", "rabbit_topology", "rabbitmq", "pika"}),
    "rasa": frozenset({"rasa_python", "rasa_bot_dir", "rasa_env", "rasa_plugin_site"}),
    "browser": frozenset({"browser", "chromium", "driver"}),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the servers it uses (``-m postgres``, ``-m "not kafka"``)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            used |= {str(v).lower() for v in callspec.params.values() if isinstance(v, str)}
            used |= {part.lower() for part in callspec.id.split("-")}
        for marker, names in SERVER_MARKERS.items():
            if used & names:
                item.add_marker(getattr(pytest.mark, marker))
