"""Rasa Pro's dialogue stack: ``stack`` events carry JSON Patch updates (RFC 6902).

Rasa Pro (CALM) logs every change of the dialogue stack as a ``stack`` event whose
``update`` is a JSON Patch dumped as a string; the tracker's ``stack`` is the list of
frames the patches build, emptied by ``restart`` and ``session_started``. The active flow
is the ``flow_id`` of the top frame, as Rasa's ``tracker.active_flow``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from eventstore.errors import EventValidationError

_OPS = {"add", "remove", "replace", "move", "copy", "test"}


def parse_patch(text: Any) -> list[dict[str, Any]]:
    """The operations of a ``stack`` event's ``update``; ``ValueError`` names what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"must be a JSON Patch dumped as a string, got {type(text).__name__}")
    try:
        patch = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not JSON: {exc}") from None
    if not isinstance(patch, list):
        raise ValueError("must be a JSON Patch: a list of operations")
    for op in patch:
        if not isinstance(op, dict) or op.get("op") not in _OPS:
            raise ValueError(f"has an operation that is not a JSON Patch one: {op!r:.80}")
        if not isinstance(op.get("path"), str):
            raise ValueError("has an operation without a string 'path'")
    return patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} does not start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    target = doc
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    return target, parts[-1]


def _get(doc: Any, path: str) -> Any:
    target = doc
    for part in _pointer(path):
        target = target[int(part)] if isinstance(target, list) else target[part]
    return target


def _remove(doc: Any, path: str) -> Any:
    parent, key = _parent(doc, _pointer(path))
    if isinstance(parent, list):
        return parent.pop(int(key))
    return parent.pop(key)


def _put(doc: Any, path: str, value: Any, insert: bool) -> Any:
    """``add`` (``insert``: a list grows) or ``replace`` (the target must exist)."""
    parts = _pointer(path)
    if not parts:
        return value
    parent, key = _parent(doc, parts)
    if isinstance(parent, list):
        if insert:
            parent.insert(len(parent) if key == "-" else int(key), value)
        else:
            parent[int(key)] = value
    elif insert or key in parent:
        parent[key] = value
    else:
        raise KeyError(key)
    return doc


def apply_patch(stack: list[Any], update: str) -> list[Any]:
    """A new stack: ``stack`` with the patch in ``update`` applied (``stack`` is not changed)."""
    doc: Any = copy.deepcopy(stack)
    for op in parse_patch(update):
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _put(doc, path, op["value"], insert=True)  # parsed just now: unshared
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _put(doc, path, op["value"], insert=False)
        elif kind == "move":
            doc = _put(doc, path, _remove(doc, op["from"]), insert=True)
        elif kind == "copy":
            doc = _put(doc, path, copy.deepcopy(_get(doc, op["from"])), insert=True)
        elif _get(doc, path) != op.get("value"):  # test
            raise ValueError(f"test failed at {path!r}")
    if not isinstance(doc, list):
        raise ValueError("the patched stack is not a list of frames")
    return doc


def check_update(update: Any, index: int) -> None:
    """Refuse a ``stack`` event whose ``update`` is not a JSON Patch (replay would fail)."""
    try:
        parse_patch(update)
    except ValueError as exc:
        raise EventValidationError(f"update {exc}", index=index, field="update") from None


def active_flow(stack: list[Any]) -> str | None:
    """The flow of the top frame (Rasa's ``tracker.active_flow``), None for an empty stack."""
    if not stack or not isinstance(stack[-1], dict):
        return None
    flow = stack[-1].get("flow_id")
    return flow if isinstance(flow, str) else None
