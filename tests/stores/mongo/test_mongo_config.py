"""MongoDB store settings: Rasa's keys and defaults, strict validation, no password shown."""

from __future__ import annotations

import pytest

from eventstore.config import parse_config
from eventstore.endpoints import parse_endpoints
from eventstore.errors import ConfigError
from eventstore.factory import create_tracker_store
from eventstore.secrets import mask_url
from eventstore.stores.mongo.store import MongoConfig, MongoTrackerStore


def parse(**values: object) -> MongoConfig:
    return parse_config(MongoConfig, values, "tracker_store")


def test_defaults_are_rasas() -> None:
    config = parse()
    assert config.url == "mongodb://localhost:27017"
    assert (config.db, config.auth_source, config.collection) == ("rasa", "admin", "conversations")
    assert config.username is None and config.password is None
    assert config.server_selection_timeout_ms == 5000
    assert config.query_indexes is True


def test_unknown_key_is_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="unknown key 'colection'; did you mean 'collection'"):
        parse(colection="x")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("url", "postgres://localhost", "must start with mongodb:// or mongodb\\+srv://"),
        ("url", "mongodb://", "names no host"),
        ("db", "my.db", "key 'db'"),
        ("db", "", "key 'db'"),
        ("collection", "system.users", "key 'collection'"),
        ("collection", "a$b", "key 'collection'"),
        ("server_selection_timeout_ms", "soon", "key 'server_selection_timeout_ms'"),
        ("server_selection_timeout_ms", 0, "greater than 0"),
        ("transaction_retry_seconds", -1, "key 'transaction_retry_seconds'"),
    ],
)
def test_bad_values_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(**{key: value})


def test_strings_from_environment_variables_are_cast() -> None:
    config = parse(server_selection_timeout_ms="300", query_indexes="false")
    assert config.server_selection_timeout_ms == 300 and config.query_indexes is False


def test_credentials_in_the_url_move_to_their_keys_and_are_never_shown() -> None:
    config = parse(url="mongodb://bot:p%40ss%3Aw0rd@db1:27017,db2/?replicaSet=rs0")
    assert config.url == "mongodb://db1:27017,db2/?replicaSet=rs0"
    assert config.username == "bot"
    assert config.password is not None and config.password.get_secret_value() == "p@ss:w0rd"
    for text in (repr(config), str(config), repr(MongoTrackerStore.from_settings(config))):
        assert "p@ss" not in text and "p%40ss" not in text


def test_the_same_password_twice_is_fine_two_different_ones_are_refused() -> None:
    same = parse(url="mongodb://bot:pw1@h/", password="pw1", username="bot")
    assert same.password is not None and same.password.get_secret_value() == "pw1"
    with pytest.raises(ConfigError) as info:
        parse(url="mongodb://bot:pw1@h/", password="other-secret")
    assert "key 'password'" in str(info.value) and "given both in 'url'" in str(info.value)
    assert "pw1" not in str(info.value) and "other-secret" not in str(info.value)
    with pytest.raises(ConfigError, match="key 'username'"):
        parse(url="mongodb://bot@h/", username="someone-else")


def test_mask_url_hides_passwords_in_user_info_and_options() -> None:
    assert mask_url("mongodb://u:secret@h:1/db?w=1") == "mongodb://u:***@h:1/db?w=1"
    masked = mask_url("mongodb://h/?tls=true&tlsCertificateKeyFilePassword=secret&w=1")
    assert "secret" not in masked and masked.endswith("&w=1")
    assert mask_url("mongodb://h:27017/") == "mongodb://h:27017/"


def test_endpoints_yml_builds_the_store_without_connecting() -> None:
    endpoints = parse_endpoints(
        "tracker_store:\n"
        "  type: mongod\n"
        "  url: mongodb://bot:hunter2@127.0.0.1:9/\n"
        "  db: bots\n"
        "  collection: talks\n"
        "  auth_source: bots\n"
    )
    store = create_tracker_store(endpoints.tracker_store)
    try:
        assert isinstance(store, MongoTrackerStore)
        assert store.settings.db == "bots" and store.settings.auth_source == "bots"
        assert "hunter2" not in repr(store)
    finally:
        store.close()


def test_a_bad_key_in_endpoints_is_a_config_error_before_connecting() -> None:
    with pytest.raises(ConfigError, match="tracker_store: unknown key 'host'"):
        create_tracker_store({"type": "mongo", "host": "mongodb://x"})
