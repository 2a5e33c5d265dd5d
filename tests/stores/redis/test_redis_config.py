"""``type: redis`` settings: defaults, URLs, and the messages a wrong value gets.

Nothing here needs a server except the last test, which connects through the factory.
"""

from __future__ import annotations

from typing import Any

import pytest

from eventstore.config import parse_config
from eventstore.errors import ConfigError
from eventstore.factory import create_tracker_store
from eventstore.stores.redis.store import RedisConfig, RedisTrackerStore
from eventstore.testing import action, new_id


def settings(**section: Any) -> RedisConfig:
    return parse_config(RedisConfig, section, "tracker_store")


def error(**section: Any) -> str:
    with pytest.raises(ConfigError) as info:
        settings(**section)
    return str(info.value)


def test_defaults_match_rasa() -> None:
    s = settings()
    assert (s.url, s.port, s.db, s.username, s.password) == ("localhost", 6379, 0, None, None)
    assert (s.record_exp, s.key_prefix, s.use_ssl) == (None, None, False)
    assert (s.ssl_keyfile, s.ssl_certfile, s.ssl_ca_certs) == (None, None, None)


def test_values_from_endpoints_yml_strings_are_cast() -> None:
    s = settings(url="cache", port="6380", db="2", record_exp="3600", use_ssl="true")
    assert (s.url, s.port, s.db, s.record_exp, s.use_ssl) == ("cache", 6380, 2, 3600.0, True)


def test_a_full_url_fills_the_other_keys() -> None:
    s = settings(url="rediss://bob:p%40ss@cache.example:6390/3", key_prefix="bot1")
    assert (s.url, s.port, s.db, s.username, s.use_ssl) == ("cache.example", 6390, 3, "bob", True)
    assert s.password is not None and s.password.get_secret_value() == "p@ss"
    assert "p@ss" not in repr(s)
    store = RedisTrackerStore(s)
    assert (
        repr(store) == "RedisTrackerStore('rediss://bob@cache.example:6390/3', key_prefix='bot1')"
    )
    store.close()


def test_a_url_may_repeat_a_key_with_the_same_value() -> None:
    s = settings(url="redis://h:6390?db=4", port=6390, db="4")
    assert (s.url, s.port, s.db) == ("h", 6390, 4)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"key_prefix": "my-bot"},
            "tracker_store: key 'key_prefix': must contain only letters and "
            "digits (as in Rasa) (got 'my-bot')",
        ),
        (
            {"record_exp": 0},
            "tracker_store: key 'record_exp': Input should be greater than 0 (got 0)",
        ),
        (
            {"record_exp": 0.0001},
            "tracker_store: key 'record_exp': must be at least 0.001 seconds "
            "(TTLs are kept in milliseconds) (got 0.0001)",
        ),
        ({"prot": 6379}, "tracker_store: unknown key 'prot'; did you mean 'port'?"),
        ({"port": 70000}, "tracker_store: key 'port': Input should be less than or equal to 65535"),
        ({"db": -1}, "tracker_store: key 'db': Input should be greater than or equal to 0"),
        (
            {"url": "http://cache"},
            "tracker_store: key 'url': scheme must be redis:// or rediss://, "
            "got http:// (got 'http://cache')",
        ),
        (
            {"url": "redis://cache/zero"},
            "key 'url': the database must be a number, got 'zero'",
        ),
        (
            {"url": "redis://cache?timeout=3"},
            "key 'url': option 'timeout' is not supported in the url",
        ),
        ({"url": "redis://cache:6380", "port": 6379}, "url sets port and the 'port' key sets"),
        ({"url": "rediss://cache", "use_ssl": False}, "url sets use_ssl and the 'use_ssl' key"),
        ({"ssl_certfile": "/c.pem"}, "ssl_certfile given but use_ssl is false"),
    ],
)
def test_wrong_values_get_a_message_naming_the_key(section: dict[str, Any], message: str) -> None:
    assert message in error(**section)


def test_a_password_never_shows_in_config_errors() -> None:
    for section in (
        {"url": "redis://:hunter22@cache:6380/0", "port": 1},
        {"url": "redis://:hunter22@cache/0", "password": "hunter33"},
        {"url": "redis://u:hunter22@cache:notaport/0"},
        {"url": "redis://u:hun/ter22@cache/0", "db": 1},
        {"url": "redis://[::1"},
        {"url": "ftp://u:hunter22@cache"},
        {"password": "hunter22", "port": "x"},
    ):
        text = error(**section)
        assert "hunter2" not in text and "hunter3" not in text, text
    assert "url sets password" in error(url="redis://:hunter22@cache/0", password="hunter33")


def test_the_factory_builds_it_from_an_endpoints_section(redis_url: str, redis_prefix: str) -> None:
    store = create_tracker_store({"type": "Redis", "url": redis_url, "key_prefix": redis_prefix})
    assert isinstance(store, RedisTrackerStore)
    with store:
        sid = new_id()
        assert store.append(sid, [action("a")]) == 1
        assert store.key("log", sid) == f"{redis_prefix}:es:log:{sid}"
    with pytest.raises(ConfigError, match="did you mean 'record_exp'"):
        create_tracker_store({"type": "redis", "record_expiry": 10})
