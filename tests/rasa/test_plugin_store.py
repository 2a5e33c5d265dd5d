"""The plug-in with Rasa 3.6.21's own classes, against a real ``eventstore run``.

A worker process in the Rasa venv (``plugin_worker.py``) builds the store with Rasa's
``TrackerStore.create`` and runs operations the tests send it; the tests check what the
service stored over HTTP, cut or mute connections with a real TCP proxy, and read the
worker's log.
"""

from __future__ import annotations

import ast
import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventstore.testing import new_id
from tests.http.conftest import Running
from tests.proxy import TcpProxy
from tests.servers.rasa import RASA_BOT
from tests.servers.rasa_plugin import PLUGIN_DIR, copy_plugin, free_port, plugin_env

pytestmark = pytest.mark.rasa

WORKER = Path(__file__).with_name("plugin_worker.py")
TOKEN = "tok-" + new_id("plugin")
PLUGIN = "eventstore_rasa.EventStoreTrackerStore"


def session_start(ts: float) -> list[dict[str, Any]]:
    return [
        {"event": "action", "name": "action_session_start", "timestamp": ts},
        {"event": "session_started", "timestamp": ts + 0.001},
        {"event": "action", "name": "action_listen", "timestamp": ts + 0.002},
    ]


def turn(text: str, ts: float, reply: str = "Hi!") -> list[dict[str, Any]]:
    """A Rasa turn: user message, slot, bot utterance, listen."""
    return [
        {"event": "user", "text": text, "timestamp": ts,
         "parse_data": {"intent": {"name": "greet", "confidence": 1.0}, "entities": []}},
        {"event": "slot", "name": "greeted", "value": True, "timestamp": ts + 0.001},
        {"event": "action", "name": "utter_greet", "timestamp": ts + 0.002},
        {"event": "bot", "text": reply, "timestamp": ts + 0.003},
        {"event": "action", "name": "action_listen", "timestamp": ts + 0.004},
    ]  # fmt: skip


class Worker:
    """The Rasa-side process; ``call`` sends one operation and returns its answer."""

    def __init__(self, rasa_python: Path, site: Path) -> None:
        self.proc = subprocess.Popen(
            [str(rasa_python), str(WORKER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=plugin_env(site),
        )  # fmt: skip
        self.log: list[str] = []
        threading.Thread(target=self._read_log, daemon=True).start()
        assert self._answer() == {"ready": True}

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            pytest.fail("the Rasa worker died:\n" + "\n".join(self.log[-50:]))
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def value(self, op: str, **args: Any) -> Any:
        answer = self.call(op, **args)
        assert answer["ok"], answer.get("traceback")
        return answer["value"]

    def create(self, name: str, url: str, **config: Any) -> dict[str, Any]:
        options = {"auth_token": TOKEN, **config}
        return self.call(
            "create", name=name, config={"type": PLUGIN, "url": url, **options},
            domain=str(RASA_BOT / "domain.yml"),
        )  # fmt: skip

    def log_since(self, mark: int) -> str:
        time.sleep(0.2)  # let the reader thread catch up with what was written already
        return "\n".join(self.log[mark:])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def service() -> Iterator[Running]:
    """``eventstore run`` (in-memory store) with an auth token."""
    run = Running(env={"EVENTSTORE_AUTH_TOKEN": TOKEN})
    yield run
    run.stop()


@pytest.fixture(scope="module")
def worker(rasa_python: Path, rasa_plugin_site: Path) -> Iterator[Worker]:
    w = Worker(rasa_python, rasa_plugin_site)
    yield w
    w.close()


def shape(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Type, name or text, and timestamp of each event."""
    return [(e["event"], e.get("name") or e.get("text"), e.get("timestamp")) for e in events]


def stored(service: Running, sender: str) -> list[dict[str, Any]]:
    """The events eventstore holds for ``sender`` (without seq/position/sender_id)."""
    response = httpx.get(
        f"{service.url}/events",
        params={"sender_id": sender, "limit": 1000},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    response.raise_for_status()
    drop = {"seq", "position", "sender_id"}
    return [{k: v for k, v in e.items() if k not in drop} for e in response.json()["events"]]


def test_rasa_loads_it_as_an_async_store_and_it_round_trips(
    service: Running, worker: Worker
) -> None:
    created = worker.create("main", service.url)
    # A real TrackerStore whose methods are all async: Rasa does not wrap it.
    assert created == {"ok": True, "value": {"class": "EventStoreTrackerStore", "async": True}}
    sender = new_id("plugin")
    assert worker.value("exists", store="main", sender=sender) is False
    assert worker.value("load", store="main", sender=sender, key="t1") == 0
    first = session_start(1700000000.0) + turn("hello", 1700000001.0)
    worker.value("add", key="t1", events=first)
    worker.value("save", store="main", key="t1")
    # Stored exactly as Rasa serialises the events: no session start added, nothing changed.
    assert stored(service, sender) == worker.value("events", key="t1")
    assert shape(stored(service, sender)) == shape(first)
    assert worker.value("exists", store="main", sender=sender) is True
    assert worker.value("slots", store="main", sender=sender) == {
        "city": None, "greeted": True, "session_started_metadata": None,
    }  # fmt: skip
    # A second turn and a new session: save sends only what was added since the load.
    worker.value("load", store="main", sender=sender, key="t2")
    second = turn("hi again", 1700000010.0) + session_start(1700000020.0)
    second += turn("new session", 1700000021.0)
    worker.value("add", key="t2", events=second)
    worker.value("save", store="main", key="t2")
    everything = stored(service, sender)
    assert shape(everything) == shape(first + second)
    assert everything[: len(first)] == worker.value("events", key="t1")
    assert worker.value("full", store="main", sender=sender) == everything
    current = worker.value("retrieve", store="main", sender=sender)
    assert current == everything[-len(current) :]
    # The last session (stores differ on including the action_session_start before it).
    assert current[-7]["event"] == "session_started" and len(current) <= 8
    assert sender in worker.value("keys", store="main")


def test_keys_reads_every_page(service: Running, worker: Worker) -> None:
    worker.create("paged", service.url)
    senders = sorted(new_id("page") for _ in range(5))
    for i, sender in enumerate(senders):
        worker.value("load", store="paged", sender=sender, key=sender)
        worker.value("add", key=sender, events=session_start(1700000100.0 + i))
        worker.value("save", store="paged", key=sender)
    worker.value("keys_page", size=2)
    try:
        keys = worker.value("keys", store="paged")
    finally:
        worker.value("keys_page", size=1000)
    assert set(senders) <= set(keys)
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("mode", ["append", "raise"])
def test_two_writers_on_one_conversation(service: Running, worker: Worker, mode: str) -> None:
    worker.create(f"c-{mode}", service.url, on_conflict=mode)
    store = f"c-{mode}"
    sender = new_id("conflict")
    worker.value("load", store=store, sender=sender, key=f"{mode}-0")
    start = session_start(1700000200.0)
    worker.value("add", key=f"{mode}-0", events=start)
    worker.value("save", store=store, key=f"{mode}-0")
    # Two pods load the same version, both handle a turn, both save.
    worker.value("load", store=store, sender=sender, key=f"{mode}-a")
    worker.value("load", store=store, sender=sender, key=f"{mode}-b")
    a, b = turn("from pod a", 1700000201.0), turn("from pod b", 1700000202.0)
    worker.value("add", key=f"{mode}-a", events=a)
    worker.value("add", key=f"{mode}-b", events=b)
    worker.value("save", store=store, key=f"{mode}-a")
    mark = len(worker.log)
    second = worker.call("save", store=store, key=f"{mode}-b")
    log = worker.log_since(mark)
    if mode == "append":
        assert second["ok"], second.get("traceback")
        assert shape(stored(service, sender)) == shape(start + a + b)  # both, whole, once
        assert f"conversation '{sender}' moved from version 3 to 8" in log
    else:
        assert second["type"] == "ConversationConflict"
        assert "its 5 events were not stored" in second["message"]
        assert shape(stored(service, sender)) == shape(start + a)
        assert f"eventstore_rasa: saving conversation '{sender}'" in log  # logged loudly
        assert "ERROR" in log


def test_a_lost_reply_is_retried_without_storing_twice(service: Running, worker: Worker) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    with TcpProxy("127.0.0.1", port) as proxy:
        worker.create("lossy", f"http://{proxy.address}", timeout=1, retries=5)
        sender = new_id("lost-reply")
        worker.value("load", store="lossy", sender=sender, key="lost")
        events = session_start(1700000300.0) + turn("hello", 1700000301.0)
        worker.value("add", key="lost", events=events)

        def answer_again_once_stored() -> None:
            while not stored(service, sender):
                time.sleep(0.02)
            proxy.mute_replies = False

        proxy.mute_replies = True  # the append reaches eventstore, its answer is lost
        helper = threading.Thread(target=answer_again_once_stored, daemon=True)
        helper.start()
        mark = len(worker.log)
        worker.value("save", store="lossy", key="lost")
        helper.join(30)
        assert shape(stored(service, sender)) == shape(events)  # once: it saw its own append
        assert "retry 1 of 5" in worker.log_since(mark)


def test_connection_errors_are_retried_then_reported_naming_the_url(
    service: Running, worker: Worker
) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    with TcpProxy("127.0.0.1", port) as proxy:
        url = f"http://{proxy.address}"
        worker.create("cut", url, retries=2)
        sender = new_id("cut")
        worker.value("load", store="cut", sender=sender, key="cut")
        events = session_start(1700000400.0) + turn("hello", 1700000401.0)
        worker.value("add", key="cut", events=events)
        proxy.cut()
        mark = len(worker.log)
        failed = worker.call("save", store="cut", key="cut")
        log = worker.log_since(mark)
        assert failed["type"] == "EventStoreUnavailable"
        assert f"eventstore at {url} is unreachable" in failed["message"]
        assert "failed 3 times" in failed["message"]
        assert "retry 2 of 2" in log
        assert f"ERROR eventstore_rasa: saving conversation '{sender}'" in log
        assert TOKEN not in failed["message"] and TOKEN not in "\n".join(worker.log)
        proxy.restore()
        worker.value("save", store="cut", key="cut")  # the same tracker, once it is back
        assert shape(stored(service, sender)) == shape(events)


def test_a_tracker_rasa_built_itself_replaces_the_conversation(
    service: Running, worker: Worker
) -> None:
    worker.create("put", service.url)
    sender = new_id("put")
    worker.value("load", store="put", sender=sender, key="put")
    worker.value("add", key="put", events=session_start(1700000500.0))
    worker.value("save", store="put", key="put")
    replacement = session_start(1700000600.0) + turn("replaced", 1700000601.0)
    mark = len(worker.log)
    worker.value("put", store="put", sender=sender, events=replacement)
    assert shape(stored(service, sender)) == shape(replacement)
    assert f"replacing conversation '{sender}'" in worker.log_since(mark)
    # Saving the same tracker again appends only what extends the log.
    worker.value("put", store="put", sender=sender, events=[*replacement, *turn("more", 2e9)])
    assert shape(stored(service, sender)) == shape([*replacement, *turn("more", 2e9)])


class NotEventstore(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: Any) -> None:
        pass


def test_misconfiguration_is_a_clear_error_never_an_import_or_attribute_error(
    service: Running, worker: Worker
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotEventstore)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        cases = {
            "timout": (service.url, {"timout": 3}, "EventStoreConfigError",
                       "unknown key 'timout' (did you mean 'timeout'?)"),
            "scheme": ("eventstore:5005", {}, "EventStoreConfigError",
                       "'url' must start with http:// or https://"),
            "conflict": (service.url, {"on_conflict": "merge"}, "EventStoreConfigError",
                         "'on_conflict' must be 'append' or 'raise'"),
            "retries": (service.url, {"retries": "many"}, "EventStoreConfigError",
                        "'retries' must be a int, got 'many'"),
            "token": (service.url, {"auth_token": "wrong-secret-42"}, "EventStoreAuthError",
                      f"eventstore at {service.url} refused the credentials (401"),
            "closed": (closed, {"startup_wait": 0}, "EventStoreUnavailable",
                       f"eventstore at {closed} is unreachable"),
            "other": (f"http://127.0.0.1:{other.server_address[1]}", {},
                      "EventStoreRequestError", "is not an eventstore service"),
        }  # fmt: skip
        for name, (url, options, error, message) in cases.items():
            answer = worker.create(f"bad-{name}", url, **options)
            assert answer["ok"] is False, name
            assert answer["type"] == error, (name, answer["message"])
            assert message in answer["message"], (name, answer["message"])
            # Rasa turns these two (and a TypeError would crash) into something else.
            assert not {"ImportError", "AttributeError", "TypeError"} & set(answer["bases"])
            assert "wrong-secret-42" not in answer["message"]
        missing = worker.call("create", name="no-url", config={"type": PLUGIN})
        assert "'url' is required" in missing["message"]
    finally:
        other.shutdown()


def test_a_rasa_event_broker_is_warned_about(
    service: Running, worker: Worker, tmp_path: Path
) -> None:
    mark = len(worker.log)
    answer = worker.call(
        "create", name="broker", broker_file=str(tmp_path / "rasa_events.log"),
        config={"type": PLUGIN, "url": service.url, "auth_token": TOKEN},
    )  # fmt: skip
    assert answer["ok"], answer.get("traceback")
    assert "configures an event_broker, but this tracker store does not publish" in (
        worker.log_since(mark)
    )


def test_pip_installs_it_into_rasas_venv_without_touching_rasas_packages(
    rasa_python: Path, rasa_plugin_site: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    pip = [str(rasa_python), "-m", "pip"]
    without, env = plugin_env(tmp_path), plugin_env(rasa_plugin_site)
    commands = {  # independent: run side by side
        # Resolved with its dependencies, the plug-in is the only thing pip would install.
        "resolve": ([*pip, "install", "--quiet", "--dry-run", "--no-index",
                     "--no-build-isolation", "--report", str(report),
                     str(copy_plugin(tmp_path / "src"))], without),
        # Installed, pip check reports exactly what it reported before (Rasa's deviations).
        "before": ([*pip, "check"], without),
        "after": ([*pip, "check"], env),
    }  # fmt: skip
    procs = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cmd_env)
        for name, (cmd, cmd_env) in commands.items()
    }  # fmt: skip
    out = {name: proc.communicate(timeout=300) for name, proc in procs.items()}
    assert procs["resolve"].returncode == 0, out["resolve"][1]
    installs = json.loads(report.read_text())["install"]
    assert [item["metadata"]["name"] for item in installs] == ["eventstore-rasa"]
    assert [r.replace(" ", "") for r in installs[0]["metadata"]["requires_dist"]] == [
        "aiohttp>=3.8"
    ]
    assert sorted(out["after"][0].splitlines()) == sorted(out["before"][0].splitlines())


def test_the_plugin_imports_only_rasa_aiohttp_and_the_standard_library() -> None:
    imported: set[str] = set()
    for path in (PLUGIN_DIR / "eventstore_rasa").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    outside = imported - set(sys.stdlib_module_names) - {"eventstore_rasa"}
    assert outside == {"aiohttp", "rasa"}
