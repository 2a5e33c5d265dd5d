"""The one parser of every time option (CLI flags, HTTP query parameters, settings).

A time is epoch seconds (``1718409600``, ``1718409600.5``) or an ISO 8601 date or
date-time (``2025-06-15``, ``2025-06-15T10:00:00+02:00``, UTC unless it names a zone).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from eventstore.errors import ConfigError

FORMS = "epoch seconds or an ISO 8601 date/time (e.g. 2025-06-15 or 2025-06-15T10:00:00Z)"


def parse_time(text: str | None, option: str) -> float | None:
    """``text`` as epoch seconds (None stays None); a ``ConfigError`` naming ``option``."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ConfigError(f"{option} must be {FORMS}, got {text!r}")
        return value
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} must be {FORMS}, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
