"""Broker trouble is loud and bounded: refused credentials fail at once (never retried),
every timeout flag bounds the broker's own retries, and a background relay that cannot
drain the outbox keeps saying so (rate-limited)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from brokers.testing import wait_until
from eventstore import create_tracker_store
from eventstore.cli import main
from eventstore.endpoints import load_endpoints
from eventstore.errors import BrokerAuthenticationError
from eventstore.factory import open_relay
from eventstore.relay import relay_of, with_broker
from eventstore.stores.sql.store import SQLTrackerStore
from tests.relay.test_relay import FailingAfter
from tests.servers import free_port
from tests.servers.rabbitmq import RabbitTopology

EVENT = {"event": "user", "text": "hi", "timestamp": 1.0}
#: Rasa's defaults: pika alone would try 20 times, 5 s apart (100 s).
PATIENT = {"connection_attempts": 20, "retry_delay_in_seconds": 5}


def endpoints(tmp_path: Path, broker: dict[str, Any]) -> Path:
    db = tmp_path / "store.db"
    down = FailingAfter(tmp_path / "x.log", accept=0, failures=10**6)
    writer = with_broker(SQLTrackerStore.from_url(f"sqlite:///{db}"), down)
    writer.append("a", [EVENT, EVENT])  # two events wait in the outbox
    relay_of(writer).stop(drain_timeout=0)
    writer.close()
    path = tmp_path / "endpoints.yml"
    sections = {"tracker_store": {"type": "sqlite", "db": str(db)}, "event_broker": broker}
    path.write_text(yaml.safe_dump(sections))
    return path


@pytest.mark.timeout(60)  # pika's own 20 x 5 s would take 100 s
def test_refused_credentials_fail_at_once_and_say_so(
    tmp_path: Path, rabbit_topology: RabbitTopology, capsys: pytest.CaptureFixture[str]
) -> None:
    path = endpoints(tmp_path, rabbit_topology.section(password="wrong", **PATIENT))
    store, relay = open_relay(load_endpoints(path))
    try:
        with pytest.raises(BrokerAuthenticationError, match="refused the credentials of user"):
            relay.drain(timeout=300)
        assert relay.failures == 1  # not retried, whatever the timeout
    finally:
        relay.broker.close()
        store.close()
    assert main(["relay", "--once", "--timeout", "300", "--endpoints", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: RabbitMQ at ") and "retrying cannot help" in err[-1]


@pytest.mark.timeout(60)
def test_the_timeout_flag_bounds_the_brokers_own_retries(
    tmp_path: Path, rabbit_topology: RabbitTopology, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = rabbit_topology.section(port=free_port(), **PATIENT)
    path = endpoints(tmp_path, broker)
    assert main(["relay", "--once", "--timeout", "2", "--endpoints", str(path)]) == 1
    assert "unavailable" in capsys.readouterr().err
    with create_tracker_store({"type": "sqlite", "db": str(tmp_path / "store.db")}) as store:
        assert store.outbox_pending(10)  # nothing lost: the events still wait


@pytest.mark.timeout(40)  # the producer alone would wait max_block_ms (60 s) to bootstrap
def test_the_timeout_flag_bounds_kafkas_bootstrap_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = {"type": "kafka", "url": f"127.0.0.1:{free_port()}", "max_block_ms": 60_000}
    path = endpoints(tmp_path, broker)
    assert main(["relay", "--once", "--timeout", "2", "--endpoints", str(path)]) == 1
    assert "Kafka at 127.0.0.1:" in capsys.readouterr().err
    with create_tracker_store({"type": "sqlite", "db": str(tmp_path / "store.db")}) as store:
        assert len(store.outbox_pending(10)) == 2  # nothing lost: both events still wait


def test_a_background_relay_that_cannot_drain_keeps_saying_so(
    tmp_path: Path,
    rabbit_topology: RabbitTopology,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import eventstore.relay

    monkeypatch.setattr(eventstore.relay, "OUTAGE_WARNING_SECONDS", 0.0)  # every failure
    caplog.set_level(logging.WARNING, logger="eventstore")
    from brokers import create_broker

    broker = create_broker(rabbit_topology.section(password="wrong", **PATIENT))
    store = create_tracker_store({"type": "sql", "db": str(tmp_path / "s.db")}, broker)
    try:
        store.append("a", [EVENT])

        def refusals() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.levelno == logging.ERROR and "refused the credentials" in r.getMessage()
            ]

        wait_until(lambda: len(refusals()) >= 2, what="repeated errors about the credentials")
    finally:
        store.close()
