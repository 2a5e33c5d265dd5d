"""``eventstore run`` as a subprocess: start-up lines, masked secrets, the access log,
graceful shutdown, and two worker processes sharing one PostgreSQL store."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx

from eventstore.testing import new_id, session_start, user
from tests.http.conftest import EVENTSTORE, Running


def test_default_run_warns_masks_the_token_and_shuts_down_cleanly(
    running: list[Running],
) -> None:
    token = "tok-" + new_id("secret")
    run = Running(env={"EVENTSTORE_AUTH_TOKEN": token})  # kept out of `ps`
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


def refused_run(*args: str) -> str:
    """Run ``eventstore run`` expecting it to refuse to start: its one-line error."""
    result = subprocess.run(
        [*EVENTSTORE, "run", "--port", "0", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_workers_with_the_in_memory_store_are_refused() -> None:
    assert "--workers 2 needs a shared store" in refused_run("--workers", "2")


def test_bad_settings_are_one_clear_error(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: sqll\n")
    assert "did you mean 'sql'" in refused_run("--endpoints", str(endpoints))
    assert "cannot read endpoints file" in refused_run("--endpoints", str(tmp_path / "none.yml"))
    assert "'HS256', 'HS384' or 'HS512'" in refused_run("--jwt-method", "RS256")
    assert "max_body_bytes" in refused_run("--max-body-bytes", "0")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        assert f"cannot listen on 127.0.0.1:{port}" in refused_run("--port", port)


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
