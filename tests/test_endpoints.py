"""endpoints.yml: sections, ${VAR} substitution, and store creation from config."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import (
    ConfigError,
    UnknownBackendError,
    create_tracker_store,
    load_endpoints,
)
from eventstore.endpoints import parse_endpoints
from eventstore.stores.memory import InMemoryTrackerStore


def test_sections_are_read(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yml"
    path.write_text(
        "tracker_store:\n  type: sql\n  db: bot.db\nevent_broker:\n  type: file\n"
        "action_endpoint:\n  url: http://localhost:5055/webhook\n"
    )
    endpoints = load_endpoints(path)
    assert endpoints.tracker_store == {"type": "sql", "db": "bot.db"}
    assert endpoints.event_broker == {"type": "file"}


def test_missing_sections_are_none() -> None:
    endpoints = parse_endpoints("")
    assert endpoints.tracker_store is None and endpoints.event_broker is None


def test_unquoted_env_vars_are_substituted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_HOST", "db.internal")
    monkeypatch.setenv("ES_PORT", "5433")
    endpoints = parse_endpoints(
        "tracker_store:\n  url: ${ES_HOST}\n  port: ${ES_PORT}\n  db: pre_${ES_HOST}_post\n"
        "  literal: '${ES_HOST}'\n"
    )
    assert endpoints.tracker_store == {
        "url": "db.internal",
        "port": "5433",
        "db": "pre_db.internal_post",
        "literal": "${ES_HOST}",  # quoted stays literal, as in Rasa
    }


def test_unset_env_var_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ES_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match="ES_NOT_SET"):
        parse_endpoints("tracker_store:\n  password: ${ES_NOT_SET}\n")


def test_missing_file_and_bad_yaml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read endpoints file"):
        load_endpoints(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_endpoints("tracker_store: [unclosed\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_endpoints("tracker_store: 5\n")


@pytest.mark.parametrize("type_name", [None, "in_memory", "IN_MEMORY", "memory", "InMemory"])
def test_in_memory_names(type_name: str | None) -> None:
    config = None if type_name is None else {"type": type_name}
    assert isinstance(create_tracker_store(config), InMemoryTrackerStore)


def test_unknown_type_is_an_error_with_a_hint() -> None:
    with pytest.raises(UnknownBackendError, match="did you mean 'redis'"):
        create_tracker_store({"type": "rediss"})
    with pytest.raises(UnknownBackendError, match="unknown type 'cassandra'"):
        create_tracker_store({"type": "cassandra"})


def test_unknown_key_is_refused_with_did_you_mean() -> None:
    with pytest.raises(ConfigError, match="unknown key 'tpe'"):
        create_tracker_store({"type": "in_memory", "tpe": 1})


def test_custom_store_by_dotted_path_receives_its_keys() -> None:
    store = create_tracker_store(
        {"type": "tests.stores.custom_store.ListTrackerStore", "url": "mem://x", "label": "a"}
    )
    from tests.stores.custom_store import ListTrackerStore

    assert isinstance(store, ListTrackerStore)
    assert store.url == "mem://x" and store.label == "a"
    assert store.append("u1", [{"event": "pause"}]) == 1


def test_bad_dotted_paths_are_errors() -> None:
    with pytest.raises(UnknownBackendError, match="cannot import module"):
        create_tracker_store({"type": "no_such_pkg.module.Store"})
    with pytest.raises(UnknownBackendError, match="has no attribute"):
        create_tracker_store({"type": "tests.stores.custom_store.Missing"})
    with pytest.raises(ConfigError, match="not a TrackerStore subclass"):
        create_tracker_store({"type": "tests.stores.custom_store.NotAStore"})


def test_legacy_store_type_key_wins() -> None:
    store = create_tracker_store({"store_type": "in_memory", "type": "redis"})
    assert isinstance(store, InMemoryTrackerStore)


@pytest.mark.parametrize("size", [0, 5])
def test_tracker_cache_size_is_a_setting_of_every_store(size: int) -> None:
    store = create_tracker_store({"type": "in_memory", "tracker_cache_size": size})
    store.append("u1", [{"event": "pause"}])
    assert store.retrieve("u1") is not None
    assert store._trackers.size == size
    assert (store._trackers.get("u1") is not None) == (size > 0)
    with pytest.raises(ConfigError, match="tracker_cache_size"):
        create_tracker_store({"type": "in_memory", "tracker_cache_size": -1})


def test_a_store_built_directly_honours_tracker_cache_size(redis_url: str) -> None:
    """Not only ``from_config``: the constructor applies the setting too (every backend)."""
    from eventstore.stores.redis.store import RedisConfig, RedisTrackerStore

    store = RedisTrackerStore(RedisConfig(url=redis_url, tracker_cache_size=0))
    try:
        assert store._trackers.size == 0
    finally:
        store.close()
