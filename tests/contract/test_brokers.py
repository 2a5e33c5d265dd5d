"""The broker contract suite against every built-in broker, each read by its plain client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from brokers import create_broker
from brokers.base import EventBroker
from brokers.file import FileEventBroker
from brokers.sql import SQLEventBroker
from brokers.testing import ARRIVAL_TIMEOUT, Consumer, EventBrokerContract


class FileConsumer:
    """Reads complete JSON lines appended to the file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def __call__(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(received) < count:
            if self.path.exists():
                with self.path.open("rb") as handle:
                    handle.seek(self.offset)
                    chunk = handle.read()
                complete = chunk[: chunk.rfind(b"\n") + 1]
                self.offset += len(complete)
                received.extend(json.loads(line) for line in complete.splitlines())
            if len(received) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return received


class SQLConsumer:
    """Selects rows with an id above the last one seen, as a SQL consumer would."""

    def __init__(self, url: str, table: str) -> None:
        self.engine = sa.create_engine(url)
        self.table = table
        self.last_id = 0

    def __call__(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        query = sa.text(
            f"SELECT id, sender_id, data FROM {self.table} WHERE id > :last ORDER BY id"
        )
        while len(received) < count:
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(query, {"last": self.last_id}).all()
            except sa.exc.OperationalError:  # the table appears with the first publish
                rows = []
            for row in rows:
                self.last_id = row.id
                body = json.loads(row.data)
                assert body["sender_id"] == row.sender_id
                received.append(body)
            if len(received) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return received


class TestFileBroker(EventBrokerContract):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "rasa_event.log"

    @pytest.fixture
    def broker(self, path: Path) -> Iterator[EventBroker]:
        broker = create_broker({"type": "file", "path": str(path), "fsync": True})
        assert isinstance(broker, FileEventBroker)
        yield broker
        broker.close()

    @pytest.fixture
    def consume(self, path: Path) -> Consumer:
        return FileConsumer(path)


class _SQLBrokerContract(EventBrokerContract):
    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def table(self) -> str:
        return f"broker_{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def broker(self, database_url: str, table: str) -> Iterator[EventBroker]:
        broker = create_broker({"type": "sql", "url": database_url, "table_name": table})
        assert isinstance(broker, SQLEventBroker)
        yield broker
        broker.close()
        engine = sa.create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()

    @pytest.fixture
    def consume(self, database_url: str, table: str) -> Iterator[Consumer]:
        consumer = SQLConsumer(database_url, table)
        yield consumer
        consumer.engine.dispose()


class TestSQLiteBroker(_SQLBrokerContract):
    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'events.db'}"


class TestPostgreSQLBroker(_SQLBrokerContract):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url
