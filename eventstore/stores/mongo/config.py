"""Settings of the MongoDB store (``type: mongod``).

A user and password written into the URL are moved into ``username`` / ``password`` while
validating, so the URL kept in the settings (and every ``repr``) holds no secret.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from pydantic import Field, PositiveFloat, PositiveInt, SecretStr, field_validator, model_validator

from eventstore.config import StoreSettings, secret_value
from eventstore.secrets import mask_url

_SCHEMES = ("mongodb://", "mongodb+srv://")
# scheme://[user[:password]@]rest ; '@' and ':' inside user info must be percent-encoded
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^@/]*)@(?P<rest>.*)$")
_FORBIDDEN_IN_DB = set('/\\. "$*<>:|?\x00')


class _Conflict:
    """A marker the URL parser leaves in a key given twice (so the error can name it)."""


class MongoConfig(StoreSettings):
    """``type: mongod`` (alias ``mongo``): where the events live and how long to wait."""

    url: str = "mongodb://localhost:27017"
    db: str = "rasa"
    username: str | None = None
    password: SecretStr | None = None
    auth_source: str = "admin"
    collection: str = "conversations"
    #: Index the query filters (type, intent, action, time); each index costs every write.
    query_indexes: bool = True
    #: How long to look for a usable server before an operation fails (BackendUnavailable).
    server_selection_timeout_ms: PositiveInt = 5000
    connect_timeout_ms: PositiveInt = 5000
    #: How long one network read may take; None waits forever.
    socket_timeout_ms: PositiveInt | None = 30000
    #: How long an append keeps retrying transient transaction conflicts before failing.
    transaction_retry_seconds: PositiveFloat = Field(default=10.0, le=600)

    @model_validator(mode="before")
    @classmethod
    def _credentials_out_of_url(cls, data: Any) -> Any:
        """Move ``user:password@`` from the URL into their own keys, so no repr shows them."""
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            return data
        match = _USERINFO.match(data["url"])
        if not match:
            return data
        data = dict(data)
        user, _, password = match["info"].partition(":")
        data["url"] = match["scheme"] + match["rest"]
        for key, value in (("username", unquote(user)), ("password", unquote(password))):
            if not value:
                continue
            given = data.get(key)
            given = secret_value(given) if isinstance(given, SecretStr | str) else given
            if given is not None and given != value:
                data[key] = _Conflict()
            else:
                data[key] = value
        return data

    @field_validator("username", "password", mode="before")
    @classmethod
    def _given_once(cls, value: Any) -> Any:
        if isinstance(value, _Conflict):
            raise ValueError("given both in 'url' and as its own key, with different values")
        return value

    @field_validator("url")
    @classmethod
    def _mongodb_url(cls, value: str) -> str:
        if not value.startswith(_SCHEMES):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        if len(value) <= len(value.split("://", 1)[0]) + 3:
            raise ValueError("names no host")
        return value

    @field_validator("db")
    @classmethod
    def _database_name(cls, value: str) -> str:
        bad = sorted(set(value) & _FORBIDDEN_IN_DB)
        if not value or bad or len(value) > 63:
            raise ValueError('must be 1-63 characters without any of / \\ . space " $ * < > : | ?')
        return value

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        if not value or "$" in value or "\x00" in value or value.startswith("system."):
            raise ValueError("must be non-empty, without '$', and not start with 'system.'")
        if len(value) > 200:
            raise ValueError("must be at most 200 characters")
        return value

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "url" and isinstance(value, str) else value


__all__ = ["MongoConfig"]
