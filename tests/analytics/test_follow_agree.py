"""The HTTP stream, ``eventstore events --follow`` and ``store.subscribe`` agree on the log.

The CLI and an SSE client of ``GET /events/stream`` (a real uvicorn server) follow a
PostgreSQL store (gap-free horizon in use) while four threads append; once every event is
stored, the CLI's lines and the stream's messages must both be exactly the Python API's
feed, message for message and in the same position order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from eventstore.server import ServerSettings
from eventstore.stores.sql.store import SQLTrackerStore
from tests.http.conftest import LiveServer
from tests.http.sse_client import SseStream
from tests.servers.sql_fresh import FreshDatabase

THREADS = 4
PER_THREAD = 15
POLL = ("--poll-interval", "0.05")
FOLLOW = (
    "import sys; from eventstore.cli import entrypoint; "
    "sys.argv = ['eventstore', *sys.argv[1:]]; entrypoint()"
)


def test_http_stream_and_cli_follow_equal_the_python_feed(
    fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    url = fresh_database("postgresql")
    store = SQLTrackerStore.from_url(url)
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: sql\n  url: {url}\n")
    store.append("before", [{"event": "user", "text": "already there", "parse_data": {}}])
    follower = subprocess.Popen(
        [sys.executable, "-c", FOLLOW, "events", "--follow", "--endpoints", str(endpoints), *POLL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = LiveServer(SQLTrackerStore.from_url(url), ServerSettings(feed_poll_interval=0.05))

    def write(n: int) -> None:
        for i in range(PER_THREAD):
            store.append(f"c{i % 3}", [{"event": "user", "text": f"{n}-{i}", "parse_data": {}}])

    total = THREADS * PER_THREAD + 1
    try:
        with server.client() as http, SseStream(http) as stream:  # from 0, like the CLI
            threads = [threading.Thread(target=write, args=(n,)) for n in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert follower.stdout is not None
            timer = threading.Timer(120, follower.kill)  # a hung follower fails, never blocks
            timer.start()
            lines = [json.loads(follower.stdout.readline() or "null") for _ in range(total)]
            timer.cancel()
            messages = stream.take(total)
    finally:
        follower.kill()
        follower.communicate()
        server.stop()
    python = [e.as_message() for b in store.subscribe(follow=False) for e in b.events]
    assert len(python) == total
    assert lines == python
    assert [m["data"] for m in messages] == python
    assert [m["id"] for m in messages] == [str(e["position"]) for e in python]
    store.close()
