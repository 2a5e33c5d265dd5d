"""A process killed (SIGKILL) with events stored but not published; a restart publishes them.

The store is a SQLite file with its durable outbox: what the killed process stored stays in
the outbox, and ``eventstore relay --once`` (a new process) publishes it. The in-memory
store cannot pass this test: its outbox dies with the process (see docs/brokers.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from brokers.testing import assert_delivered_once_in_order
from eventstore.stores.base import EventQuery
from eventstore.stores.sql.store import SQLTrackerStore
from tests.brokers.test_broker_contract import RabbitConsumer
from tests.servers.kafka import free_port
from tests.servers.rabbitmq import RabbitTopology

ROOT = Path(__file__).resolve().parents[2]

CLI = "from eventstore.cli import entrypoint; entrypoint()"
WRITER = textwrap.dedent(
    """
    import sys, yaml
    from eventstore.endpoints import load_endpoints
    from eventstore.factory import create_from_endpoints
    from eventstore.testing import turn

    store = create_from_endpoints(load_endpoints(sys.argv[1]))
    senders = [f"crash-{n}" for n in range(int(sys.argv[2]))]
    i = 0
    while True:
        for sender in senders:
            store.append(sender, turn(3 * i) + turn(3 * i + 1) + turn(3 * i + 2))
        i += 1
        print(i, flush=True)
    """
)


def write_endpoints(path: Path, database: Path, broker: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {"tracker_store": {"type": "sql", "db": str(database)}, "event_broker": broker}
        ),
        encoding="utf-8",
    )
    return path


def run_writer_then_kill(
    endpoints: Path, senders: int, rounds: int, ready: Callable[[], bool] = lambda: True
) -> None:
    """Start a process appending 3 turns per sender per round; SIGKILL it after ``rounds``.

    With ``ready``, keep it running until ``ready()`` is also true.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(endpoints), str(senders)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if int(line) >= rounds and ready():
                break
        else:
            raise AssertionError(f"the writer died early with code {process.wait()}")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


def relay_once(endpoints: Path) -> str:
    """``eventstore relay --once`` in a new process; return its output."""
    result = subprocess.run(
        [sys.executable, "-c", CLI, "relay", "--endpoints", str(endpoints), "--once"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def stored(database: Path) -> list[dict[str, Any]]:
    store = SQLTrackerStore.from_url(f"sqlite:///{database}")
    try:
        return [e.as_message() for e in store.query(EventQuery())]
    finally:
        store.close()


def test_killed_with_the_broker_down_then_restarted_publishes_everything(
    tmp_path: Path, rabbit_topology: RabbitTopology
) -> None:
    database = tmp_path / "store.db"
    dead = rabbit_topology.section(free_port(), connection_attempts=1, retry_delay_in_seconds=0)
    run_writer_then_kill(write_endpoints(tmp_path / "down.yml", database, dead), 3, 10)
    expected = stored(database)
    assert len(expected) >= 3 * 10 * 12
    output = relay_once(write_endpoints(tmp_path / "up.yml", database, rabbit_topology.section()))
    assert f"published {len(expected)} events" in output
    consumer = RabbitConsumer(rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[0])
    try:
        received = consumer(len(expected))
        received += consumer(10**6, 0.5)
    finally:
        consumer.close()
    assert_delivered_once_in_order(received, expected)


def test_killed_mid_stream_then_restarted_publishes_the_rest(
    tmp_path: Path, rabbit_topology: RabbitTopology
) -> None:
    """Killed while its relay publishes: the restart sends what was not confirmed."""
    database = tmp_path / "store.db"
    endpoints = write_endpoints(tmp_path / "up.yml", database, rabbit_topology.section())
    _declare(rabbit_topology)  # the queues keep what the writer publishes before we read
    consumer = RabbitConsumer(rabbit_topology.host, rabbit_topology.port, rabbit_topology.queues[0])
    try:
        run_writer_then_kill(endpoints, 4, 20, ready=lambda: _queued(rabbit_topology) > 0)
        expected = stored(database)
        before = consumer(10**6, 0.5)  # what the killed process had published
        output = relay_once(endpoints)
        left = int(output.split()[1])
        assert before and left, "the kill must fall between publishing and storing"
        received = before + consumer(len(expected) - len(before), 30)
        received += consumer(10**6, 0.5)
    finally:
        consumer.close()
    first: dict[tuple[str, int], dict[str, Any]] = {}
    for message in received:
        first.setdefault((message["sender_id"], message["seq"]), message)
    assert_delivered_once_in_order(list(first.values()), expected)
    # duplicates only from the at-least-once window: one batch confirmed, not acknowledged
    assert len(received) - len(first) <= 500


def _queued(topology: RabbitTopology) -> int:
    """Messages waiting in the first queue (a passive declare)."""
    from tests.servers.rabbitmq import rabbit_connection

    connection = rabbit_connection(topology.host, topology.port)
    try:
        frame = connection.channel().queue_declare(topology.queues[0], passive=True)
        return int(frame.method.message_count)
    finally:
        connection.close()


def _declare(topology: RabbitTopology) -> None:
    """Create the exchange and queues, so messages published before the consumer reads stay."""
    from tests.servers.rabbitmq import rabbit_connection

    connection = rabbit_connection(topology.host, topology.port)
    channel = connection.channel()
    channel.exchange_declare(topology.exchange, exchange_type="fanout", durable=True)
    for queue in topology.queues:
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, topology.exchange, routing_key="")
    connection.close()
