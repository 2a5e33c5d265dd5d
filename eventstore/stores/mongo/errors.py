"""The one place pymongo errors become eventstore errors: the store, its locks and the
Rasa-layout reader all translate through ``translate``, so every message names the server
and what failed, and none shows the password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from eventstore.drivers import require
from eventstore.errors import (
    BackendUnavailable,
    ConcurrencyError,
    ConfigError,
    EventValidationError,
)
from eventstore.secrets import mask_url, scrub


@dataclass(frozen=True)
class Server:
    """The server and login the messages name (the password only to mask it)."""

    url: str
    db: str
    username: str | None = None
    auth_source: str = "admin"
    password: str | None = field(default=None, repr=False)

    def scrub(self, exc: BaseException) -> str:
        """The driver's message, without the password should it ever appear in it."""
        return scrub(str(exc).split(", full error:", 1)[0], self.password)


@contextmanager
def translate(
    server: Server, sender_id: str | None = None, expected: int | None = None, doing: str = ""
) -> Iterator[None]:
    """Translate pymongo exceptions: a duplicate key is a conflict, the rest unavailable.

    ``doing`` (optional) names the operation in the messages of refusals and outages.
    """
    errors = require("pymongo.errors", "mongo")
    during = f" while {doing}" if doing else ""
    try:
        yield
    except errors.DuplicateKeyError as exc:
        raise ConcurrencyError(sender_id or "?", expected, None) from exc
    except (errors.InvalidDocument, UnicodeEncodeError, OverflowError) as exc:  # arguments
        raise EventValidationError(f"MongoDB cannot encode the request: {exc}") from exc
    except errors.BulkWriteError as exc:
        codes = {e.get("code") for e in exc.details.get("writeErrors", ())}
        if 11000 in codes:
            raise ConcurrencyError(sender_id or "?", expected, None) from exc
        raise BackendUnavailable(f"MongoDB write failed: {server.scrub(exc)}") from exc
    except errors.ConfigurationError as exc:
        raise ConfigError(f"tracker_store: {server.scrub(exc)}") from exc
    except errors.OperationFailure as exc:
        if exc.code == 20 and "replica set" in str(exc):  # a standalone mongod
            raise ConfigError(
                f"tracker_store: MongoDB at {mask_url(server.url)} is not a replica "
                "set member; appends need transactions: run mongod with --replSet (one "
                "node is enough) and rs.initiate()"
            ) from exc
        if exc.code in (13, 18):  # Unauthorized, AuthenticationFailed
            raise BackendUnavailable(
                f"MongoDB refused access for user {server.username!r} (auth_source "
                f"{server.auth_source!r}, db {server.db!r}): {server.scrub(exc)}"
            ) from exc
        if exc.code == 251:  # NoSuchTransaction: the server aborted it (too slow)
            raise BackendUnavailable(
                "MongoDB aborted the append's transaction before it committed (it outlived "
                "the server's transactionLifetimeLimitSeconds?); append fewer events at once"
            ) from exc
        if exc.has_error_label("TransientTransactionError") and expected is not None:
            # another append to this conversation kept winning until we gave up
            raise ConcurrencyError(sender_id or "?", expected, None) from exc
        raise BackendUnavailable(
            f"MongoDB refused the operation{during} (code {exc.code}): {server.scrub(exc)}"
        ) from exc
    except errors.PyMongoError as exc:  # ServerSelectionTimeout, AutoReconnect, ...
        raise BackendUnavailable(
            f"MongoDB at {mask_url(server.url)} is unavailable{during}: "
            f"{type(exc).__name__}: {server.scrub(exc)}"
        ) from exc
