"""A conversation full of personal data, shared by the privacy tests."""

from __future__ import annotations

from typing import Any

EMAIL = "jane.doe@example.org"
PHONE = "+49 30 1234567"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
SECRETS = (EMAIL, PHONE, CARD, IBAN, "4111111111111111", "jane.doe")
HASH_KEY = "a-test-key-of-32-bytes-000000000"


def personal_events(ts: float = 1_700_000_000.0) -> list[dict[str, Any]]:
    """A turn holding an e-mail, a phone and a card number in text, entities and slots."""
    text = f"I am {EMAIL}, call {PHONE}, card {CARD}, iban {IBAN}"
    return [
        {"event": "action", "name": "action_listen", "timestamp": ts},
        {
            "event": "user",
            "timestamp": ts + 1,
            "text": text,
            "parse_data": {
                "text": text,
                "intent": {"name": "inform", "confidence": 0.98},
                "entities": [
                    {"entity": "email", "value": EMAIL, "start": 5, "end": 25},
                    {"entity": "phone", "value": PHONE, "start": 32, "end": 46},
                    {"entity": "card", "value": CARD, "start": 53, "end": 72},
                    {"entity": "city", "value": "Berlin"},
                ],
            },
            "metadata": {"ip": "10.1.2.3", "note": f"reach me at {EMAIL}"},
        },
        {"event": "slot", "name": "email", "value": EMAIL, "timestamp": ts + 2},
        {"event": "slot", "name": "phone", "value": PHONE, "timestamp": ts + 3},
        {"event": "slot", "name": "card", "value": CARD, "timestamp": ts + 4},
        {"event": "slot", "name": "city", "value": "Berlin", "timestamp": ts + 5},
        {
            "event": "action",
            "name": "utter_confirm",
            "policy": "RulePolicy",
            "confidence": 1.0,
            "timestamp": ts + 6,
        },
        {"event": "bot", "text": f"Thanks, I will write to {EMAIL}", "timestamp": ts + 7},
    ]


def holds_secret(value: Any) -> bool:
    """Whether any personal value of the conversation appears anywhere in ``value``."""
    text = repr(value)
    return any(secret in text for secret in SECRETS)
