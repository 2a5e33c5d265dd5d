"""``eventstore run`` as a subprocess: start-up lines, masked secrets, the access log,
graceful shutdown, and two worker processes sharing one PostgreSQL store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from eventstore.testing import new_id, session_start, user

EVENTSTORE = [sys.executable, "-c", "from eventstore.cli import entrypoint; entrypoint()"]


class Running:
    """A running ``eventstore run``; its output is collected in a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*EVENTSTORE, "run", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
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


def test_default_run_warns_masks_the_token_and_shuts_down_cleanly(
    running: list[Running],
) -> None:
    token = "tok-" + new_id("secret")
    run = Running("--auth-token", token)
    running.append(run)
    assert "tracker store: InMemoryTrackerStore" in run.output
    assert "history is lost on restart" in run.output
    assert "event broker: none" in run.output
    assert "auth: token" in run.output
    cid = new_id("cli")
    response = httpx.post(
        f"{run.url}/conversations/{cid}/tracker/events", params={"token": token}, json=user("hi")
    )
    assert response.status_code == 200
    assert httpx.get(f"{run.url}/version", params={"token": "wrong"}).status_code == 401
    assert run.stop() == 0
    assert f"/conversations/{cid}/tracker/events?token=***" in run.output
    assert token not in run.output
    assert "store closed" in run.output


def test_workers_with_the_in_memory_store_are_refused() -> None:
    result = subprocess.run(
        [*EVENTSTORE, "run", "--port", "0", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "--workers 2 needs a shared store" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_endpoints_file_is_one_clear_error(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: sqll\n")
    result = subprocess.run(
        [*EVENTSTORE, "run", "--port", "0", "--endpoints", str(endpoints)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "did you mean 'sql'" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_workers_share_one_postgresql_store(
    running: list[Running], postgres_url: str, tmp_path: Path
) -> None:
    # PostgreSQL here trusts local connections, so the password is never checked: it is
    # only there to show that start-up masks it.
    password = "hunter2-" + new_id("pw")
    url = postgres_url.replace("postgres@", f"postgres:{password}@", 1)
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: sql\n  url: {url}\n")
    run = Running("--endpoints", str(endpoints), "--workers", "2")
    running.append(run)
    assert "tracker store: SQLTrackerStore" in run.output
    assert "postgres:***@" in run.output
    assert password not in run.output
    assert "workers: 2" in run.output

    cid = new_id("workers")
    assert (
        httpx.post(
            f"{run.url}/conversations/{cid}/tracker/events", json=session_start()
        ).status_code
        == 200
    )
    writers: set[str] = set()
    readers: set[str] = set()
    crossed = 0
    # A new connection per request: the kernel hands each to whichever worker accepts.
    for i in range(300):
        posted = httpx.post(f"{run.url}/conversations/{cid}/tracker/events", json=user(f"m{i}"))
        assert posted.status_code == 200
        writer = posted.headers["x-eventstore-worker"]
        got = httpx.get(f"{run.url}/conversations/{cid}/tracker", params={"include_events": "ALL"})
        reader = got.headers["x-eventstore-worker"]
        # Whichever worker answers has every event, including the one just written.
        assert len(got.json()["events"]) == 3 + i + 1
        assert got.json()["latest_message"]["text"] == f"m{i}"
        writers.add(writer)
        readers.add(reader)
        if writer != reader:
            crossed += 1
        if len(writers | readers) >= 2 and crossed >= 3:
            break
    assert len(writers | readers) == 2, "only one worker ever answered"
    assert crossed >= 3
    # Metrics add up across the workers, whichever one answers the scrape.
    posts = 1 + i + 1
    for _ in range(4):
        text = httpx.get(f"{run.url}/metrics").text
        assert f'eventstore_appends_total{{operation="append"}} {float(posts)}' in text, text
    assert run.stop() == 0
