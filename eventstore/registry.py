"""Names of stores and brokers, resolved lazily so no driver is imported before it is used.

A ``type:`` is looked up case-insensitively here; a dotted path (``pkg.module.Class``)
loads a custom class. An unknown name is an error with a did-you-mean hint, never a silent
fallback to another backend.

Each name table sits beside what it names: the stores' in ``eventstore.stores`` (the SQL
dialects' in ``stores/sql/dialects.py``, the Rasa-layout readers' in
``stores/rasa_layout.py``), the brokers' in ``brokers``. The store tables are re-exported
here for the callers that look them up.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from eventstore.errors import UnknownBackendError
from eventstore.stores import STORE_ALIASES, STORE_NAMES, TRACKER_STORES
from eventstore.stores.rasa_layout import RASA_READERS
from eventstore.stores.sql.dialects import SQL_DIALECT_TYPES


def resolve(kind: str, type_name: str, table: dict[str, str], aliases: dict[str, str]) -> Any:
    """Return the class registered as ``type_name`` (or at that dotted path)."""
    if not isinstance(type_name, str) or not type_name.strip():
        raise UnknownBackendError(f"{kind}: 'type' must be a non-empty string, got {type_name!r}")
    key = type_name.strip().lower()
    key = aliases.get(key, key)
    if key in table:
        return import_object(table[key])
    if "." in type_name:
        module, _, name = type_name.strip().rpartition(".")
        return import_object(f"{module}:{name}", kind=kind)
    names = sorted(set(table) | set(aliases))
    hint = difflib.get_close_matches(key, names, n=1)
    tip = f"; did you mean '{hint[0]}'?" if hint else ""
    raise UnknownBackendError(
        f"{kind}: unknown type {type_name!r}{tip} "
        f"(known: {', '.join(names)}, or a dotted path to a class)"
    )


def import_object(path: str, kind: str = "backend") -> Any:
    """Import ``module:attr``; a failure is an ``UnknownBackendError`` naming the path."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # MissingDependencyError is not an ImportError: it passes
        raise UnknownBackendError(f"{kind}: cannot import module {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownBackendError(
            f"{kind}: module {module_name!r} has no attribute {attr!r}"
        ) from None


__all__ = [
    "RASA_READERS",
    "SQL_DIALECT_TYPES",
    "STORE_ALIASES",
    "STORE_NAMES",
    "TRACKER_STORES",
    "import_object",
    "resolve",
]
