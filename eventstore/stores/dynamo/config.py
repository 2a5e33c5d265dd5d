"""The DynamoDB store's settings and its boto3 client."""

from __future__ import annotations

import re
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from eventstore.config import StoreSettings, secret_value
from eventstore.drivers import require
from eventstore.stores.dynamo.errors import translate

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class DynamoConfig(StoreSettings):
    """``tracker_store: {type: dynamo, ...}``; credentials default to boto3's chain."""

    tablename: str = Field("states", validation_alias=AliasChoices("tablename", "table_name"))
    region: str = "us-east-1"
    endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(10.0, gt=0)
    max_attempts: int = Field(3, ge=1, le=20)
    create_table: bool = True
    lease_seconds: float = Field(60.0, gt=0)

    @field_validator("tablename")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not _TABLE_NAME.match(value):
            raise ValueError("a DynamoDB table name is 3-255 characters of A-Z a-z 0-9 _ . -")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _key_pair(self) -> DynamoConfig:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("aws_access_key_id and aws_secret_access_key go together")
        return self


def make_client(settings: DynamoConfig) -> Any:
    """A boto3 DynamoDB client with the configured timeouts, retries and credentials."""
    boto3 = require("boto3", "dynamo")
    botocore_config = require("botocore.config", "dynamo")
    config = botocore_config.Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        max_pool_connections=32,
    )
    with translate("creating the client"):
        return boto3.session.Session().client(
            "dynamodb",
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            aws_access_key_id=secret_value(settings.aws_access_key_id),
            aws_secret_access_key=secret_value(settings.aws_secret_access_key),
            aws_session_token=secret_value(settings.aws_session_token),
            config=config,
        )
