"""Every object that holds a secret masks it in ``repr`` and ``str``: loaded endpoints, their
sections (nested ones too) and every backend's and broker's settings model."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import brokers
import eventstore
from eventstore import load_endpoints
from eventstore.config import StrictConfig

SECRET = "S3cr3t-p@ss"
ENDPOINTS = f"""
tracker_store:
  type: sql
  dialect: postgresql
  url: 127.0.0.1
  username: bot
  password: '{SECRET}'
  query:
    sslpassword: '{SECRET}'
event_broker:
  type: pika
  url: amqp://bot:{SECRET}@rabbit/vhost
  password: '{SECRET}'
  queues: [events]
"""


def assert_masked(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and "S3cr3t" not in text, text


def test_loaded_endpoints_and_their_sections_mask_passwords(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yml"
    path.write_text(ENDPOINTS)
    endpoints = load_endpoints(path)
    assert endpoints.tracker_store is not None and endpoints.event_broker is not None
    assert_masked(repr(endpoints), str(endpoints), f"{endpoints}")
    for section in (endpoints.tracker_store, endpoints.event_broker):
        assert_masked(repr(section), str(section), f"{section}", repr(section.get("query")))
    assert "'password': '***'" in repr(endpoints.tracker_store)
    assert "amqp://bot:***@rabbit/vhost" in repr(endpoints.event_broker)
    # the values themselves are untouched: they are what the drivers get
    assert endpoints.tracker_store["password"] == SECRET
    assert endpoints.tracker_store["query"]["sslpassword"] == SECRET
    assert endpoints.tracker_store == {
        "type": "sql",
        "dialect": "postgresql",
        "url": "127.0.0.1",
        "username": "bot",
        "password": SECRET,
        "query": {"sslpassword": SECRET},
    }


def _settings_models() -> list[type[StrictConfig]]:
    for package in (eventstore, brokers):  # every module, wherever a model lives
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)
    found: list[type[StrictConfig]] = []
    todo = [StrictConfig]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return sorted(set(found), key=lambda c: c.__qualname__)


def _with_secrets(model: type[StrictConfig]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = str(field.annotation)
        if "SecretStr" in annotation:
            data[name] = SecretStr(SECRET)
        elif name in ("url", "endpoint_url") and "str" in annotation:
            url = f"scheme://user:{SECRET.replace('@', '%40')}@host:1/db"
            data[name] = [url] if annotation.startswith("list") else url
    return data


@pytest.mark.parametrize(
    "model", [m for m in _settings_models() if _with_secrets(m)], ids=lambda m: m.__qualname__
)
def test_every_settings_model_masks_its_secrets(model: type[StrictConfig]) -> None:
    instance = model.model_construct(**_with_secrets(model))  # a URL need not be valid here
    assert_masked(repr(instance), str(instance), f"{instance!s}")


def test_the_settings_models_with_secrets_are_all_found() -> None:
    with_secrets = {m.__qualname__ for m in _settings_models() if _with_secrets(m)}
    assert {"SQLConfig", "RedisConfig", "MongoConfig", "DynamoConfig", "ServerSettings"} <= (
        with_secrets
    )
    assert {"PikaBrokerConfig", "KafkaBrokerConfig", "SQLBrokerConfig"} <= with_secrets


def test_secret_fields_are_secret_strings() -> None:
    """A setting named like a secret is a ``SecretStr``, so no code path can print it."""
    from eventstore.secrets import is_secret_key

    for model in _settings_models():
        for name, field in model.model_fields.items():
            if is_secret_key(name):
                assert SecretStr.__name__ in str(field.annotation), (model, name)


def test_one_masking_rule_for_urls_options_and_driver_messages() -> None:
    """``eventstore.secrets`` is the one implementation every backend and broker shows
    URLs and driver messages through: user-info passwords (raw ``@`` and ``/`` too) and
    secret query options are masked, the rest of the URL stays readable."""
    from eventstore.secrets import mask_url, redact, scrub

    assert mask_url("redis://u:p@ss/w@h:1/0") == "redis://u:***@h:1/0"
    assert mask_url("redis://:pw@h") == "redis://:***@h"
    assert mask_url("mongodb://u@h/db") == "mongodb://u@h/db"
    shown = mask_url("postgresql://u@h/db?sslpassword=pw&connect_timeout=5&api_key=k")
    assert shown == "postgresql://u@h/db?sslpassword=***&connect_timeout=5&api_key=***"
    assert redact("GET /events?token=abc&limit=5 via amqp://g:pw@rabbit/") == (
        "GET /events?token=***&limit=5 via amqp://g:***@rabbit/"
    )
    assert scrub(f"auth failed for {SECRET} at mongodb://u:x@h", SECRET, None) == (
        "auth failed for *** at mongodb://u:***@h"
    )


def test_sql_store_and_broker_reprs_mask_secret_url_options(tmp_path: Path) -> None:
    from brokers.sql import SQLEventBroker
    from eventstore.stores.sql.url import SQLConfig, build_url, shown_url

    url = build_url(
        SQLConfig(
            dialect="postgresql",
            url="db.example",
            password=SecretStr(SECRET),
            query={"sslpassword": SECRET, "sslmode": "require"},
        )
    )
    assert_masked(shown_url(url), repr(SQLEventBroker(url)))
    assert "sslmode=require" in shown_url(url) and "db.example" in shown_url(url)
