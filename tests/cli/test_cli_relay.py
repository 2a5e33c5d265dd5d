"""``eventstore relay``: refuses setups it cannot serve, drains an outbox with --once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from brokers.testing import assert_delivered_once_in_order
from eventstore.cli import main
from eventstore.relay import relay_of, with_broker
from eventstore.stores.base import EventQuery
from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.testing import new_id, turn
from tests.relay.test_relay import FailingAfter


def endpoints_file(
    tmp_path: Path, store: dict[str, Any] | None, broker: dict[str, Any] | None
) -> str:
    path = tmp_path / "endpoints.yml"
    sections = {k: v for k, v in (("tracker_store", store), ("event_broker", broker)) if v}
    path.write_text(yaml.safe_dump(sections), encoding="utf-8")
    return str(path)


def test_in_memory_store_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = endpoints_file(tmp_path, {"type": "in_memory"}, {"type": "file"})
    assert main(["relay", "--endpoints", path, "--once"]) == 1
    assert (
        "InMemoryTrackerStore keeps no outbox another process can read" in capsys.readouterr().err
    )


def test_missing_broker_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = endpoints_file(tmp_path, {"type": "sql", "db": str(tmp_path / "s.db")}, None)
    assert main(["relay", "--endpoints", path, "--once"]) == 1
    assert "no event_broker section" in capsys.readouterr().err


def test_once_publishes_the_outbox_and_exits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database, log = tmp_path / "s.db", tmp_path / "events.log"
    writer = with_broker(
        SQLTrackerStore.from_url(f"sqlite:///{database}"),
        FailingAfter(log, accept=0, failures=10**6),
    )
    senders = [new_id() for _ in range(2)]
    for sender in senders:
        writer.append(sender, turn(1) + turn(2))
    relay_of(writer).stop(drain_timeout=0)
    writer.close()
    path = endpoints_file(
        tmp_path, {"type": "sql", "db": str(database)}, {"type": "file", "path": str(log)}
    )
    assert main(["relay", "--endpoints", path, "--once", "--batch-size", "3"]) == 0
    assert "published 16 events" in capsys.readouterr().out
    reader = SQLTrackerStore.from_url(f"sqlite:///{database}")
    expected = [e.as_message() for s in senders for e in reader.query(EventQuery(sender_id=s))]
    assert reader.outbox_pending() == []
    reader.close()
    received = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert_delivered_once_in_order(received, expected)
    assert main(["relay", "--endpoints", path, "--once"]) == 0  # nothing left: a no-op
    assert "published 0 events" in capsys.readouterr().out


def test_once_fails_with_an_error_line_when_the_broker_stays_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "s.db"
    writer = with_broker(
        SQLTrackerStore.from_url(
            f"sqlite:///{database}",
        ),
        FailingAfter(tmp_path / "x.log", accept=0, failures=10**6),
    )
    writer.append(new_id(), turn(1))
    relay_of(writer).stop(drain_timeout=0)
    writer.close()
    broker = {"type": "sql", "url": f"sqlite:///{tmp_path / 'no-such-dir' / 'b.db'}"}
    path = endpoints_file(tmp_path, {"type": "sql", "db": str(database)}, broker)
    assert main(["relay", "--endpoints", path, "--once", "--timeout", "0.3"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: SQL broker: connecting failed") and "unreachable" in last


def test_long_running_relay_publishes_what_other_processes_store_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    import signal
    import subprocess
    import sys

    from brokers.testing import wait_until
    from tests.relay.test_relay_crash import CLI, ROOT

    database, log = tmp_path / "s.db", tmp_path / "events.log"
    SQLTrackerStore.from_url(f"sqlite:///{database}").close()  # the schema exists
    path = endpoints_file(
        tmp_path, {"type": "sql", "db": str(database)}, {"type": "file", "path": str(log)}
    )
    relay = subprocess.Popen(
        [sys.executable, "-c", CLI, "relay", "--endpoints", path, "--poll-interval", "0.1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # this process stores with a broker attached but never publishes: the relay must
        writer = with_broker(
            SQLTrackerStore.from_url(f"sqlite:///{database}"),
            FailingAfter(log, accept=0, failures=10**6),
        )
        senders = [new_id() for _ in range(3)]
        for round_ in range(3):
            for sender in senders:
                writer.append(sender, turn(round_))
        relay_of(writer).stop(drain_timeout=0)
        wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 36, 30)
        relay.send_signal(signal.SIGTERM)
        out, err = relay.communicate(timeout=30)
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert relay.returncode == 0, err[-2000:]
    assert "published 36 events; outbox empty" in out
    expected = [e.as_message() for s in senders for e in writer.query(EventQuery(sender_id=s))]
    writer.close()
    received = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert_delivered_once_in_order(received, expected)
