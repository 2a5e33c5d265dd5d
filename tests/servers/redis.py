"""Redis: the machine's server at 127.0.0.1:6379, with a fresh key prefix per test.

Each test gets its own alphanumeric ``key_prefix`` and only that prefix's keys are removed
afterwards (SCAN, never FLUSHDB), so concurrent runs never see each other.
A server that is down fails the tests that need it; it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port

REDIS_URL = os.environ.get("EVENTSTORE_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the Redis server the tests use; fails the session's Redis tests when down."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix:`` (SCAN + DEL; other prefixes are left alone)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        batch = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
    finally:
        client.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are removed after the test."""
    prefix = f"t{uuid.uuid4().hex[:16]}"
    yield prefix
    drop_prefix(redis_url, prefix)


class RedisServer:
    """A throwaway ``redis-server`` on a free port, for tests that stop and restart it.

    ``args`` are more ``redis-server`` options. With ``tls=True`` it listens only for TLS,
    with a fresh CA, a server certificate for 127.0.0.1 and a client certificate
    (``files``) that it requires from clients.
    """

    def __init__(self, directory: str, tls: bool = False, args: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.args = args
        self.port = free_port()
        self.tls = tls
        self.files: dict[str, str] = _make_certificates(directory) if tls else {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait (at most 10 s) until it answers PING."""
        import redis

        listen: tuple[str, ...] = ("--port", str(self.port))
        if self.tls:
            listen = (
                *("--port", "0", "--tls-port", str(self.port)),
                *("--tls-cert-file", self.files["server_cert"]),
                *("--tls-key-file", self.files["server_key"]),
                *("--tls-ca-cert-file", self.files["ca"]),
            )
        self.process = subprocess.Popen(
            [
                *("redis-server", *listen, "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "yes", "--dir", self.directory),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        tls: dict[str, object] = {}
        if self.tls:
            tls = {
                "ssl": True,
                "ssl_certfile": self.files["client_cert"],
                "ssl_keyfile": self.files["client_key"],
                "ssl_ca_certs": self.files["ca"],
            }
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_connect_timeout=1,
            **tls,  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.exceptions.ConnectionError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"redis-server on port {self.port} did not start")
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM; it writes its append-only file first)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def _make_certificates(directory: str) -> dict[str, str]:
    """A CA, and server (127.0.0.1) and client certificates it signed, made with openssl."""
    path = Path(directory)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=path)

    openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
        *("-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=eventstore test CA"),
    )
    (path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl(
            *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key"),
            *("-out", f"{name}.csr", "-subj", f"/CN={name}"),
        )
        openssl(
            *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
            *("-CAcreateserial", "-days", "1", "-out", f"{name}.crt", "-extfile", "san.ext"),
        )
    return {
        "ca": str(path / "ca.crt"),
        "server_cert": str(path / "server.crt"),
        "server_key": str(path / "server.key"),
        "client_cert": str(path / "client.crt"),
        "client_key": str(path / "client.key"),
    }


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private ``redis-server`` (append-only file on) that the test may stop and start."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(str(tmp_path))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_tls_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private ``redis-server`` that speaks only TLS and requires a client certificate."""
    if shutil.which("redis-server") is None or shutil.which("openssl") is None:
        pytest.fail("redis-server and openssl are needed (apt-get install redis-server openssl)")
    server = RedisServer(str(tmp_path), tls=True)
    server.start()
    yield server
    server.stop()
