"""Which values MongoDB stores exactly as given (others are kept as JSON text)."""

from __future__ import annotations

from typing import Any

from eventstore.stores.common import utf8_encodable
from eventstore.stores.records import INT64_MAX, INT64_MIN


def bson_safe(value: Any) -> bool:
    """Whether ``value`` is stored by MongoDB exactly as given (else it is kept as JSON)."""
    if isinstance(value, dict):
        return all(
            isinstance(k, str)
            and k
            and k[0] != "$"
            and "." not in k
            and "\x00" not in k
            and utf8_encodable(k)
            and bson_safe(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return all(bson_safe(v) for v in value)
    if isinstance(value, str):
        return utf8_encodable(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return True
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    return False
