"""The one place botocore errors become eventstore errors: the store, its table helpers and
the Rasa-layout reader all translate through ``translate``, so every message names what
failed, and none shows a secret."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventstore.drivers import require
from eventstore.errors import BackendUnavailable, ConcurrencyError, ConfigError
from eventstore.secrets import scrub
from eventstore.stores.dynamo.items import number

UNAVAILABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
}


class Conflict(ConcurrencyError):
    """A failed condition on the meta item; ``found`` is the meta item DynamoDB returned."""

    def __init__(
        self, sender_id: str, expected: int | None, actual: int | None, found: dict[str, Any]
    ) -> None:
        super().__init__(sender_id, expected, actual)
        self.found = found


@contextmanager
def translate(
    doing: str, *, sender_id: str | None = None, expected: int | None = None
) -> Iterator[None]:
    """The one place botocore errors become eventstore errors (``doing`` names what failed).

    A failed condition on the meta item is a ``ConcurrencyError`` (with the version found);
    throttling, server and connection errors are ``BackendUnavailable``; missing
    credentials or region are ``ConfigError``.
    """
    exceptions = require("botocore.exceptions", "dynamo")
    try:
        yield
    except exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code in ("TransactionCanceledException", "ConditionalCheckFailedException"):
            reasons = exc.response.get("CancellationReasons") or [
                {"Code": "ConditionalCheckFailed", "Item": exc.response.get("Item")}
            ]
            codes = {r.get("Code") for r in reasons}
            if codes & {"ConditionalCheckFailed", "TransactionConflict"}:
                found = next((r.get("Item") for r in reasons if r.get("Item")), None) or {}
                # a failed condition on a missing meta item: the log is empty (version 0);
                # a conflict with another transaction tells no version
                checked = found or "ConditionalCheckFailed" in codes
                actual = number(found, "version") if checked else None
                raise Conflict(sender_id or "", expected, actual, found) from exc
        reasons = exc.response.get("CancellationReasons") or []
        unavailable = code in UNAVAILABLE_CODES or any(
            r.get("Code") == "ThrottlingError" for r in reasons
        )
        what = "is unavailable" if unavailable else "refused the request"
        raise BackendUnavailable(
            f"DynamoDB {what} while {doing}: {code}: {scrub(str(error.get('Message', '')))}"
        ) from exc
    except (exceptions.NoCredentialsError, exceptions.NoRegionError) as exc:
        raise ConfigError(f"DynamoDB client while {doing}: {scrub(str(exc))}") from exc
    except exceptions.BotoCoreError as exc:
        raise BackendUnavailable(
            f"DynamoDB is unreachable while {doing}: {scrub(str(exc))}"
        ) from exc
