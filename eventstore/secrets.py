"""Masking of secrets in everything eventstore shows: reprs, logs, banners and errors.

The one implementation, used by every backend and broker: a key that looks like a secret
(password, secret, token, credential, api key) shows ``***``; a URL shows no password (in its
user info) and no secret query option (``?password=``, ``&token=``, ``sslpassword=`` ...);
a driver's message loses any secret value it may echo (``scrub``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|credential|api_?key|access_key", re.I)
#: The password of a URL in free text: up to the last ``@`` before the path.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^\s/?#]*@")
#: A query option whose name says it holds a secret (``token=``, ``sslpassword=``, ...).
_SECRET_OPTION = re.compile(
    r"([?&;](?:[\w.-]*(?:pass(?:word)?|secret|token|credential|api_?key|access_key)[\w.-]*)=)"
    r"[^&;#\s\"']*",
    re.IGNORECASE,
)


def is_secret_key(key: object) -> bool:
    """Whether a setting named ``key`` holds a secret."""
    return bool(_SECRET_KEY.search(str(key)))


def redact(text: str) -> str:
    """``text`` (a log line, a message) with secret query options and URL passwords masked."""
    return _URL_PASSWORD.sub(rf"\1{MASK}@", _SECRET_OPTION.sub(rf"\1{MASK}", text))


def mask_url(url: str) -> str:
    """One URL safe to show: the password of its user info and its secret options masked.

    Whatever stands between ``user:`` and the last ``@`` of the URL is the password, so one
    written with raw ``@``, ``/`` or ``#`` in it (an invalid URL) is masked whole as well.
    """
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    if sep and at and colon and "/" not in user:
        url = f"{scheme}{sep}{user}:{MASK}@{host}"
    return redact(url)


def scrub(message: str, *secrets: str | None) -> str:
    """A driver's ``message`` without any of ``secrets`` (should it echo one) or URL password."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, MASK)
    return redact(message)


def masked(value: Any, key: object = "") -> Any:
    """A copy of ``value`` safe to show: secret keys masked, URL passwords removed."""
    if is_secret_key(key) and value is not None and not isinstance(value, Mapping | list):
        return MASK
    if isinstance(value, Mapping):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(masked(v, key) for v in value)
    if isinstance(value, str):
        return mask_url(value)
    return value


class Section(dict[str, Any]):
    """A section of endpoints.yml: a plain dict whose repr and str mask its secrets."""

    def __repr__(self) -> str:
        return repr(masked(dict(self)))

    __str__ = __repr__


def describe_section(section: Mapping[str, Any] | None) -> str:
    """``key=value`` pairs of an endpoints.yml section, secrets and URL passwords masked."""
    if not section:
        return ""
    parts = []
    for key, value in masked(dict(section)).items():
        shown = "{" + describe_section(value) + "}" if isinstance(value, Mapping) else str(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)
