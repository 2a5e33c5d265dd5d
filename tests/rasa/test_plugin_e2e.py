"""A real Rasa 3.6.21 bot keeps its conversations in eventstore through the plug-in.

``eventstore run`` on a fresh PostgreSQL database (with the bot's domain), ``rasa run
--enable-api`` with ``type: eventstore_rasa.EventStoreTrackerStore`` in its endpoints.yml,
and conversations over the REST channel. Checked: every turn Rasa answered is in
eventstore, in order; Rasa's tracker equals what a restarted Rasa reads back; two Rasa
processes on one conversation lose nothing; a wrong URL stops ``rasa run``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventstore.testing import new_id
from tests.http.conftest import Running
from tests.servers.rasa_plugin import RasaRun, free_port, get_tracker

pytestmark = pytest.mark.rasa

FALLBACK = "Sorry, I didn't get that."
#: A conversation script: (message, the bot's answers). ``/session_start`` starts a session.
SCRIPT: list[tuple[str, list[str]]] = [
    ("hello", ["Hi!"]),
    ("I live in Berlin", ["You live in Berlin."]),
    ("what is the meaning of life", [FALLBACK]),
    ("bye", ["Bye!"]),
    ("/session_start", []),
    ("hi", ["Hi!"]),
    ("I live in Paris", ["You live in Paris."]),
    ("goodbye", ["Bye!"]),
]


@pytest.fixture(scope="module")
def eventstore_url(
    postgres_url: str, rasa_bot_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``eventstore run`` on the session's PostgreSQL database, with the bot's domain."""
    folder = tmp_path_factory.mktemp("eventstore")
    endpoints = folder / "endpoints.yml"
    endpoints.write_text(
        f"tracker_store:\n  type: sql\n  url: {postgres_url}\n"
        f"domain: {rasa_bot_dir / 'domain.yml'}\n"
    )
    run = Running("--endpoints", str(endpoints))
    assert "domain: " in run.output
    yield run.url
    run.stop()


def rasa_endpoints(folder: Path, eventstore_url: str, extra: str = "") -> Path:
    """Rasa's endpoints.yml with the plug-in as its tracker store."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "endpoints.yml"
    path.write_text(
        "tracker_store:\n"
        "  type: eventstore_rasa.EventStoreTrackerStore\n"
        f"  url: {eventstore_url}\n" + extra
    )
    return path


def stored_events(eventstore_url: str, sender: str) -> list[dict[str, Any]]:
    """Every event eventstore holds for ``sender``, checking seqs are 1, 2, 3 ..."""
    response = httpx.get(
        f"{eventstore_url}/events", params={"sender_id": sender, "limit": 1000}, timeout=30
    )
    response.raise_for_status()
    events = response.json()["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    return events


def turns(events: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(user text, bot texts up to the next user message) in log order."""
    result: list[tuple[str, list[str]]] = []
    for event in events:
        if event["event"] == "user":
            result.append((event["text"], []))
        elif event["event"] == "bot" and result:
            result[-1][1].append(event["text"])
    return result


def assert_no_fallback(run: RasaRun) -> None:
    """Rasa never used its in-memory fallback, and the plug-in logged no error."""
    assert "Falling back to use the 'InMemoryTrackerStore'" not in run.output, run.output[-3000:]
    assert "eventstore_rasa: " not in "\n".join(line for line in run.lines if "ERROR" in line), (
        run.output[-3000:]
    )


@pytest.fixture(scope="module")
def rasa_endpoints_file(eventstore_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rasa_endpoints(tmp_path_factory.mktemp("rasa"), eventstore_url)


@pytest.fixture(scope="module")
def pods(
    rasa_python: Path, rasa_model: Path, rasa_plugin_site: Path, rasa_endpoints_file: Path
) -> Iterator[list[RasaRun]]:
    """Two ``rasa run`` processes with the same endpoints.yml, started side by side.

    No shared lock store: both may handle turns of one conversation at once.
    """
    started = [
        RasaRun(rasa_python, rasa_model, rasa_endpoints_file, rasa_plugin_site, wait=False)
        for _ in range(2)
    ]
    try:
        for pod in started:
            pod.wait_ready()
        yield started
    finally:
        stop_all(started)


def stop_all(runs: list[RasaRun]) -> None:
    """SIGTERM every process first, then wait for each (their shutdowns overlap)."""
    for run in runs:
        run.terminate()
    for run in runs:
        run.stop()


def test_rasa_keeps_every_turn_in_eventstore_and_reads_it_back_after_a_restart(
    eventstore_url: str,
    pods: list[RasaRun],
    rasa_python: Path,
    rasa_model: Path,
    rasa_plugin_site: Path,
    rasa_endpoints_file: Path,
) -> None:
    first = pods[0]
    assert "conversations are kept by eventstore" in first.output
    senders = [new_id("rasa-e2e") for _ in range(3)]
    for message, expected in SCRIPT:  # the senders take turns: conversations interleave
        for sender in senders:
            assert first.say(sender, message) == expected, (sender, message)
    assert len(SCRIPT) * len(senders) >= 20
    before = {sender: first.tracker(sender) for sender in senders}
    assert_no_fallback(first)

    for sender in senders:
        events = stored_events(eventstore_url, sender)
        # Every turn Rasa answered is stored, in order, with exactly the answers it gave.
        assert turns(events) == SCRIPT
        # Fallback and rewind, and two sessions (the first one plus /session_start).
        kinds = [e["event"] for e in events]
        assert "rewind" in kinds
        assert kinds.count("session_started") == 2
        # Rasa's own tracker is the stored log, event for event.
        rasa_events = before[sender]["events"]
        assert [{**e, "seq": None, "position": None} for e in events] == [
            {**e, "sender_id": sender, "seq": None, "position": None} for e in rasa_events
        ]
        assert before[sender]["slots"] == {
            "city": "Paris",
            "greeted": True,
            "session_started_metadata": None,
        }
        # eventstore's own tracker JSON (replayed with the bot's domain) is Rasa's, key for
        # key: slots with their domain defaults, latest message and action, events.
        assert get_tracker(eventstore_url, sender) == before[sender]
        # The other process, which never served these conversations, reads the same.
        assert pods[1].tracker(sender) == before[sender]

    first.stop()
    restarted = RasaRun(rasa_python, rasa_model, rasa_endpoints_file, rasa_plugin_site)
    pods[0] = restarted
    for sender in senders:
        assert restarted.tracker(sender) == before[sender]
    # The restarted bot continues the conversation where it was.
    assert restarted.say(senders[0], "hello") == ["Hi!"]
    assert turns(stored_events(eventstore_url, senders[0]))[-1] == ("hello", ["Hi!"])
    assert_no_fallback(restarted)


def test_two_rasa_processes_on_one_conversation_lose_nothing(
    eventstore_url: str, pods: list[RasaRun]
) -> None:
    # Both processes handle turns of one conversation at once, so their saves race: the
    # loser's append is refused (409) and stored after the winner's events.
    sender = new_id("rasa-pods")
    assert pods[0].say(sender, "hello") == ["Hi!"]
    answers: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def talk(pod: RasaRun, name: str) -> None:
        try:
            for i in range(6):
                text = f"unknown words {name} {i}"
                answers[text] = pod.say(sender, text)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(pod, f"p{n}")) for n, pod in enumerate(pods)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert all(reply == [FALLBACK] for reply in answers.values())
    stored = turns(stored_events(eventstore_url, sender))
    # Every turn of both processes is stored once, each with its own answer right after it.
    assert stored[0] == ("hello", ["Hi!"])
    assert sorted(stored[1:]) == sorted(answers.items())
    for pod in pods:
        assert_no_fallback(pod)


def test_a_wrong_url_stops_rasa_run_instead_of_forgetting_conversations(
    rasa_python: Path, rasa_model: Path, rasa_plugin_site: Path, tmp_path: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    endpoints = rasa_endpoints(tmp_path / "rasa", closed, "  startup_wait: 0\n")
    run = RasaRun(rasa_python, rasa_model, endpoints, rasa_plugin_site, wait=False)
    try:
        code = run.wait_exit(120)
    finally:
        run.stop()
    assert code not in (None, 0), run.output[-3000:]
    assert f"eventstore at {closed} is unreachable" in run.output
    assert "Using `InMemoryTrackerStore` instead" not in run.output
