"""The one place redis-py errors become eventstore errors: the store, its locks and the
Rasa-layout reader all translate through ``translate``, so every message names the server
and what failed, and none shows the password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eventstore.drivers import require
from eventstore.errors import BackendUnavailable
from eventstore.secrets import scrub


@contextmanager
def translate(doing: str, where: str, *secrets: str | None) -> Iterator[None]:
    """Turn a ``RedisError`` raised inside into ``BackendUnavailable`` (``raise ... from``).

    ``where`` names the server (``host:port``), ``doing`` what failed; any of ``secrets``
    the driver's message might echo is masked.
    """
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, require("redis", "redis").RedisError):
            raise
        message = scrub(str(exc), *secrets)
        raise BackendUnavailable(
            f"Redis at {where} failed while {doing}: {type(exc).__name__}: {message}"
        ) from exc
