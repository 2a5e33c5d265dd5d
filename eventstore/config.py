"""Strict pydantic settings shared by every store and broker config.

Each backend declares one frozen ``StrictConfig`` subclass; ``parse_config`` validates a
section of endpoints.yml against it and turns pydantic's error into a ``ConfigError`` that
names the key, the expected type and the value received (with a did-you-mean for typos).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from eventstore.errors import ConfigError
from eventstore.secrets import MASK, is_secret_key, masked

C = TypeVar("C", bound="StrictConfig")

#: Prefixes pydantic puts before the message of a validator's exception.
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


class StrictConfig(BaseModel):
    """Base of every backend config: unknown keys are refused, instances are immutable.

    Its repr and str mask secrets (``SecretStr`` fields, and any password in a URL).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for key, value in super().__repr_args__():
            yield key, value if isinstance(value, SecretStr) else masked(value, key or "")


class StoreSettings(StrictConfig):
    """Base of every tracker store's config: the settings the store contract itself uses."""

    #: Trackers kept in this process, so that a turn reads only the log's tail (0: off).
    tracker_cache_size: int = Field(default=1000, ge=0)
    #: Events a conversation runs past its stored snapshot before a new one is written, on
    #: backends that keep snapshots (0: none written or read; the log alone is used).
    snapshot_every: int = Field(default=50, ge=0)
    #: An event type this version does not know (a newer Rasa's): ``refuse`` it (the
    #: append fails, nothing stored) or ``keep`` it as it is (stored, read and published
    #: unchanged; replay ignores it).
    unknown_events: Literal["refuse", "keep"] = "refuse"


def parse_config(model: type[C], data: Mapping[str, Any], section: str) -> C:
    """Validate ``data`` against ``model``; raise ``ConfigError`` naming the bad key."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(model, exc, section)) from None


def _known_keys(model: type[BaseModel]) -> list[str]:
    return sorted(
        {name for name in model.model_fields}
        | {f.alias for f in model.model_fields.values() if f.alias}
    )


def _model_at(model: type[BaseModel], path: tuple[int | str, ...]) -> type[BaseModel]:
    """The nested model an error location points into (list indexes skipped)."""
    for part in path:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        if field is None:
            continue
        pending, nested = [field.annotation], None
        while pending and nested is None:
            hint = pending.pop()
            if isinstance(hint, type) and issubclass(hint, BaseModel):
                nested = hint
            else:
                pending.extend(getattr(hint, "__args__", ()))
        if nested is None:
            break
        model = nested
    return model


def _describe(model: type[BaseModel], exc: ValidationError, section: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            known = _known_keys(_model_at(model, err["loc"][:-1]))
            hint = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            tip = f"; did you mean '{hint[0]}'?" if hint else f"; known keys: {', '.join(known)}"
            lines.append(f"{section}: unknown key '{key}'{tip}")
        elif err["type"] == "missing":
            lines.append(f"{section}: key '{key}' is required")
        else:
            message = str(err["msg"])
            for prefix in _PYDANTIC_PREFIXES:
                message = message.removeprefix(prefix)
            if not err["loc"]:  # a check across several keys: its message names them
                lines.append(f"{section}: {message}")
                continue
            shown = MASK if is_secret_key(key) else repr(masked(err.get("input"), key))
            lines.append(f"{section}: key '{key}': {message} (got {shown})")
    return "; ".join(lines)


def secret_value(value: SecretStr | str | None) -> str | None:
    """The plain text of a secret setting, for the one place that hands it to a driver."""
    if value is None:
        return None
    return value.get_secret_value() if isinstance(value, SecretStr) else value
