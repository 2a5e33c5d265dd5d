"""Query values the routes parse themselves: opaque page cursors (base64 JSON
``{kind: value}``, checked on the way in) and times (as every time option)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from eventstore.errors import ConfigError
from eventstore.server.errors import ApiError
from eventstore.times import parse_time

#: The largest integer a cursor may hold: every store's 64-bit range.
MAX_INT = 2**63 - 1


def parse_uint(text: str) -> int | None:
    """``text`` as an integer from 0 to ``MAX_INT`` (header values), else None.

    The length check comes first, so thousands of digits are refused before ``int()``
    (which refuses over 4300 digits)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_INT else None


def encode_cursor(kind: str, value: Any) -> str:
    """An opaque cursor for ``value``."""
    raw = json.dumps({kind: value}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def query_time(text: str | None, name: str) -> float | None:
    """A time query parameter, parsed as every time option is (400 naming it)."""
    try:
        return parse_time(text, f"query parameter {name!r}")
    except ConfigError as exc:
        raise ApiError(400, str(exc), {"field": name, "location": "query"}) from None


def decode_cursor(cursor: str, kind: str) -> Any:
    """The value of a cursor made by ``encode_cursor`` (400 when it is not one)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return data[kind]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ApiError(400, "query parameter 'cursor' is not valid", {"field": "cursor"}) from None


def cursor_int(cursor: str, kind: str) -> int:
    """The position or offset in a cursor: an int from 0 to ``MAX_INT`` (400 otherwise).

    Checked here so a forged cursor never hands a store a number it cannot send.
    """
    value = decode_cursor(cursor, kind)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise ApiError(400, "query parameter 'cursor' is not valid", {"field": "cursor"})
    return value
