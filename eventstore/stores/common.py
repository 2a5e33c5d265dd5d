"""Helpers every backend shares, written once: retry backoff, UTF-8 checks, 64-bit clamps."""

from __future__ import annotations

import random
import time

from eventstore.stores.records import INT64_MAX, INT64_MIN

#: Our own generator: a library must not move the global ``random`` state under its caller
#: (threads that retry would make seeded or property-based tests irreproducible).
_jitter = random.Random()


def backoff(attempt: int, *, base: float = 0.002, cap: float = 0.05) -> None:
    """Sleep a random while before retry ``attempt`` (0, 1, ...): uniform up to
    ``base * 2**attempt``, at most ``cap`` seconds, so racing writers spread out."""
    time.sleep(_jitter.uniform(0, min(cap, base * 2 ** min(attempt, 30))))


def utf8_encodable(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (drivers and BSON need it); a lone surrogate does not."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clamp_int64(number: int) -> int:
    """``number`` clamped to the signed 64-bit range (a bound past it means the same there)."""
    return max(INT64_MIN, min(int(number), INT64_MAX))
