"""Import optional drivers with an error that says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from eventstore.errors import MissingDependencyError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise ``MissingDependencyError`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra) from exc
