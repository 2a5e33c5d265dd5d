"""The Redis store's settings: ``url`` as a host or a redis:// URL, credentials masked."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from eventstore.config import StoreSettings, secret_value
from eventstore.secrets import MASK, mask_url


class RedisConfig(StoreSettings):
    """``type: redis``: where the server is, how to log in, and how keys are named."""

    url: str = Field(default="localhost", description="host name, or a redis:// or rediss:// URL")
    port: int = Field(default=6379, ge=1, le=65535)
    db: int = Field(default=0, ge=0)
    username: str | None = None
    password: SecretStr | None = None
    record_exp: float | None = Field(
        default=None, gt=0, description="seconds a conversation lives after its last append"
    )
    key_prefix: str | None = Field(default=None, description="letters and digits, as in Rasa")
    use_ssl: bool = False
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_ca_certs: str | None = None
    socket_timeout: float | None = Field(default=10.0, gt=0)
    socket_connect_timeout: float | None = Field(default=5.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _split_url(cls, data: Any) -> Any:
        """Spread a full URL over the other keys, so ``url`` keeps only the host.

        The password leaves the URL for the ``password`` key (a ``SecretStr``); a key given
        both in the URL and on its own with another value is an error.
        """
        if not isinstance(data, dict):
            return data
        url = data.get("url")
        if not isinstance(url, str) or "://" not in url:
            return data
        try:
            derived = _url_parts(url)
        except ValueError:
            # left for the ``url`` check below, which names the key; without the password
            data["url"] = mask_url(url)
            return data
        clashes = [
            key
            for key, value in derived.items()
            if key != "url" and data.get(key) is not None and _plain(data[key]) != _plain(value)
        ]
        if clashes:
            # the input is shown beside the message: never with a password in it
            data["url"] = mask_url(url)
            if data.get("password") is not None:
                data["password"] = MASK
            raise ValueError(
                f"url sets {clashes[0]} and the '{clashes[0]}' key sets another value; "
                "give it in one place"
            )
        data.update(derived)
        return data

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        if "://" in value:  # a URL still here did not parse: say why
            _url_parts(value)
            # the password was masked out of it, and with it what made it unreadable
            raise ValueError("not a valid redis:// URL (check the characters in the password)")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _alphanumeric_prefix(cls, value: str | None) -> str | None:
        # Rasa ignores a non-alphanumeric prefix with a warning; we refuse it instead, so
        # two deployments meant to be apart never share keys silently.
        if value and not value.isalnum():
            raise ValueError("must contain only letters and digits (as in Rasa)")
        return value or None

    @field_validator("record_exp")
    @classmethod
    def _at_least_a_millisecond(cls, value: float | None) -> float | None:
        if value is not None and value < 0.001:
            raise ValueError("must be at least 0.001 seconds (TTLs are kept in milliseconds)")
        return value

    @model_validator(mode="after")
    def _ssl_files_need_ssl(self) -> RedisConfig:
        files = [k for k in ("ssl_keyfile", "ssl_certfile", "ssl_ca_certs") if getattr(self, k)]
        if files and not self.use_ssl:
            raise ValueError(f"{', '.join(files)} given but use_ssl is false")
        return self


def _url_parts(url: str) -> dict[str, Any]:
    """host, port, db, username, password and use_ssl as a ``redis://`` URL states them."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"scheme must be redis:// or rediss://, got {scheme}://")
    derived: dict[str, Any] = {"url": parts.hostname or "localhost"}
    port = parts.port  # raises ValueError for a port that is not a number
    if port is not None:
        derived["port"] = port
    path = parts.path.strip("/")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"db"})
    if unknown:
        raise ValueError(f"option {unknown[0]!r} is not supported in the url; use the store's keys")
    db = path or (query["db"][0] if "db" in query else "")
    if db:
        if not db.isdigit():
            raise ValueError(f"the database must be a number, got {db!r}")
        derived["db"] = int(db)
    if parts.username:
        derived["username"] = unquote(parts.username)
    if parts.password:
        derived["password"] = unquote(parts.password)
    if scheme == "rediss":
        derived["use_ssl"] = True
    return derived


def _plain(value: Any) -> str:
    plain = secret_value(value) if isinstance(value, SecretStr) else value
    return str(plain).strip().lower() if isinstance(plain, bool | int) else str(plain)
