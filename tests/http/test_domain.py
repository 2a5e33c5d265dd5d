"""Domain-aware trackers: ``eventstore run --domain`` / ``domain:`` in endpoints.yml.

With a Rasa domain, tracker JSON carries every domain slot at its initial value and slot
events for slots the domain lacks change nothing (as Rasa's tracker with a domain). Also
the API additions the Rasa plug-in uses: ``session=current`` and ``start_session=false``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventstore.domain import load_domain, parse_domain
from eventstore.endpoints import load_endpoints
from eventstore.errors import ConfigError
from eventstore.testing import action, new_id, session_start, user
from eventstore.tracker import Tracker
from tests.http.conftest import EVENTSTORE, LiveServer, Running
from tests.servers.rasa import RASA_BOT

DOMAIN = """\
version: "3.1"
intents: [greet, inform]
entities: [city]
slots:
  city:
    type: text
    influence_conversation: false
    mappings:
      - type: from_entity
        entity: city
  tries:
    type: float
    initial_value: 3
    min_value: 0
    max_value: 5
    mappings: [{type: custom}]
  mood:
    type: categorical
    values: [happy, sad]
    mappings: [{type: from_text}]
forms:
  address_form:
    required_slots: [city]
responses:
  utter_greet:
    - text: "Hi!"
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""


def slot(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value, "timestamp": 1700000010.0}


def test_the_test_bots_domain_loads_unchanged() -> None:
    domain = load_domain(RASA_BOT / "domain.yml")
    assert dict(domain.slots) == {"city": None, "greeted": None, "session_started_metadata": None}


def test_slots_get_initial_values_and_rasas_default_slots(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text(DOMAIN)
    domain = load_domain(tmp_path / "domain.yml")
    assert list(domain.slots) == [
        "city", "tries", "mood", "requested_slot", "session_started_metadata",
    ]  # fmt: skip
    assert domain.slots["tries"] == 3
    kb = parse_domain({"actions": ["action_query_knowledge_base"]})
    assert "knowledge_base_last_object" in kb.slots


def test_a_domain_directory_is_merged(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.yml").write_text("slots:\n  a:\n    type: text\n")
    (tmp_path / "d" / "b.yml").write_text("slots:\n  b:\n    initial_value: false\n")
    assert dict(load_domain(tmp_path / "d").slots) == {
        "a": None, "b": False, "session_started_metadata": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slots: [city]\n", "'slots' must be a mapping of slot names, got list"),
        ("slots:\n  city: 3\n", "slot 'city' must be a mapping, got int"),
        ("slots:\n  city:\n    type: [text]\n", "slot 'city': 'type' must be a string"),
        ("- a\n", "must be a mapping (a Rasa domain), got list"),
        ("slots: {city: [\n", "is not valid YAML"),
    ],
)
def test_bad_domains_are_config_errors_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "domain.yml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_domain(tmp_path / "domain.yml")
    with pytest.raises(ConfigError, match="cannot read domain file"):
        load_domain(tmp_path / "missing.yml")


def test_replay_with_a_domain_ignores_unknown_slots_and_resets_to_initial_values() -> None:
    domain = parse_domain({"slots": {"city": {"type": "text"}, "tries": {"initial_value": 3}}})
    events = [*session_start(), slot("city", "Berlin"), slot("ghost", 1), slot("tries", 1)]
    tracker = domain.replay(Tracker.from_events("d1", events))
    assert tracker.slots == {"city": "Berlin", "tries": 1, "session_started_metadata": None}
    tracker.update({"event": "reset_slots", "timestamp": 1700000020.0})
    assert tracker.slots == {"city": None, "tries": 3, "session_started_metadata": None}
    assert len(tracker.events) == len(events) + 1  # the ignored event stays in the log
    back = tracker.travel_back_in_time(1700000010.0)
    assert "ghost" not in back.slots
    # Without a domain the same log shows the unknown slot, as before.
    assert Tracker.from_events("d1", events).slots["ghost"] == 1


def test_tracker_json_carries_every_domain_slot(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    (tmp_path / "domain.yml").write_text(DOMAIN)
    server = start_server("sqlite", domain=str(tmp_path / "domain.yml"))
    cid = new_id("domain")
    with server.client() as http:
        empty = http.get(f"/conversations/{cid}/tracker").json()
        assert empty["slots"] == {
            "city": None, "tries": 3, "mood": None, "requested_slot": None,
            "session_started_metadata": None,
        }  # fmt: skip
        body = [user("I live in Berlin"), slot("city", "Berlin"), slot("ghost", "boo")]
        posted = http.post(f"/conversations/{cid}/tracker/events", json=body).json()
        assert posted["slots"]["city"] == "Berlin"
        assert "ghost" not in posted["slots"]
        full = http.get(f"/conversations/{cid}/tracker", params={"include_events": "ALL"}).json()
        assert full["slots"] == posted["slots"]
        assert [e.get("name") for e in full["events"] if e["event"] == "slot"] == ["city", "ghost"]


def test_domain_key_in_endpoints_is_relative_to_the_file_and_validated(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "domain.yml").write_text(DOMAIN)
    endpoints = tmp_path / "conf" / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: in_memory\ndomain: domain.yml\n")
    assert load_endpoints(endpoints).domain == str(tmp_path / "conf" / "domain.yml")
    endpoints.write_text("domain: [a, b]\n")
    with pytest.raises(ConfigError, match="'domain' must be the path of a Rasa domain file"):
        load_endpoints(endpoints)


def test_eventstore_run_loads_the_domain_and_refuses_a_bad_one(
    running: list[Running], tmp_path: Path
) -> None:
    (tmp_path / "domain.yml").write_text(DOMAIN)
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: in_memory\ndomain: domain.yml\n")
    run = Running("--endpoints", str(endpoints))
    running.append(run)
    assert "domain: " in run.output and "city, tries, mood" in run.output
    (tmp_path / "bad.yml").write_text("slots: [city]\n")
    result = subprocess.run(
        [*EVENTSTORE, "run", "--port", "0", "--domain", str(tmp_path / "bad.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "'slots' must be a mapping of slot names" in result.stderr
    assert "Traceback" not in result.stderr


def test_session_current_and_start_session_false(server: LiveServer) -> None:
    cid = new_id("plugin-api")
    with server.client() as http:
        # start_session=false stores exactly the body, even on an empty conversation.
        first = http.post(
            f"/conversations/{cid}/tracker/events",
            params={"start_session": "false"},
            json=[action("action_listen")],
            headers={"If-Match": '"0"'},
        )
        assert first.status_code == 200 and first.headers["ETag"] == '"1"'
        http.post(
            f"/conversations/{cid}/tracker/events",
            params={"start_session": "false"},
            json=[*session_start(), user("hi")],
        )
        url = f"/conversations/{cid}/tracker"
        everything = http.get(url, params={"include_events": "ALL"})
        current = http.get(url, params={"include_events": "ALL", "session": "current"})
        assert [e["event"] for e in everything.json()["events"]][:2] == ["action", "action"]
        assert len(everything.json()["events"]) == 5
        # The current session: from the last session start on (stores differ on whether
        # the action_session_start right before session_started is included).
        session = current.json()["events"]
        assert session == everything.json()["events"][-len(session) :]
        assert [e["event"] for e in session][-3:] == ["session_started", "action", "user"]
        assert len(session) <= 4
        assert current.headers["ETag"] == everything.headers["ETag"] == '"5"'
        assert http.get(url, params={"session": "some"}).status_code == 400
        assert "tracker-session" in http.get("/version").json()["features"]
