"""The HTTP service under load: ``eventstore run`` with 1, 2 and 4 workers and two separate
server processes on one PostgreSQL database, loaded from a separate process.

    .venv/bin/python -m bench.bench_http [--turns 2000] [--clients 32] [--per-conversation 20]
                                         [--configs w1,w2,w4,p2] [--endpoints endpoints.yml]

Without ``--endpoints`` the servers share a throwaway PostgreSQL database created (and
dropped) here. A bot turn is one ``POST /conversations/<id>/tracker/events`` of 5 events
(the route appends them and answers the current session's tracker JSON). The load comes
from ``bench.loadgen`` in a subprocess: ``--clients`` keep-alive connections, each playing
one conversation after another (``--per-conversation`` turns each). For every
configuration: turns/s, p50/p99 latency, the load generator's own CPU per turn, and the
check that every turn sent is stored exactly once, in order (no lost, no duplicated
event). Beside them, the Python API in this process doing the same turns (``append`` +
``retrieve`` + ``current_state`` + JSON) on one thread and on four. Nothing is asserted
about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench.common import fresh_postgres
from bench.loadgen import conversation_id, turn_body
from eventstore.endpoints import load_endpoints
from eventstore.factory import create_from_endpoints
from eventstore.stores.base import EventQuery, TrackerStore

#: name -> (server processes, workers per process)
CONFIGS = {"w1": (1, 1), "w2": (1, 2), "w4": (1, 4), "p2": (2, 1)}
LABELS = {
    "w1": "1 process, 1 worker",
    "w2": "1 process, 2 workers",
    "w4": "1 process, 4 workers",
    "p2": "2 processes, 1 worker each",
}


def start_server(endpoints: str, workers: int) -> tuple[subprocess.Popen[str], str]:
    """``eventstore run --port 0`` (no access log); returns the process and its URL."""
    cmd = [
        sys.executable,
        "-c",
        "from eventstore.cli import entrypoint; entrypoint()",
        "run",
        "--port",
        "0",
        "--no-access-log",
        "--workers",
        str(workers),
        "--endpoints",
        endpoints,
    ]
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
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # never block its logging
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("eventstore run is not healthy")


def run_load(urls: list[str], args: argparse.Namespace, run: str) -> dict[str, Any]:
    """Run ``bench.loadgen`` in a subprocess; its JSON result."""
    cmd = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--urls",
        ",".join(urls),
        "--clients",
        str(args.clients),
        "--turns",
        str(args.turns),
        "--per-conversation",
        str(args.per_conversation),
        "--run",
        run,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def check_stored(store: TrackerStore, run: str, plan: list[int], per: int) -> tuple[int, int]:
    """(lost, duplicated) turns of a load run: every turn's user text must appear exactly
    once, in order, each conversation holding 3 + 5 x turns events with seqs 1..n."""
    lost = duplicated = 0
    for client, turns in enumerate(plan):
        for conversation in range(0, (turns + per - 1) // per):
            sid = conversation_id(run, client, conversation)
            count = min(per, turns - conversation * per)
            expected = [f"{run} {client} {conversation} {t}" for t in range(count)]
            stored = list(store.query(EventQuery(sender_id=sid)))
            texts = [e.data.get("text") for e in stored if e.data.get("event") == "user"]
            lost += len(set(expected) - set(texts))
            duplicated += len(texts) - len(set(texts))
            if texts != expected or [e.seq for e in stored] != list(range(1, 4 + 5 * count)):
                print(f"  {sid}: {len(texts)} turns stored, expected {count} in order")
            store.delete(sid)
    return lost, duplicated


def api_turns(store: TrackerStore, run: str, turns: int, threads: int, per: int) -> dict[str, Any]:
    """The same turns through the Python API in this process: append + retrieve +
    current_state + JSON (what the route does), ``threads`` threads in parallel."""
    latencies: list[float] = []
    share = turns // threads

    def play(index: int) -> None:
        mine = []
        for n in range(share):
            conversation, turn = divmod(n, per)
            sid = conversation_id(run, index, conversation)
            events = json.loads(turn_body(run, index, conversation, turn))
            start = time.perf_counter()
            if turn == 0:
                events = [
                    {"event": "action", "name": "action_session_start"},
                    {"event": "session_started"},
                    {"event": "action", "name": "action_listen"},
                    *events,
                ]
            store.append(sid, events)
            tracker = store.retrieve(sid)
            assert tracker is not None
            json.dumps(tracker.current_state()).encode()
            mine.append(time.perf_counter() - start)
        latencies.extend(mine)

    workers = [threading.Thread(target=play, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    for index in range(threads):
        for conversation in range((share + per - 1) // per):
            store.delete(conversation_id(run, index, conversation))
    ordered = sorted(latencies)
    return {
        "seconds": seconds,
        "turns": len(ordered),
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
    }


def line(label: str, result: dict[str, Any], base: float | None, extra: str = "") -> float:
    rate = result["turns"] / result["seconds"]
    ratio = f"  x{rate / base:4.2f} of 1 worker" if base else ""
    print(
        f"{label:<28} {rate:7.0f} turns/s  p50 {result['p50_ms']:7.2f} ms"
        f"  p99 {result['p99_ms']:8.2f} ms{ratio}{extra}"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--per-conversation", type=int, default=20)
    parser.add_argument("--configs", default="w1,w2,w4,p2")
    parser.add_argument("--endpoints", default=None, help="an endpoints.yml naming the store")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.endpoints is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-http-")))
            url = stack.enter_context(fresh_postgres())
            args.endpoints = str(tmp / "endpoints.yml")
            Path(args.endpoints).write_text(f"tracker_store:\n  type: sql\n  url: {url}\n")
        run_benchmark(args)


def run_benchmark(args: argparse.Namespace) -> None:
    store = create_from_endpoints(load_endpoints(args.endpoints))
    print(
        f"{type(store).__name__}: {args.turns} turns per configuration (POST of 5 events), "
        f"{args.clients} clients, {args.per_conversation} turns per conversation; "
        f"load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    base: float | None = None
    try:
        for name in args.configs.split(","):
            processes, workers = CONFIGS[name]
            servers = [start_server(args.endpoints, workers) for _ in range(processes)]
            run = uuid.uuid4().hex[:8]
            try:
                run_load([url for _, url in servers], _warm_up(args), f"warm{run}")
                result = run_load([url for _, url in servers], args, run)
            finally:
                for proc, _ in servers:
                    proc.send_signal(signal.SIGTERM)
                for proc, _ in servers:
                    proc.wait(60)
            check_stored(store, f"warm{run}", _warm_up(args).plan, args.per_conversation)
            lost, duplicated = check_stored(store, run, result["plan"], args.per_conversation)
            cpu = result["cpu_seconds"] / result["turns"] * 1000
            extra = (
                f"  errors {result['error_count']}  lost {lost}  duplicated {duplicated}"
                f"  loadgen CPU {cpu:.2f} ms/turn"
            )
            rate = line(LABELS[name], result, base, extra)
            base = base or rate
            for error in result["errors"]:
                print(f"  error: {error}")
        for threads in (1, 4):
            result = api_turns(store, uuid.uuid4().hex[:8], args.turns, threads, 20)
            label = f"Python API, {threads} thread{'s' if threads > 1 else ''}"
            line(label, result, base)
    finally:
        store.close()
    print(f"load average after: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _warm_up(args: argparse.Namespace) -> argparse.Namespace:
    """A short run first (imports, connection pools, prepared statements)."""
    warm = argparse.Namespace(**vars(args))
    warm.turns = max(args.clients * 2, 100)
    share, extra = divmod(warm.turns, args.clients)
    warm.plan = [share + (1 if i < extra else 0) for i in range(args.clients)]
    return warm


if __name__ == "__main__":
    main()
