"""Ready-made detectors of personal data in text: e-mail, phone, IBAN, credit card.

Each detector is a regular expression that finds candidates plus a check that keeps only
real ones (the IBAN's mod-97 checksum, the card number's Luhn digit, a phone number's digit
count), so a redaction rule does not mangle order numbers or timestamps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Span = tuple[int, int]


@dataclass(frozen=True)
class Detector:
    """A named finder: ``pattern`` finds candidates, ``check`` keeps the valid ones."""

    name: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool]

    def find(self, text: str) -> Iterator[Span]:
        """The (start, end) spans of every valid match in ``text``.

        A candidate that fails the check is tried again without its last space-separated
        groups ("DE89 3704 0044 0532 0130 00 1234" holds an IBAN followed by a number).
        """
        for match in self.pattern.finditer(text):
            candidate = match.group()
            while candidate:
                if self.check(candidate):
                    yield match.start(), match.start() + len(candidate)
                    break
                candidate = candidate.rpartition(" ")[0]


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_valid(number: str) -> bool:
    """Whether the digits of ``number`` pass the Luhn check (13 to 19 digits)."""
    digits = _digits(number)
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """Whether ``candidate`` (spaces allowed) is an IBAN with a valid mod-97 checksum."""
    iban = candidate.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        number = "".join(str(int(ch, 36)) for ch in rearranged)
    except ValueError:
        return False
    return int(number) % 97 == 1


_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def phone_valid(candidate: str) -> bool:
    """Whether ``candidate`` holds 7 to 15 digits (E.164's longest number) and is no date."""
    return 7 <= len(_digits(candidate)) <= 15 and _DATE.fullmatch(candidate) is None


EMAIL = Detector(
    "email",
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    lambda _: True,
)
CREDIT_CARD = Detector(
    "credit_card", re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"), luhn_valid
)
IBAN = Detector(
    "iban",
    re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])"),
    iban_valid,
)
PHONE = Detector(
    "phone",
    re.compile(r"(?<![\w+])(?:\+|00)?\d(?:[ ./-]?\(?\d+\)?){2,}(?![\w])"),
    phone_valid,
)

#: The detectors a rule may name, by name. Cards and IBANs come before phones: a span
#: claimed by an earlier detector is not claimed again by a later one.
DETECTORS: dict[str, Detector] = {d.name: d for d in (EMAIL, CREDIT_CARD, IBAN, PHONE)}
