"""Redaction rules: every kind of finder, every action, every field; nothing else changes."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest

from eventstore.errors import ConfigError
from eventstore.privacy import Redactor, keyed_hash, parse_privacy
from eventstore.privacy.config import RedactionRule
from eventstore.tracker import Tracker
from tests.privacy.conversation import (
    CARD,
    EMAIL,
    HASH_KEY,
    IBAN,
    PHONE,
    holds_secret,
    personal_events,
)

KEY = HASH_KEY.encode()


def redactor(*rules: dict[str, Any], key: bytes | None = KEY) -> Redactor:
    return Redactor(tuple(RedactionRule.model_validate(rule) for rule in rules), key)


def by_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == kind]


ALL_DETECTORS = {"detectors": ["email", "phone", "credit_card", "iban"]}


@pytest.mark.parametrize("action", ["mask", "hash", "drop"])
def test_detectors_clear_text_entities_slots_bot_text_and_metadata(action: str) -> None:
    events = personal_events()
    redacted = [redactor({**ALL_DETECTORS, "action": action}).redact(e) for e in events]
    assert not holds_secret(redacted)
    assert events == personal_events(), "the input events are never changed"
    user = by_type(redacted, "user")[0]
    assert user["parse_data"]["intent"] == {"name": "inform", "confidence": 0.98}
    assert user["parse_data"]["entities"][3] == {"entity": "city", "value": "Berlin"}
    assert by_type(redacted, "slot")[3]["value"] == "Berlin"
    assert user["metadata"]["ip"] == "10.1.2.3"  # not personal to these detectors
    if action == "mask":
        assert user["text"].startswith("I am [redacted], call [redacted], card [redacted]")
    if action == "drop":
        assert user["text"] == "I am , call , card , iban "


def test_redaction_keeps_seq_timestamps_intents_actions_and_the_replay() -> None:
    events = personal_events()
    rule = {**ALL_DETECTORS, "action": "hash"}
    messages = [
        {"sender_id": "s1", **e, "seq": n, "position": 10 + n} for n, e in enumerate(events, 1)
    ]
    redacted = [redactor(rule, {"slots": ["email"], "action": "drop"}).redact(m) for m in messages]
    for before, after in zip(messages, redacted, strict=True):
        for key in ("sender_id", "event", "timestamp", "seq", "position", "name", "policy"):
            assert before.get(key) == after.get(key)
    original = Tracker.from_events("s1", events)
    replayed = Tracker.from_events("s1", redacted)
    assert replayed.latest_message["intent"] == original.latest_message["intent"]
    assert replayed.latest_action_name == original.latest_action_name
    assert replayed.slots["email"] is None
    assert replayed.slots["city"] == "Berlin"
    assert replayed.slots["phone"] == keyed_hash(PHONE, KEY)


def test_entity_types_act_on_the_whole_value_and_its_place_in_the_text() -> None:
    rule = {"entities": ["email", "card"], "action": "mask", "mask": "<pii>"}
    user = redactor(rule).redact(personal_events()[1])
    entities = user["parse_data"]["entities"]
    assert [e["value"] for e in entities] == ["<pii>", PHONE, "<pii>", "Berlin"]
    assert user["text"] == f"I am <pii>, call {PHONE}, card <pii>, iban {IBAN}"
    assert user["parse_data"]["text"] == user["text"]
    dropped = redactor({"entities": ["email"], "action": "drop"}).redact(personal_events()[1])
    assert [e["entity"] for e in dropped["parse_data"]["entities"]] == ["phone", "card", "city"]


def test_entity_rule_limited_to_entities_leaves_the_text() -> None:
    rule = {"entities": ["email"], "fields": ["entities"], "action": "mask"}
    user = redactor(rule).redact(personal_events()[1])
    assert user["parse_data"]["entities"][0]["value"] == "[redacted]"
    assert EMAIL in user["text"]


def test_slot_names_act_on_the_whole_value_whatever_its_type() -> None:
    rule = {"slots": ["phone", "address"], "action": "hash"}
    red = redactor(rule)
    assert red.redact({"event": "slot", "name": "phone", "value": PHONE})["value"] == (
        keyed_hash(PHONE, KEY)
    )
    address = {"street": "Main St 1", "zip": "10115"}
    hashed = red.redact({"event": "slot", "name": "address", "value": address})["value"]
    assert hashed == keyed_hash({"zip": "10115", "street": "Main St 1"}, KEY)
    untouched = {"event": "slot", "name": "city", "value": "Berlin"}
    assert red.redact(untouched) == untouched


def test_metadata_keys_and_patterns_in_metadata() -> None:
    event = {"event": "user", "text": "hi", "metadata": {"ip": "10.1.2.3", "agent": "x"}}
    dropped = redactor({"metadata_keys": ["ip"], "action": "drop"}).redact(event)
    assert dropped["metadata"] == {"agent": "x"}
    nested = {
        "event": "session_started",
        "metadata": {"channel": {"from": "ID 998877"}, "tags": ["ID 12"]},
    }
    out = redactor({"patterns": [r"ID \d+"], "fields": ["metadata"]}).redact(nested)
    assert out["metadata"] == {"channel": {"from": "[redacted]"}, "tags": ["[redacted]"]}


def test_regular_expressions_in_user_and_bot_text_only_where_asked() -> None:
    rule = {"patterns": [r"\bK-\d{4}\b"], "fields": ["bot_text"], "action": "mask", "mask": "#"}
    red = redactor(rule)
    assert red.redact({"event": "bot", "text": "ticket K-1234 open"})["text"] == "ticket # open"
    user = {"event": "user", "text": "ticket K-1234"}
    assert red.redact(user) == user


def test_keyed_hash_same_value_same_token_in_text_entities_and_slots() -> None:
    red = redactor({"detectors": ["email"], "entities": ["email"], "action": "hash"})
    events = [red.redact(e) for e in personal_events()]
    token = keyed_hash(EMAIL, KEY)
    user = by_type(events, "user")[0]
    assert user["parse_data"]["entities"][0]["value"] == token
    assert user["text"].startswith(f"I am {token},")
    assert by_type(events, "slot")[0]["value"] == token
    assert by_type(events, "bot")[0]["text"].endswith(token)


HASH_IN_CHILD = (
    "from eventstore.privacy import keyed_hash; import sys; "
    "print(keyed_hash(sys.argv[1], sys.argv[2].encode()))"
)


def test_keyed_hash_is_stable_across_processes_and_differs_per_key() -> None:
    def child(value: str, key: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", HASH_IN_CHILD, value, key],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    here = keyed_hash(CARD, KEY)
    assert child(CARD, HASH_KEY) == here
    assert child(CARD, HASH_KEY + "x") != here
    assert keyed_hash(CARD, b"another-key-0123456789") != here
    assert here.startswith("hmac:") and len(here) == 5 + 64
    assert CARD not in here


def test_rules_apply_in_order() -> None:
    red = redactor(
        {"slots": ["email"], "action": "mask", "mask": "M"},
        {"detectors": ["email"], "action": "drop"},
    )
    assert red.redact({"event": "slot", "name": "email", "value": EMAIL})["value"] == "M"


def test_events_without_personal_fields_pass_unchanged() -> None:
    red = redactor({**ALL_DETECTORS, "action": "mask"})
    for event in (
        {"event": "action", "name": "action_listen", "timestamp": 1.0},
        {"event": "restart"},
        {"event": "user", "text": None, "parse_data": None},
        {"event": "user", "parse_data": {"entities": ["odd", {"entity": "x", "value": 3}]}},
    ):
        assert red.redact(copy.deepcopy(event)) == event


def settings(section: dict[str, Any]) -> Any:
    return parse_privacy(section)


def test_privacy_section_is_validated() -> None:
    ok = settings({"redaction": {"apply": "store", "rules": [{"detectors": ["iban"]}]}})
    assert ok.redaction.apply == "store"
    cases = {
        "unknown key": (
            {"redaction": {"rules": [{"detector": ["iban"]}]}},
            "unknown key 'redaction.rules.0.detector'; did you mean 'detectors'?",
        ),
        "bad detector": ({"redaction": {"rules": [{"detectors": ["ssn"]}]}}, "ssn"),
        "bad action": ({"redaction": {"rules": [{"slots": ["a"], "action": "x"}]}}, "action"),
        "bad where": ({"redaction": {"apply": "disk", "rules": [{"slots": ["a"]}]}}, "apply"),
        "empty rule": ({"redaction": {"rules": [{"action": "mask"}]}}, "at least one"),
        "no rules": ({"redaction": {"rules": []}}, "list at least one rule"),
        "bad regex": ({"redaction": {"rules": [{"patterns": ["(a"]}]}}, "not a valid regular"),
        "empty regex": ({"redaction": {"rules": [{"patterns": ["a*"]}]}}, "empty string"),
        "slot not in fields": (
            {"redaction": {"rules": [{"slots": ["a"], "fields": ["user_text"]}]}},
            "'fields' does not include 'slots'",
        ),
        "unknown top key": ({"redact": {}}, "redact"),
    }
    for name, (section, needle) in cases.items():
        with pytest.raises(ConfigError, match="privacy") as info:
            settings(section)
        assert needle in str(info.value), name


def test_hash_rules_need_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    section = {"redaction": {"hash_key_env": "ES_TEST_KEY", "rules": [{"slots": ["a"]}]}}
    hashing = {
        "redaction": {
            "hash_key_env": "ES_TEST_KEY",
            "rules": [{"slots": ["a"], "action": "hash"}],
        }
    }
    monkeypatch.delenv("ES_TEST_KEY", raising=False)
    assert settings(section) is not None  # masking needs no key
    with pytest.raises(ConfigError, match=r"'ES_TEST_KEY'.*not set"):
        settings(hashing)
    monkeypatch.setenv("ES_TEST_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        settings(hashing)
    monkeypatch.setenv("ES_TEST_KEY", HASH_KEY)
    red = Redactor.from_settings(settings(hashing).redaction)
    assert red.redact({"event": "slot", "name": "a", "value": 1})["value"] == keyed_hash(1, KEY)


def test_entities_added_events_are_redacted_like_parse_data_entities() -> None:
    event = {"event": "entities", "entities": [{"entity": "email", "value": EMAIL}]}
    assert redactor({"entities": ["email"], "action": "drop"}).redact(event)["entities"] == []
    hashed = redactor({"detectors": ["email"], "action": "hash"}).redact(event)
    assert hashed["entities"] == [{"entity": "email", "value": keyed_hash(EMAIL, KEY)}]


def test_redaction_is_idempotent() -> None:
    red = redactor({**ALL_DETECTORS, "action": "hash"}, {"slots": ["phone"], "action": "hash"})
    once = [red.redact(e) for e in personal_events()]
    assert [red.redact(e) for e in once] == once
    assert by_type(once, "slot")[1]["value"] == keyed_hash(PHONE, KEY)
