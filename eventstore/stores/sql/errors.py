"""The one place SQLAlchemy and DB-API errors become eventstore errors: the store, its
schema upgrades, ``eventstore db`` and the UI's SQL search all translate through
``translate``, so every message names the database and what failed, and none shows the
password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from eventstore.errors import BackendUnavailable, EventStoreError
from eventstore.secrets import scrub


def describe(exc: BaseException, *secrets: str | None) -> str:
    """A driver error as one line, with the password (should a driver echo it) masked."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return scrub(f"{type(orig).__name__}: {lines[0] if lines else ''}".rstrip(": "), *secrets)


@contextmanager
def translate(action: str, where: str, *secrets: str | None) -> Iterator[None]:
    """``SQLAlchemyError`` inside becomes ``BackendUnavailable`` naming ``action`` and ``where``."""
    try:
        yield
    except EventStoreError:
        raise
    except SQLAlchemyError as exc:
        raise BackendUnavailable(f"{action} failed on {where}: {describe(exc, *secrets)}") from exc
