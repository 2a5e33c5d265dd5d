"""RabbitMQ batches are transactions: a link cut before ``commit-ok`` loses nothing.

The link to the real RabbitMQ goes through a proxy that a hook cuts at the one moment that
matters, just before a chunk's ``tx.commit`` (RabbitMQ discards the open transaction) or
just after RabbitMQ committed it but before its ``commit-ok`` reached us (the chunk is
stored and will come again). The relay then publishes again exactly from the first
message it has no ``commit-ok`` for: nothing is lost, first copies stay in order, and the
only duplicates are that one chunk, back to back with itself.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from brokers.rabbitmq import PikaEventBroker
from brokers.testing import new_sender, stored_events
from eventstore.errors import PublishError
from eventstore.relay import BufferOutbox, OutboxRelay
from tests.brokers.test_broker_contract import RabbitConsumer
from tests.proxy import TcpProxy
from tests.relay.test_relay_crash import _queued as queued
from tests.servers.rabbitmq import RabbitTopology

CHUNK = 20


class CommitHookBroker(PikaEventBroker):
    """The real broker, committing every ``CHUNK`` messages, with a hook before commit n."""

    COMMIT_EVERY: ClassVar[int] = CHUNK
    hook_at = 0
    hook: Callable[[], None] | None = None
    commits = 0

    def _commit(self, channel: Any) -> None:
        self.commits += 1
        if self.commits == self.hook_at and self.hook is not None:
            self.hook()
        super()._commit(channel)


def hook_broker(topology: RabbitTopology, port: int | None = None) -> CommitHookBroker:
    """A ``CommitHookBroker`` publishing to ``topology`` (through ``port``, e.g. a proxy)."""
    section = topology.section(port, connection_attempts=3)
    section.pop("type")
    broker = CommitHookBroker.from_config(section)
    assert isinstance(broker, CommitHookBroker)
    return broker


@pytest.fixture
def proxied(rabbit_topology: RabbitTopology) -> Iterator[tuple[TcpProxy, CommitHookBroker]]:
    """A ready broker whose link to RabbitMQ goes through a proxy the test controls."""
    with TcpProxy(rabbit_topology.host, rabbit_topology.port) as proxy:
        broker = hook_broker(rabbit_topology, proxy.port)
        assert broker.is_ready()  # queues declared before anything is published
        yield proxy, broker
        broker.close()


def read_all(topology: RabbitTopology, count: int) -> list[dict[str, Any]]:
    consumer = RabbitConsumer(topology.host, topology.port, topology.queues[0])
    try:
        received = consumer(count)
        return received + consumer(10**6, 0.5)  # and anything behind them
    finally:
        consumer.close()


def relay_for(broker: PikaEventBroker, messages: int) -> tuple[OutboxRelay, list[dict[str, Any]]]:
    """A relay over an outbox of ``messages`` events of 4 interleaved conversations."""
    events = stored_events([new_sender() for _ in range(4)], messages // 4)
    outbox = BufferOutbox()
    outbox.add(events)
    relay = OutboxRelay(
        outbox, broker, batch_size=50, min_backoff=0.05, max_backoff=0.2, close_broker=False
    )
    return relay, [e.as_message() for e in events]


def test_cut_before_commit_counts_only_committed_chunks(
    proxied: tuple[TcpProxy, CommitHookBroker], rabbit_topology: RabbitTopology
) -> None:
    proxy, broker = proxied
    messages = [e.as_message() for e in stored_events([new_sender()], 5 * CHUNK)]
    broker.hook_at, broker.hook = 3, proxy.cut  # the third chunk never gets its commit
    with pytest.raises(PublishError) as failure:
        broker.publish_many(messages)
    assert failure.value.confirmed == 2 * CHUNK
    assert queued(rabbit_topology) == 2 * CHUNK  # RabbitMQ dropped the uncommitted chunk
    proxy.restore()
    broker.publish_many(messages[failure.value.confirmed :])  # what the relay does
    assert read_all(rabbit_topology, len(messages)) == messages  # each once, in order


def test_relay_republishes_from_the_first_uncommitted_message(
    proxied: tuple[TcpProxy, CommitHookBroker], rabbit_topology: RabbitTopology
) -> None:
    """A relay batch of 50 is committed in chunks of 20; the link breaks before the
    second commit: the first 20 are acknowledged, the rest published again once."""
    proxy, broker = proxied
    relay, expected = relay_for(broker, 160)

    def cut_and_restore() -> None:
        proxy.cut()
        proxy.restore()

    broker.hook_at, broker.hook = 2, cut_and_restore
    assert relay.drain(timeout=30) == len(expected)
    assert relay.failures == 1
    assert proxy.connections >= 2  # the broker reconnected
    assert read_all(rabbit_topology, len(expected)) == expected  # no loss, no duplicate


def test_lost_commit_ok_repeats_only_that_chunk(
    proxied: tuple[TcpProxy, CommitHookBroker], rabbit_topology: RabbitTopology
) -> None:
    """RabbitMQ committed the last chunk of the first batch (messages 41-50) but its
    ``commit-ok`` never arrived: the relay cannot know, so it publishes that chunk again,
    then the rest; nothing else repeats."""
    proxy, broker = proxied
    relay, expected = relay_for(broker, 160)
    cut_done = threading.Event()

    def cut_once_committed() -> None:
        deadline = time.monotonic() + 20
        while queued(rabbit_topology) < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        proxy.cut()  # RabbitMQ has the chunk; its answer was swallowed
        proxy.mute_replies = False
        proxy.restore()
        cut_done.set()

    def mute_then_cut() -> None:
        proxy.mute_replies = True
        threading.Thread(target=cut_once_committed, daemon=True).start()

    broker.hook_at, broker.hook = 3, mute_then_cut
    assert relay.drain(timeout=30) == len(expected)
    assert cut_done.is_set()
    assert relay.failures == 1
    received = read_all(rabbit_topology, len(expected) + 10)
    # batch 1 = chunks of 20, 20 and 10; the relay acknowledged the first 40
    assert received == expected[:50] + expected[40:]


def rabbitmqctl(*args: str) -> None:
    """Run ``rabbitmqctl`` against the local server; fail the test if it cannot."""
    try:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"rabbitmqctl {args[0]} failed: {exc!r}")


def test_a_queue_refusing_part_of_a_chunk_fails_that_whole_chunk(
    rabbit_topology: RabbitTopology,
) -> None:
    """A full queue (``overflow: reject-publish``) takes only part of a chunk: RabbitMQ
    fails the commit, so none of that chunk counts as confirmed and it is retried."""
    queue = rabbit_topology.queues[0]
    policy = f"es-test-{queue}"
    definition = '{"max-length": 30, "overflow": "reject-publish"}'
    rabbitmqctl("set_policy", "--apply-to", "queues", policy, f"^{queue}$", definition)
    broker = hook_broker(rabbit_topology)
    try:
        messages = [e.as_message() for e in stored_events([new_sender()], 3 * CHUNK)]
        with pytest.raises(PublishError) as failure:
            broker.publish_many(messages)  # declares the queue under the policy, publishes
        assert failure.value.confirmed == CHUNK  # the second chunk did not fit
        assert "partial tx completion" in str(failure.value)
        assert queued(rabbit_topology) == 30  # what RabbitMQ kept of it arrives again
    finally:
        broker.close()
        rabbitmqctl("clear_policy", policy)
