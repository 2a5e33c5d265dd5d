"""Strict pydantic settings shared by every store and broker config.

Each backend declares one frozen ``StrictConfig`` subclass; ``parse_config`` validates a
section of endpoints.yml against it and turns pydantic's error into a ``ConfigError`` that
names the key, the expected type and the value received (with a did-you-mean for typos).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from eventstore.errors import ConfigError

C = TypeVar("C", bound="StrictConfig")

#: Keys Rasa's endpoint config consumes itself; accepted and ignored where a backend has no use.
SECRET_HINT = "***"


class StrictConfig(BaseModel):
    """Base of every backend config: unknown keys are refused, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StoreSettings(StrictConfig):
    """Base of every tracker store's config: the settings the store contract itself uses."""

    #: Trackers kept in this process, so that a turn reads only the log's tail (0: off).
    tracker_cache_size: int = Field(default=1000, ge=0)


def parse_config(model: type[C], data: Mapping[str, Any], section: str) -> C:
    """Validate ``data`` against ``model``; raise ``ConfigError`` naming the bad key."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(model, exc, section)) from None


def _describe(model: type[BaseModel], exc: ValidationError, section: str) -> str:
    lines = []
    known = sorted(
        {name for name in model.model_fields}
        | {f.alias for f in model.model_fields.values() if f.alias}
    )
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(section)"
        if err["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(str(err["loc"][0]), known, n=1)
            tip = f"; did you mean '{hint[0]}'?" if hint else f"; known keys: {', '.join(known)}"
            lines.append(f"{section}: unknown key '{key}'{tip}")
        elif err["type"] == "missing":
            lines.append(f"{section}: key '{key}' is required")
        else:
            value = err.get("input")
            shown = SECRET_HINT if "password" in key or "token" in key else repr(value)
            lines.append(f"{section}: key '{key}': {err['msg']} (got {shown})")
    return "; ".join(lines)


def secret_value(value: SecretStr | str | None) -> str | None:
    """The plain text of a secret setting, for the one place that hands it to a driver."""
    if value is None:
        return None
    return value.get_secret_value() if isinstance(value, SecretStr) else value
