"""Settings of the HTTP service, and their hand-over to uvicorn's worker processes."""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from pydantic import Field, SecretStr

from eventstore.config import StrictConfig, parse_config, secret_value

#: Default limit of a request body (1 MiB).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Environment variable that carries the settings to worker processes (``--workers N``).
SETTINGS_ENV = "EVENTSTORE_SERVER_SETTINGS"


class ServerSettings(StrictConfig):
    """Everything ``eventstore run`` takes; secrets are ``SecretStr`` and never printed."""

    endpoints: str | None = None
    #: A Rasa domain.yml (or a directory of them): tracker JSON carries its slots.
    domain: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=5005, ge=0, le=65535)
    auth_token: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    #: HMAC algorithms only: the secret is shared (Rasa's asymmetric keys are not supported).
    jwt_method: Literal["HS256", "HS384", "HS512"] = "HS256"
    workers: int = Field(default=1, ge=1)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    #: Seconds uvicorn waits for in-flight requests on shutdown before cancelling them.
    graceful_timeout: int = Field(default=30, ge=0)
    access_log: bool = True
    #: Origins browsers may call the API from (Rasa's ``--cors``); ``*`` allows any.
    cors_origins: tuple[str, ...] = ()
    log_level: str = "info"
    #: Seconds to keep trying an unreachable store at start-up (0: exit at once).
    wait_for_store: float = Field(default=0.0, ge=0)
    #: Seconds between store polls of a caught-up event stream or long-poll.
    feed_poll_interval: float = Field(default=0.5, gt=0, le=60)

    @property
    def auth_enabled(self) -> bool:
        """Whether requests need a token or a JWT."""
        return bool(self.auth_token or self.jwt_secret)

    def to_env(self) -> str:
        """JSON for ``SETTINGS_ENV``, secrets included (child processes need them)."""
        data: dict[str, Any] = self.model_dump()
        for key in ("auth_token", "jwt_secret"):
            data[key] = secret_value(getattr(self, key))
        return json.dumps(data)

    @classmethod
    def from_env(cls) -> ServerSettings:
        """The settings a parent process put into ``SETTINGS_ENV`` (defaults if unset)."""
        raw = os.environ.get(SETTINGS_ENV)
        return parse_config(cls, json.loads(raw) if raw else {}, "server")
