"""A Rasa domain's slots, so trackers look like Rasa's own (every slot, initial values).

``load_domain`` reads a Rasa 3.x ``domain.yml`` (or a directory of them, merged as Rasa
does) unchanged: only ``slots`` (and ``forms``/``actions``, which add Rasa's default
slots) are used; intents, responses, mappings and the rest are read and ignored. A
tracker replayed with a domain carries every domain slot (``"city": null`` until set) and
ignores slot events for slots the domain lacks, as Rasa's ``DialogueStateTracker`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from eventstore.errors import ConfigError
from eventstore.tracker import SESSION_START_METADATA_SLOT, Tracker

#: Rasa's slot for the slot a form asks for next; added when the domain has forms.
REQUESTED_SLOT = "requested_slot"
#: Rasa's knowledge-base action, and the slots it adds when a domain lists it.
KNOWLEDGE_BASE_ACTION = "action_query_knowledge_base"
KNOWLEDGE_BASE_SLOTS = (
    "knowledge_base_listed_objects",
    "knowledge_base_last_object",
    "knowledge_base_last_object_type",
)


@dataclass(frozen=True)
class Domain:
    """The slots of a domain, in Rasa's order, with their initial values."""

    slots: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", MappingProxyType(dict(self.slots)))

    def replay(self, tracker: Tracker) -> Tracker:
        """``tracker`` replayed with this domain's slots (its events all count as stored)."""
        return Tracker.from_events(
            tracker.sender_id,
            tracker.events,
            version=tracker.version,
            slots=self.slots,
            known_slots_only=True,
        )

    def empty_tracker(self, sender_id: str) -> Tracker:
        """A tracker without events: every domain slot at its initial value."""
        return Tracker(sender_id, slots=self.slots, known_slots_only=True)


def parse_domain(data: Any, source: str = "domain.yml") -> Domain:
    """A ``Domain`` from the parsed YAML of one or more domain files (merged in order)."""
    parts = data if isinstance(data, list) else [data]
    slots: dict[str, Any] = {}
    has_forms = False
    actions: set[str] = set()
    for part in parts:
        if part is None:
            continue
        if not isinstance(part, Mapping):
            raise ConfigError(f"{source} must be a mapping (a Rasa domain), got {_kind(part)}")
        slots.update(_slots_of(part.get("slots"), source))
        forms = part.get("forms")
        if forms is not None and not isinstance(forms, Mapping | list):
            raise ConfigError(f"{source}: 'forms' must be a mapping, got {_kind(forms)}")
        has_forms = has_forms or bool(forms)
        listed = part.get("actions") or []
        if not isinstance(listed, list):
            raise ConfigError(f"{source}: 'actions' must be a list, got {_kind(listed)}")
        # An action entry is a name, or (Rasa 3) a one-key mapping of name to options.
        for item in listed:
            actions.update([item] if isinstance(item, str) else dict(item or {}).keys())
    # Rasa's default slots, added after the domain's own (Domain._add_default_slots).
    if has_forms:
        slots.setdefault(REQUESTED_SLOT, None)
    if KNOWLEDGE_BASE_ACTION in actions:
        for name in KNOWLEDGE_BASE_SLOTS:
            slots.setdefault(name, None)
    slots.setdefault(SESSION_START_METADATA_SLOT, None)
    return Domain(slots, source)


def _slots_of(section: Any, source: str) -> dict[str, Any]:
    """Slot names with their ``initial_value`` (None when absent), checked."""
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"{source}: 'slots' must be a mapping of slot names, got {_kind(section)}"
        )
    slots: dict[str, Any] = {}
    for name, spec in section.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{source}: slot names must be non-empty strings, got {name!r}")
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{source}: slot '{name}' must be a mapping, got {_kind(spec)}")
        slot_type = spec.get("type")
        if slot_type is not None and not isinstance(slot_type, str):
            raise ConfigError(f"{source}: slot '{name}': 'type' must be a string")
        slots[name] = spec.get("initial_value")
    return slots


def _kind(value: Any) -> str:
    return type(value).__name__


def load_domain(path: str | os.PathLike[str]) -> Domain:
    """Read a domain file, or every ``*.yml``/``*.yaml`` under a directory (sorted)."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml"))
        if not files:
            raise ConfigError(f"domain directory {str(root)!r} holds no .yml files")
    else:
        files = [root]
    parts = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read domain file {str(file)!r}: {exc.strerror}") from None
        try:
            parts.append(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise ConfigError(f"domain file {str(file)!r} is not valid YAML: {exc}") from None
    return parse_domain(parts, str(root))


__all__ = ["Domain", "load_domain", "parse_domain"]
