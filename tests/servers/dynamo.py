"""DynamoDB: a moto server in a subprocess on a free loopback port, one request at a time.

Two moto 5.2.5 traps are handled in the server process (see
``shared/reference/test-services.md``): its threaded server checks a condition and then
writes without a lock, so requests are serialised by a lock around the WSGI app (real
DynamoDB is linearizable per item; without the lock concurrency tests would test moto's
race); and ``TransactWriteItems`` deep-copies the whole table once per item for its
rollback, so the server backs up only the items a transaction touches instead.

Run as a script (``python tests/servers/dynamo.py``) it serves and prints its port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


@dataclass(frozen=True)
class DynamoServer:
    """A running moto endpoint and the process serving it."""

    url: str
    process: subprocess.Popen[str]

    def store_config(self, tablename: str | None = None, **extra: Any) -> dict[str, Any]:
        """An endpoints.yml section for a ``dynamo`` store on this endpoint (a fresh table)."""
        return {
            "tablename": tablename or unique_table(),
            "region": REGION,
            "endpoint_url": self.url,
            **CREDENTIALS,
            **extra,
        }

    def client(self) -> Any:
        """A raw boto3 DynamoDB client for this endpoint."""
        import boto3

        return boto3.client("dynamodb", endpoint_url=self.url, region_name=REGION, **CREDENTIALS)

    def stop(self) -> None:
        """Stop the server process and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def unique_table(prefix: str = "es-test") -> str:
    """A table name no other test (or concurrent test run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def start_server(timeout: float = 30.0) -> DynamoServer:
    """Start the serialised moto server in a subprocess; fail clearly if it cannot start.

    Its request log goes to a temporary file (a pipe nobody reads would fill and stall it).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile(mode="w+") as log:  # the child keeps its own handle
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        process.stdout.close()
        if not line.startswith("PORT "):
            process.kill()
            process.wait(timeout)
            log.seek(0)
            raise RuntimeError(f"the moto DynamoDB server did not start: {log.read()[-2000:]}")
    return DynamoServer(url=f"http://127.0.0.1:{int(line.split()[1])}", process=process)


@pytest.fixture(scope="session")
def dynamo_server() -> Iterator[DynamoServer]:
    """The moto DynamoDB endpoint for the whole test session, stopped at the end."""
    try:
        server = start_server()
    except Exception as exc:  # a missing server is a failure, never a skip
        pytest.fail(f"cannot start the moto DynamoDB server: {exc}")
    yield server
    server.stop()


# -- the server process ------------------------------------------------------------------
def _serialised(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """Wrap a WSGI app so that one request at a time runs in it, body included."""
    import threading

    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            result = app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return wrapped


def _patch_transactions() -> None:
    """Make moto's TransactWriteItems roll back only the items it touched."""
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items

    class _NoTableCopy:
        """Stands in for ``copy`` in moto's module: tables are not deep-copied."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[Any, Any, Any, Any]] = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key")
            if key is None and "Item" in op:
                key = {table.hash_key_attr: op["Item"].get(table.hash_key_attr)}
                if table.range_key_attr:
                    key[table.range_key_attr] = op["Item"].get(table.range_key_attr)
            try:
                hash_key, range_key = self.get_keys_value(table, key)
            except Exception:
                continue
            current = table.get_item(hash_key, range_key)
            backups.append((table, hash_key, range_key, copy.deepcopy(current)))
        saved = models.copy
        models.copy = _NoTableCopy  # type: ignore[assignment]
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(backups):
                if item is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = item
                else:
                    table.items[hash_key] = item
            raise
        finally:
            models.copy = saved

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _serve() -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    _patch_transactions()
    app = _serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"PORT {server.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    _serve()
