"""A real uvicorn server in a thread, over a real store, for the HTTP tests.

``backend`` runs a test on the in-memory store, SQLite (a temp file) and PostgreSQL (the
session's fresh database). Ids come from ``new_id`` so tests sharing the PostgreSQL
database never see each other's conversations.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from eventstore.factory import create_tracker_store
from eventstore.server import ServerSettings, create_app
from eventstore.server.serve import bind
from eventstore.stores.base import TrackerStore


class LiveServer:
    """uvicorn serving ``create_app(store, settings)`` on a free loopback port, in a thread."""

    def __init__(self, store: TrackerStore, settings: ServerSettings) -> None:
        self.store = store
        self.app = create_app(store, settings)
        sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the HTTP server did not start")
            time.sleep(0.01)
        self._sock = sock

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for this server."""
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)

    def stop(self) -> None:
        """Graceful shutdown: the app's lifespan closes the store."""
        self.server.should_exit = True
        self.thread.join(15)
        self._sock.close()


def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> TrackerStore:
    """A store of the named backend; PostgreSQL uses the session's fresh database."""
    if backend == "memory":
        return create_tracker_store({"type": "in_memory"})
    if backend == "sqlite":
        return create_tracker_store({"type": "sql", "url": f"sqlite:///{tmp_path / 'http.db'}"})
    url = request.getfixturevalue("postgres_url")
    return create_tracker_store({"type": "sql", "url": url})


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the store a test runs against."""
    return str(request.param)


@pytest.fixture
def start_server(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., LiveServer]]:
    """Start servers (``start_server(backend, **settings)``); all are stopped afterwards."""
    servers: list[LiveServer] = []

    def start(backend: str = "memory", **settings: Any) -> LiveServer:
        store = make_store(backend, tmp_path, request)
        server = LiveServer(store, ServerSettings(**settings))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(backend: str, start_server: Callable[..., LiveServer]) -> LiveServer:
    """A server without auth on the parametrised backend."""
    return start_server(backend)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    """An httpx client of ``server``."""
    with server.client() as http:
        yield http


EVENTSTORE = [sys.executable, "-c", "from eventstore.cli import entrypoint; entrypoint()"]


class Running:
    """A running ``eventstore run``; its output is collected in a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*EVENTSTORE, "run", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = self._wait_for_url()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = re.search(r"listening on (http://\S+)", line)
                if match:
                    return self._wait_ready(match.group(1))
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"eventstore run exited early:\n{self.output}")
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"eventstore run did not start:\n{self.output}")

    def _wait_ready(self, url: str) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"eventstore run never became healthy:\n{self.output}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        """SIGTERM, then wait: the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._reader.join(5)
        return code


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        run.stop()
