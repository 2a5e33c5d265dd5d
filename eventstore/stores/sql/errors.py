"""The one place SQLAlchemy and DB-API errors become eventstore errors: the store, its
schema upgrades, ``eventstore db`` and the UI's SQL search all translate through
``translate``, so every message names the database and what failed, and none shows the
password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

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


# Driver error codes: unique violation, and transient conflicts worth retrying.
_PG_UNIQUE = "23505"
_PG_RETRY = {"40001", "40P01"}  # serialization failure, deadlock
_MYSQL_UNIQUE = 1062
_MYSQL_RETRY = {1213, 1205}  # deadlock, lock wait timeout
_ORA_UNIQUE = "ORA-00001"


def is_unique_violation(exc: DBAPIError) -> bool:
    """Whether the driver error is a duplicate key (the (sender_id, seq) index)."""
    if not isinstance(exc, IntegrityError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _PG_UNIQUE:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] == _MYSQL_UNIQUE:
        return True
    message = str(orig)
    return "UNIQUE constraint failed" in message or _ORA_UNIQUE in message


def is_transient(exc: DBAPIError) -> bool:
    """Deadlocks, serialization failures and a busy SQLite: the transaction may run again."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _PG_RETRY:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _MYSQL_RETRY:
        return True
    return "database is locked" in str(orig)
