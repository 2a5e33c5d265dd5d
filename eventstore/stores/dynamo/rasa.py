"""Read-only reader for Rasa's DynamoDB layout: one item per conversation in ``states``,
``{sender_id, events: [...]}``, numbers as Decimals (read back as floats; integral values as
ints).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, SecretStr

from eventstore.config import StrictConfig, secret_value
from eventstore.drivers import require
from eventstore.stores.dynamo.errors import translate
from eventstore.stores.rasa_layout import RasaLayoutReader


class RasaDynamoConfig(StrictConfig):
    """Rasa's ``type: dynamo`` keys; ``endpoint_url`` and keys are for non-AWS endpoints."""

    table_name: str = Field("states", validation_alias=AliasChoices("table_name", "tablename"))
    region: str = "us-east-1"
    endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None


def from_dynamo(value: Any) -> Any:
    """Undo Rasa's float -> Decimal: Decimals become floats (integral ones ints), recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


class RasaDynamoReader(RasaLayoutReader):
    """Rasa's Dynamo layout: one item ``{sender_id, events}`` per conversation."""

    Config: ClassVar[type[StrictConfig] | None] = RasaDynamoConfig

    def __init__(self, table: Any) -> None:
        super().__init__()
        self.table = table

    @classmethod
    def from_settings(cls, settings: Any) -> RasaDynamoReader:
        boto3 = require("boto3", "dynamo")
        with translate("creating the client (Rasa's layout)"):
            resource = boto3.resource(
                "dynamodb",
                region_name=settings.region,
                endpoint_url=settings.endpoint_url,
                aws_access_key_id=secret_value(settings.aws_access_key_id),
                aws_secret_access_key=secret_value(settings.aws_secret_access_key),
                aws_session_token=secret_value(settings.aws_session_token),
            )
        return cls(resource.Table(settings.table_name))

    def _load(self, sender_id: str) -> list[dict[str, Any]] | None:
        conditions = require("boto3.dynamodb.conditions", "dynamo")
        with translate(f"reading {sender_id!r} (Rasa's layout)"):
            page = self.table.query(
                KeyConditionExpression=conditions.Key("sender_id").eq(sender_id),
                ScanIndexForward=False,
                Limit=1,
            )
        items = page.get("Items") or []
        if not items:
            return None
        events = from_dynamo(items[0].get("events") or [])
        for event in events:  # Rasa's timestamps are floats; keep them so
            if isinstance(event, dict) and isinstance(event.get("timestamp"), int):
                event["timestamp"] = float(event["timestamp"])
        return events if isinstance(events, list) else []

    def keys(self) -> Iterator[str]:
        """Ids from a paginated scan projecting ``sender_id`` (as Rasa lists them)."""
        seen_last: set[str] = set()
        args: dict[str, Any] = {"ProjectionExpression": "sender_id"}
        while True:
            with translate("listing conversations (Rasa's layout)"):
                page = self.table.scan(**args)
            current: set[str] = set()
            for item in page.get("Items", []):
                sid = str(item["sender_id"])
                if sid not in seen_last and sid not in current:  # 2.8 items share a sender
                    current.add(sid)
                    yield sid
            seen_last = current
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
