"""The ``privacy:`` and ``retention:`` sections of endpoints.yml, as strict pydantic models.

::

    privacy:
      redaction:
        apply: publish             # publish: only broker messages; store: before writing
        hash_key_env: EVENTSTORE_REDACTION_KEY
        rules:
          - detectors: [email, phone, credit_card, iban]
            action: hash           # mask | hash | drop
          - entities: [person]
            slots: [name]
            action: mask
            mask: "[name]"
      audit_file: /var/log/eventstore/erasures.jsonl
    retention:
      days: 30
      action: delete               # or redact
      interval_minutes: 60
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from eventstore.config import StrictConfig, parse_config
from eventstore.errors import ConfigError
from eventstore.privacy.detectors import DETECTORS

if TYPE_CHECKING:
    from eventstore.endpoints import Endpoints

#: Where a rule looks: the user's text, the NLU result's text, entity values, slot values,
#: the bot's text, and the values under ``metadata`` of any event.
FieldName = Literal["user_text", "parse_data_text", "entities", "slots", "bot_text", "metadata"]
ALL_FIELDS: tuple[FieldName, ...] = (
    "user_text",
    "parse_data_text",
    "entities",
    "slots",
    "bot_text",
    "metadata",
)
DetectorName = Literal["email", "phone", "iban", "credit_card"]
assert set(DetectorName.__args__) == set(DETECTORS)  # type: ignore[attr-defined]

#: Shortest accepted keyed-hash key, in bytes (a random 32-byte key is recommended).
MIN_KEY_BYTES = 16


class RedactionRule(StrictConfig):
    """What one rule finds, where it looks, and what it does with each finding."""

    name: str | None = None
    fields: tuple[FieldName, ...] = ALL_FIELDS
    entities: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()
    metadata_keys: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    detectors: tuple[DetectorName, ...] = ()
    action: Literal["mask", "hash", "drop"] = "mask"
    mask: str = "[redacted]"

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {pattern!r} is not a valid regular expression: {exc}"
                ) from None
            if compiled.fullmatch(""):
                raise ValueError(f"pattern {pattern!r} matches the empty string")
        return patterns

    @model_validator(mode="after")
    def _finds_something(self) -> RedactionRule:
        if not (
            self.entities or self.slots or self.metadata_keys or self.patterns or self.detectors
        ):
            raise ValueError(
                "a rule needs at least one of entities, slots, metadata_keys, patterns, detectors"
            )
        for selector, field in (
            ("entities", "entities"),
            ("slots", "slots"),
            ("metadata_keys", "metadata"),
        ):
            if getattr(self, selector) and field not in self.fields:
                raise ValueError(f"'{selector}' is set but 'fields' does not include '{field}'")
        if not self.fields:
            raise ValueError("'fields' must name at least one field")
        return self


class RedactionSettings(StrictConfig):
    """``privacy.redaction``: the rules and where they apply."""

    apply: Literal["publish", "store"] = "publish"
    hash_key_env: str = "EVENTSTORE_REDACTION_KEY"
    rules: tuple[RedactionRule, ...]

    @field_validator("rules")
    @classmethod
    def _some_rules(cls, rules: tuple[RedactionRule, ...]) -> tuple[RedactionRule, ...]:
        if not rules:
            raise ValueError("list at least one rule")
        return rules

    @property
    def uses_hash(self) -> bool:
        return any(rule.action == "hash" for rule in self.rules)

    def hash_key(self) -> bytes:
        """The keyed-hash key from the environment; a ``ConfigError`` when unset or short."""
        value = os.environ.get(self.hash_key_env)
        if not value:
            raise ConfigError(
                f"privacy.redaction: a rule hashes values but the environment variable "
                f"'{self.hash_key_env}' (hash_key_env) holding the key is not set"
            )
        key = value.encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"privacy.redaction: the key in '{self.hash_key_env}' is {len(key)} bytes; "
                f"use at least {MIN_KEY_BYTES} (32 random bytes are recommended)"
            )
        return key


class PrivacySettings(StrictConfig):
    """The ``privacy:`` section."""

    redaction: RedactionSettings | None = None
    #: also append each erasure's audit line (JSON) to this file
    audit_file: str | None = None


class RetentionSettings(StrictConfig):
    """The ``retention:`` section: conversations idle for ``days`` are deleted (or redacted)."""

    days: float = Field(gt=0)
    action: Literal["delete", "redact"] = "delete"
    #: how often ``eventstore run`` applies it (0: never on a schedule, only the CLI)
    interval_minutes: float = Field(default=60, ge=0)
    #: conversations handled per batch (each batch is its own short write)
    batch_size: int = Field(default=100, ge=1, le=10_000)
    #: seconds the lock is held before another replica may take it over
    lock_seconds: float = Field(default=600, gt=0)


def parse_privacy(section: Mapping[str, Any] | None) -> PrivacySettings | None:
    """Validate a ``privacy:`` section (None when absent)."""
    if section is None:
        return None
    settings = parse_config(PrivacySettings, section, "privacy")
    redaction = settings.redaction
    if redaction is not None and redaction.uses_hash:
        redaction.hash_key()  # fail at start-up, not on the first message
    return settings


def parse_retention(section: Mapping[str, Any] | None) -> RetentionSettings | None:
    """Validate a ``retention:`` section (None when absent)."""
    if section is None:
        return None
    return parse_config(RetentionSettings, section, "retention")


def privacy_summary(endpoints: Endpoints) -> list[str]:
    """Start-up lines of ``eventstore run`` on redaction and retention (none if unset)."""
    lines = []
    privacy = parse_privacy(endpoints.privacy)
    if privacy is not None and privacy.redaction is not None:
        redaction = privacy.redaction
        where = "broker messages" if redaction.apply == "publish" else "events before storing"
        lines.append(f"privacy: {len(redaction.rules)} redaction rule(s) on {where}")
    retention = parse_retention(endpoints.retention)
    if retention is not None:
        every = (
            f"every {retention.interval_minutes:g} min"
            if retention.interval_minutes
            else "by 'eventstore retention' only"
        )
        lines.append(f"retention: {retention.action} after {retention.days:g} days, {every}")
    return lines
