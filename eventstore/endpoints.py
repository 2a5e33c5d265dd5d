"""Read endpoints.yml: ``tracker_store:`` and ``event_broker:`` sections, ``${VAR}`` expanded.

As in Rasa, only unquoted scalars are expanded (``"${VAR}"`` stays literal), and an unset
variable is an error naming it. Expanded values are strings; the backend's pydantic config
casts them (so ``port: ${PORT}`` works).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eventstore.errors import ConfigError

_ENV_PATTERN = re.compile(r"\$\{([^}^{]+)\}")
_HAS_ENV = re.compile(r".*\$\{[^}^{]+\}.*")  # resolvers match from the start of the scalar


class _EnvLoader(yaml.SafeLoader):
    """A safe loader whose plain scalars holding ``${VAR}`` get the ``!env_var`` tag."""


def _expand(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    value = str(loader.construct_scalar(node))  # type: ignore[arg-type]

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"environment variable '{name}' used in endpoints.yml is not set")
        return os.environ[name]

    return _ENV_PATTERN.sub(substitute, value)


_EnvLoader.add_implicit_resolver("!env_var", _HAS_ENV, None)
_EnvLoader.add_constructor("!env_var", _expand)


@dataclass(frozen=True)
class Endpoints:
    """The sections of endpoints.yml that eventstore uses (None when a section is absent)."""

    tracker_store: dict[str, Any] | None = None
    event_broker: dict[str, Any] | None = None
    path: str | None = None


def parse_endpoints(text: str, source: str = "endpoints.yml") -> Endpoints:
    """Parse endpoints YAML text (see ``load_endpoints``)."""
    try:
        data = yaml.load(text, Loader=_EnvLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of sections, got {type(data).__name__}")
    sections = {}
    for key in ("tracker_store", "event_broker"):
        section = data.get(key)
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"{source}: section '{key}' must be a mapping")
        sections[key] = section
    return Endpoints(sections["tracker_store"], sections["event_broker"], source)


def load_endpoints(path: str | os.PathLike[str]) -> Endpoints:
    """Read an endpoints.yml file; a missing file is a ``ConfigError``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read endpoints file {str(file)!r}: {exc.strerror}") from None
    return parse_endpoints(text, str(file))
