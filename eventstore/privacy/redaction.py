"""The redaction engine: apply ``privacy.redaction`` rules to one event (or broker message).

Redaction works on a copy, one event at a time, and only ever touches the values the rules
name: ``event``, ``timestamp``, ``seq``, ``position``, ``sender_id``, intents and action
names stay as they were, so a redacted log replays into the same tracker shape.

What a rule finds is replaced by its action:

- ``mask``: the rule's fixed ``mask`` string;
- ``hash``: ``hmac:`` + HMAC-SHA256 of the value (hex) under a key from the environment,
  stable across processes and machines, different per key; one value always gives one
  token, so analytics can still count distinct values without seeing them;
- ``drop``: the value goes (a found substring is cut out, an entity leaves the list, a slot
  value becomes null, a metadata key is removed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from eventstore.privacy.config import RedactionRule, RedactionSettings
from eventstore.privacy.detectors import DETECTORS, Span

_TOKEN = re.compile(r"hmac:[0-9a-f]{64}")


def keyed_hash(value: Any, key: bytes) -> str:
    """``hmac:<hex>``: HMAC-SHA256 of ``value`` (text as is, anything else as sorted JSON).

    A value that already is such a token stays as it is, so redacting twice (two rules,
    or retention redacting a log redacted on write) changes nothing more.
    """
    if isinstance(value, str) and _TOKEN.fullmatch(value):
        return value
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    digest = hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"hmac:{digest}"


def _pattern_finder(pattern: re.Pattern[str]) -> Callable[[str], Iterable[Span]]:
    def find(text: str) -> Iterable[Span]:
        return (match.span() for match in pattern.finditer(text))

    return find


class _CompiledRule:
    """One rule, ready to run: its finders and its replacement."""

    def __init__(self, rule: RedactionRule, key: bytes | None) -> None:
        self.rule = rule
        self.fields = frozenset(rule.fields)
        self.entities = frozenset(rule.entities)
        self.slots = frozenset(rule.slots)
        self.metadata_keys = frozenset(rule.metadata_keys)
        self.finders: list[Callable[[str], Iterable[Span]]] = [
            DETECTORS[d].find for d in rule.detectors
        ]
        self.finders.extend(_pattern_finder(re.compile(p)) for p in rule.patterns)
        self.key = key

    @property
    def drops(self) -> bool:
        return self.rule.action == "drop"

    def replacement(self, value: Any) -> Any:
        """What a whole value (or a found substring) becomes; None for ``drop``."""
        action = self.rule.action
        if action == "mask":
            return self.rule.mask
        if action == "hash":
            assert self.key is not None
            return keyed_hash(value, self.key)
        return None

    def spans(self, text: str) -> list[Span]:
        found: list[Span] = []
        for finder in self.finders:
            found.extend(span for span in finder(text) if span[1] > span[0])
        return found


class Redactor:
    """Applies a list of rules to events; build it once, call ``redact`` per event."""

    def __init__(self, rules: tuple[RedactionRule, ...], key: bytes | None = None) -> None:
        if any(rule.action == "hash" for rule in rules) and not key:
            raise ValueError("a rule hashes values: the Redactor needs a key")
        self.rules = [_CompiledRule(rule, key) for rule in rules]

    @classmethod
    def from_settings(cls, settings: RedactionSettings) -> Redactor:
        """The redactor of a validated ``privacy.redaction`` section (key read from env)."""
        key = settings.hash_key() if settings.uses_hash else None
        return cls(settings.rules, key)

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return self.redact(event)

    def redact(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A redacted copy of one event or broker message (the input is never changed).

        Copied only where redaction writes (the event, its ``parse_data``): every deeper
        value it changes is rebuilt, so a deep copy per event was wasted work.
        """
        out = dict(event)
        if isinstance(out.get("parse_data"), dict):
            out["parse_data"] = dict(out["parse_data"])
        kind = out.get("event")
        for rule in self.rules:
            if kind == "user":
                self._user(out, rule)
            elif kind == "bot" and "bot_text" in rule.fields:
                _set_text(out, self._text(out.get("text"), rule, ()))
            elif kind == "slot" and "slots" in rule.fields:
                self._slot(out, rule)
            elif (
                kind == "entities"  # Rasa's EntitiesAdded
                and "entities" in rule.fields
                and isinstance(out.get("entities"), list)
            ):
                out["entities"] = self._entities(out["entities"], rule, [])
            if "metadata" in rule.fields and isinstance(out.get("metadata"), dict):
                out["metadata"] = self._metadata(out["metadata"], rule)
        return out

    # -- per event type -----------------------------------------------------------------
    def _user(self, event: dict[str, Any], rule: _CompiledRule) -> None:
        parse_data = event.get("parse_data")
        parse_data = parse_data if isinstance(parse_data, dict) else None
        literals: list[str] = []  # entity values acted on: also cut from the texts
        if parse_data is not None and "entities" in rule.fields:
            entities = parse_data.get("entities")
            if isinstance(entities, list):
                parse_data["entities"] = self._entities(entities, rule, literals)
        if "user_text" in rule.fields:
            _set_text(event, self._text(event.get("text"), rule, literals))
        if parse_data is not None and "parse_data_text" in rule.fields:
            _set_text(parse_data, self._text(parse_data.get("text"), rule, literals))

    def _entities(self, entities: list[Any], rule: _CompiledRule, literals: list[str]) -> list[Any]:
        kept = []
        for entity in entities:
            if not isinstance(entity, dict):
                kept.append(entity)
                continue
            if entity.get("entity") in rule.entities:
                value = entity.get("value")
                for text in (value, entity.get("text")):
                    if isinstance(text, str) and text:
                        literals.append(text)
                if rule.drops:
                    continue
                entity = {**entity, "value": rule.replacement(value)}
                if "text" in entity:
                    entity["text"] = rule.replacement(entity["text"])
                entity.pop("additional_info", None)  # duckling repeats the value there
            elif rule.finders:
                entity = {**entity, "value": self._deep(entity.get("value"), rule)}
                if isinstance(entity.get("text"), str):
                    entity["text"] = self._text(entity["text"], rule, ())
                if "additional_info" in entity:
                    entity["additional_info"] = self._deep(entity["additional_info"], rule)
            kept.append(entity)
        return kept

    def _slot(self, event: dict[str, Any], rule: _CompiledRule) -> None:
        if event.get("name") in rule.slots:
            event["value"] = rule.replacement(event.get("value"))
        elif rule.finders:
            event["value"] = self._deep(event.get("value"), rule)

    def _metadata(self, metadata: dict[str, Any], rule: _CompiledRule) -> dict[str, Any]:
        out = {}
        for key, value in metadata.items():
            if key in rule.metadata_keys:
                if not rule.drops:
                    out[key] = rule.replacement(value)
            else:
                out[key] = self._deep(value, rule) if rule.finders else value
        return out

    # -- values -------------------------------------------------------------------------
    def _deep(self, value: Any, rule: _CompiledRule) -> Any:
        """``value`` with every string inside it (lists and dicts too) searched."""
        if isinstance(value, str):
            return self._text(value, rule, ())
        if isinstance(value, list):
            return [self._deep(item, rule) for item in value]
        if isinstance(value, dict):
            return {key: self._deep(item, rule) for key, item in value.items()}
        return value

    def _text(self, text: Any, rule: _CompiledRule, literals: Any) -> Any:
        """``text`` with what ``rule`` finds (and the given literal values) replaced."""
        if not isinstance(text, str) or not text:
            return text
        spans = rule.spans(text)
        for literal in literals:
            start = text.find(literal)
            while start != -1:
                spans.append((start, start + len(literal)))
                start = text.find(literal, start + len(literal))
        if not spans:
            return text
        pieces = []
        cursor = 0
        for start, end in _disjoint(spans):
            pieces.append(text[cursor:start])
            pieces.append(rule.replacement(text[start:end]) or "")
            cursor = end
        pieces.append(text[cursor:])
        return "".join(pieces)


def _set_text(holder: dict[str, Any], text: Any) -> None:
    """Store a redacted ``text`` back, without adding a key that was absent."""
    if text is not None or "text" in holder:
        holder["text"] = text


def _disjoint(spans: list[Span]) -> list[Span]:
    """Overlapping spans merged, in text order."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
