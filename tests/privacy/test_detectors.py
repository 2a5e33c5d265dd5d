"""The ready-made detectors find real personal data and leave look-alikes alone."""

from __future__ import annotations

import pytest

from eventstore.privacy.detectors import DETECTORS, iban_valid, luhn_valid


def found(name: str, text: str) -> list[str]:
    return [text[start:end] for start, end in DETECTORS[name].find(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("write to jane.doe+bot@mail.example.co.uk now", ["jane.doe+bot@mail.example.co.uk"]),
        ("a@b.io and c_d@e-f.org", ["a@b.io", "c_d@e-f.org"]),
        ("no address @ here, nor user@localhost", []),
    ],
)
def test_email(text: str, expected: list[str]) -> None:
    assert found("email", text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("call +49 30 1234567 today", ["+49 30 1234567"]),
        ("or +1 (555) 010-9999.", ["+1 (555) 010-9999"]),
        ("0049-89-123456", ["0049-89-123456"]),
        ("order 12345, due 2024-01-15 or 15.01.2024", []),  # too short; dates
        ("ref 1234567890123456789", []),  # 19 digits: longer than any phone number
    ],
)
def test_phone(text: str, expected: list[str]) -> None:
    assert found("phone", text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("card 4111 1111 1111 1111 ok", ["4111 1111 1111 1111"]),
        ("amex 378282246310005", ["378282246310005"]),
        ("dashed 5555-5555-5555-4444.", ["5555-5555-5555-4444"]),
        ("not luhn 4111 1111 1111 1112", []),
        ("too short 4111111", []),
    ],
)
def test_credit_card_needs_the_luhn_digit(text: str, expected: list[str]) -> None:
    assert found("credit_card", text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("iban DE89 3704 0044 0532 0130 00 thanks", ["DE89 3704 0044 0532 0130 00"]),
        ("GB82WEST12345698765432", ["GB82WEST12345698765432"]),
        ("lower de89370400440532013000", ["de89370400440532013000"]),
        ("bad checksum DE88 3704 0044 0532 0130 00", []),
    ],
)
def test_iban_needs_the_mod97_checksum(text: str, expected: list[str]) -> None:
    assert found("iban", text) == expected


def test_checksums() -> None:
    assert luhn_valid("79927398713") is False  # 11 digits: no card is that short
    assert luhn_valid("4012888888881881")
    assert not luhn_valid("4012888888881882")
    assert iban_valid("FR14 2004 1010 0505 0001 3M02 606")
    assert not iban_valid("FR14 2004 1010 0505 0001 3M02 607")
    assert not iban_valid("XX")


def test_a_number_right_after_a_card_or_iban_is_left_out() -> None:
    assert found("credit_card", "4111 1111 1111 1111 2024") == ["4111 1111 1111 1111"]
    assert found("iban", "DE89 3704 0044 0532 0130 00 1234") == ["DE89 3704 0044 0532 0130 00"]
