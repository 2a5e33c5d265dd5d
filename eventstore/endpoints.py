"""Read endpoints.yml: ``tracker_store:``, ``event_broker:``, ``privacy:``, ``retention:``
and ``analytics:``.

``${VAR}`` is expanded in every section.

As in Rasa, only unquoted scalars are expanded (``"${VAR}"`` stays literal), and an unset
variable is an error naming it. Expanded values are strings; the backend's pydantic config
casts them (so ``port: ${PORT}`` works).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eventstore.errors import ConfigError
from eventstore.secrets import Section, masked

#: The sections eventstore reads.
SECTIONS = ("tracker_store", "event_broker", "privacy", "retention", "analytics")
#: Top-level keys that are settings rather than sections.
SETTINGS = ("domain",)
#: Sections of Rasa's (and Rasa Pro's) endpoints.yml, accepted and left to Rasa, so one
#: file serves both. Any other top-level key is a typo and refused.
RASA_SECTIONS = frozenset(
    {
        "action_endpoint",
        "models",
        "nlg",
        "nlu",
        "lock_store",
        "vector_store",
        "model_groups",
        "contextual_response_rephraser",
    }
)

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
    """The sections of endpoints.yml that eventstore uses (None when a section is absent).

    Sections are dicts whose repr masks secrets, and so is the repr of this object.
    """

    tracker_store: dict[str, Any] | None = None
    event_broker: dict[str, Any] | None = None
    path: str | None = None
    privacy: dict[str, Any] | None = None
    retention: dict[str, Any] | None = None
    #: ``analytics:``: where ``eventstore analytics`` keeps its tables (``url``).
    analytics: dict[str, Any] | None = None
    #: ``domain:``: a Rasa domain file or directory (relative to the endpoints file's folder).
    domain: str | None = None

    def __repr__(self) -> str:
        return (
            f"Endpoints(tracker_store={masked(self.tracker_store)!r}, "
            f"event_broker={masked(self.event_broker)!r}, path={self.path!r}, "
            f"privacy={masked(self.privacy)!r}, retention={masked(self.retention)!r}, "
            f"analytics={masked(self.analytics)!r}, domain={self.domain!r})"
        )

    __str__ = __repr__

    def store_section(self, command: str) -> dict[str, Any]:
        """The ``tracker_store`` section, or a ``ConfigError``: ``command`` needs a store.

        A file without one never means the in-memory store silently; that takes
        ``tracker_store: {type: in_memory}``.
        """
        if self.tracker_store is None:
            raise ConfigError(
                f"{self.path or 'endpoints.yml'} has no tracker_store section; {command} "
                "needs one (write 'tracker_store: {type: in_memory}' for the in-memory store)"
            )
        return self.tracker_store


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
    known = sorted(set(SECTIONS) | set(SETTINGS) | RASA_SECTIONS)
    for key in data:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            tip = f"did you mean '{hint[0]}'?" if hint else f"known: {', '.join(known)}"
            raise ConfigError(f"{source}: unknown section {str(key)!r}; {tip}")
    sections: dict[str, Section | None] = {}
    for key in SECTIONS:
        section = data.get(key)
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"{source}: section '{key}' must be a mapping")
        sections[key] = _secret_safe(section) if section is not None else None
    domain = data.get("domain")
    if domain is not None and (not isinstance(domain, str) or not domain.strip()):
        raise ConfigError(
            f"{source}: 'domain' must be the path of a Rasa domain file, got {domain!r}"
        )
    return Endpoints(
        sections["tracker_store"],
        sections["event_broker"],
        source,
        privacy=sections["privacy"],
        retention=sections["retention"],
        analytics=sections["analytics"],
        domain=domain,
    )


def _secret_safe(section: dict[str, Any]) -> Section:
    """``section`` (and the mappings in it) as ``Section``: their reprs mask secrets."""
    return Section({k: _secret_safe(v) if isinstance(v, dict) else v for k, v in section.items()})


def load_endpoints(path: str | os.PathLike[str]) -> Endpoints:
    """Read an endpoints.yml file; a missing file is a ``ConfigError``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read endpoints file {str(file)!r}: {exc.strerror}") from None
    endpoints = parse_endpoints(text, str(file))
    if endpoints.domain is not None:  # relative to the endpoints file, not the cwd
        domain = str(file.parent / Path(endpoints.domain).expanduser())
        endpoints = dataclasses.replace(endpoints, domain=domain)
    return endpoints
