"""Load generator for ``bench_http``: many concurrent HTTP clients in one separate process.

    python -m bench.loadgen --urls http://127.0.0.1:5005[,http://...] --clients 32
                            --turns 2000 --per-conversation 20 --run RUNID

Each client is one keep-alive HTTP/1.1 connection (a plain asyncio client: a few tens of
microseconds of CPU per request, so the generator leaves the cores to the servers) that
plays bot turns: ``POST /conversations/<id>/tracker/events`` with 5 events, one
conversation at a time, ``--per-conversation`` turns each, like a channel connector
serving one user after another. Clients are spread round-robin over ``--urls``. Every
user message carries a unique text (``<run> <client> <conversation> <turn>``) so the
caller can check afterwards that each turn was stored exactly once.

Prints one JSON object: seconds, its own CPU seconds, turns, latencies' p50/p99 (ms),
errors, and the turns each client played.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any
from urllib.parse import urlsplit


def turn_body(run: str, client: int, conversation: int, turn: int) -> bytes:
    """The 5 events of one turn (user, action, bot, slot, listen: ``bench.common``'s turn);
    the user text names the turn. Kept import-free so the generator starts light."""
    text = f"{run} {client} {conversation} {turn}"
    events = [
        {
            "event": "user",
            "text": text,
            "parse_data": {"intent": {"name": "greet", "confidence": 0.9}, "entities": []},
            "input_channel": "rest",
            "metadata": {},
        },
        {"event": "action", "name": "utter_reply", "policy": "p", "confidence": 1.0},
        {"event": "bot", "text": f"reply {turn}", "data": {}, "metadata": {}},
        {"event": "slot", "name": "counter", "value": turn},
        {"event": "action", "name": "action_listen", "policy": "p", "confidence": 1.0},
    ]
    return json.dumps(events).encode()


def conversation_id(run: str, client: int, conversation: int) -> str:
    return f"load-{run}-{client}-{conversation}"


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str, body: bytes
) -> tuple[int, bytes]:
    """One POST on a keep-alive connection; (status, body)."""
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    data = b""
    while True:
        size = int((await reader.readline()).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, data
        data += chunk[:-2]


async def client(
    index: int, url: str, args: argparse.Namespace, turns: int, out: dict[str, Any]
) -> None:
    """Play ``turns`` turns over one connection."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for n in range(turns):
            conversation, turn = divmod(n, args.per_conversation)
            path = f"/conversations/{conversation_id(args.run, index, conversation)}/tracker/events"
            body = turn_body(args.run, index, conversation, turn)
            start = time.perf_counter()
            status, response = await _request(reader, writer, f"{host}:{port}", path, body)
            out["latencies"].append(time.perf_counter() - start)
            if status != 200:
                out["errors"].append(f"{status} {response[:200]!r}")
    finally:
        writer.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    urls = args.urls.split(",")
    out: dict[str, Any] = {"latencies": [], "errors": []}
    share, extra = divmod(args.turns, args.clients)
    plan = [share + (1 if i < extra else 0) for i in range(args.clients)]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    await asyncio.gather(
        *(client(i, urls[i % len(urls)], args, plan[i], out) for i in range(args.clients))
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    latencies = sorted(out["latencies"])

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "turns": len(latencies),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "errors": out["errors"][:5],
        "error_count": len(out["errors"]),
        "plan": plan,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", required=True, help="comma-separated server URLs")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--per-conversation", type=int, default=20)
    parser.add_argument("--run", required=True, help="a tag unique to this run")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main_async(parse(sys.argv[1:])))))
