"""HTTP load benchmark: ``eventstore run`` in a subprocess, an asyncio httpx client here.

Reports requests/s and p50/p99 latency for POST events (one 5-event turn per request) and
GET tracker, and beside them the store's own cost per call measured in this process on a
store of the same kind doing the same work (POST: append + retrieve + current_state + JSON;
GET: retrieve_full_tracker + current_state + JSON), so the HTTP overhead (sockets, HTTP
parsing, FastAPI, the threadpool hop) shows. It also prints the server's CPU time per
request (from /proc), which stays meaningful on a busy machine where wall-clock latency
mostly measures the wait for a core.

    python -m bench.bench_http [--requests 2000] [--concurrency 16] [--conversations 50]
                               [--store memory|sqlite|postgresql | --endpoints endpoints.yml]

``--store sqlite``/``postgresql`` use a temporary file / a throwaway database; with
``--endpoints`` this run's conversations are deleted from that store at the end.

The number of requests is bounded; nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.common import fresh_postgres, turn_events
from eventstore.endpoints import load_endpoints
from eventstore.factory import create_from_endpoints, create_tracker_store
from eventstore.stores.base import TrackerStore
from eventstore.testing import session_start


def start_server(endpoints: str | None) -> tuple[subprocess.Popen[str], str]:
    """``eventstore run --port 0`` (no access log); returns the process and its URL."""
    cmd = [
        sys.executable,
        "-c",
        "from eventstore.cli import entrypoint; entrypoint()",
        "run",
        "--port",
        "0",
        "--no-access-log",
    ]
    if endpoints:
        cmd += ["--endpoints", endpoints]
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            url = match.group(1)
            break
    else:
        raise SystemExit("eventstore run did not start")
    for _ in range(100):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("eventstore run is not healthy")


async def load(
    url: str,
    requests: list[tuple[str, str, Any]],
    concurrency: int,
) -> tuple[float, list[float]]:
    """Send ``requests`` with at most ``concurrency`` in flight; (seconds, latencies)."""
    latencies: list[float] = []
    queue: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                method, path, body = queue.get_nowait()
                start = time.perf_counter()
                response = await client.request(method, path, json=body)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(
    proc: subprocess.Popen[str], url: str, requests: list[tuple[str, str, Any]], concurrency: int
) -> tuple[float, list[float], float]:
    """Run one load phase: (seconds, latencies, server CPU seconds per request).

    The client's own CPU per request is printed too: on a small machine the httpx client,
    not the server, is often what limits requests/s.
    """
    before = cpu_seconds(proc.pid)
    mine = resource.getrusage(resource.RUSAGE_SELF)
    seconds, latencies = asyncio.run(load(url, requests, concurrency))
    after = resource.getrusage(resource.RUSAGE_SELF)
    client = (after.ru_utime + after.ru_stime - mine.ru_utime - mine.ru_stime) / len(requests)
    CLIENT_CPU.append(client)
    return seconds, latencies, (cpu_seconds(proc.pid) - before) / len(requests)


#: Client CPU seconds per request of each phase, in order.
CLIENT_CPU: list[float] = []


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_calls(calls: list[Callable[[], Any]]) -> list[float]:
    """Seconds of each call, one after the other."""
    samples = []
    for call in calls:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def make_store(endpoints: str | None) -> TrackerStore:
    if endpoints is None:
        return create_tracker_store(None)
    return create_from_endpoints(load_endpoints(endpoints))


def report(name: str, measured: tuple[float, list[float], float], store: list[float]) -> None:
    seconds, latencies, cpu = measured
    rps = len(latencies) / seconds
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    s50, s99 = percentile(store, 0.5), percentile(store, 0.99)
    print(
        f"{name:<12} HTTP {rps:6.0f} req/s  p50 {p50 * 1000:6.2f} ms  p99 {p99 * 1000:7.2f} ms"
        f"  server CPU {cpu * 1000:5.2f} ms/req | store {1 / statistics.mean(store):6.0f}/s"
        f"  p50 {s50 * 1000:5.3f} ms  p99 {s99 * 1000:6.3f} ms"
        f" | p50 x{p50 / s50:5.1f}  CPU x{cpu / statistics.mean(store):5.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--endpoints", default=None, help="an endpoints.yml naming the store")
    parser.add_argument(
        "--store",
        choices=("memory", "sqlite", "postgresql"),
        default="memory",
        help="without --endpoints: in-memory, a temporary SQLite file or a fresh PostgreSQL db",
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.endpoints is None and args.store != "memory":
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-http-")))
            url = (
                f"sqlite:///{tmp / 'http.db'}"
                if args.store == "sqlite"
                else stack.enter_context(fresh_postgres())
            )
            args.endpoints = str(tmp / "endpoints.yml")
            Path(args.endpoints).write_text(f"tracker_store:\n  type: sql\n  url: {url}\n")
        run_benchmark(args)


def run_benchmark(args: argparse.Namespace) -> None:
    """Load the server, then do the same store work here, and print both."""

    run = uuid.uuid4().hex[:8]
    ids = [f"bench-http-{run}-{i}" for i in range(args.conversations)]

    def post_body(i: int) -> list[dict[str, Any]]:
        events = turn_events(i)
        return session_start() + events if i < len(ids) else events

    posts = [
        ("POST", f"/conversations/{ids[i % len(ids)]}/tracker/events", post_body(i))
        for i in range(args.requests)
    ]
    gets = [
        ("GET", f"/conversations/{ids[i % len(ids)]}/tracker", None) for i in range(args.requests)
    ]

    proc, url = start_server(args.endpoints)
    try:
        # Warm up (imports, connection pools) on other conversations.
        warm = [
            ("POST", f"/conversations/warm-{run}-{i}/tracker/events", turn_events(i))
            for i in range(50)
        ]
        asyncio.run(load(url, warm, args.concurrency))
        version = [("GET", "/version", None)] * args.requests
        floor = phase(proc, url, version, args.concurrency)
        post = phase(proc, url, posts, args.concurrency)
        get = phase(proc, url, gets, args.concurrency)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)

    # The same work on a store in this process (a separate store of the same kind).
    local_ids = [f"{i}-local" for i in ids]
    store = make_store(args.endpoints)
    try:

        def post_events(cid: str, events: list[dict[str, Any]]) -> bytes:
            # What the route does with the store: append, then the current session's JSON.
            store.append(cid, events)
            tracker = store.retrieve(cid)
            assert tracker is not None
            return json.dumps(tracker.current_state()).encode()

        appends = time_calls(
            [
                partial(post_events, local_ids[i % len(ids)], post_body(i))
                for i in range(args.requests)
            ]
        )

        def get_tracker(cid: str) -> bytes:
            tracker = store.retrieve_full_tracker(cid)
            assert tracker is not None
            return json.dumps(tracker.current_state()).encode()

        reads = time_calls(
            [partial(get_tracker, local_ids[i % len(ids)]) for i in range(args.requests)]
        )
        # this run's conversations, the server's too when it shares the database
        for cid in [*local_ids, *ids, *(f"warm-{run}-{i}" for i in range(50))]:
            store.delete(cid)
        kind = type(store).__name__
    finally:
        store.close()

    turns = args.requests // len(ids)
    print(
        f"{kind}: {args.requests} requests per route, {args.concurrency} in flight, "
        f"{len(ids)} conversations of {turns} turns (5 events/turn) at the end"
    )
    seconds, latencies, cpu = floor
    print(
        f"{'GET version':<12} HTTP {len(latencies) / seconds:6.0f} req/s"
        f"  p50 {percentile(latencies, 0.5) * 1000:6.2f} ms"
        f"  p99 {percentile(latencies, 0.99) * 1000:7.2f} ms  server CPU {cpu * 1000:5.2f} ms/req"
        "  (no store call: the framework's floor)"
    )
    report("POST events", post, appends)
    report("GET tracker", get, reads)
    shown = ", ".join(f"{c * 1000:.2f}" for c in CLIENT_CPU[-3:])
    print(f"client (httpx) CPU ms/request for the three phases: {shown}")


if __name__ == "__main__":
    main()
