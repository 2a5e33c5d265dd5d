"""A ``type:`` that names a SQL dialect means that dialect, never SQLite by default."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from eventstore import ConfigError, create_tracker_store
from eventstore.cli.db import open_database


def test_type_postgresql_with_host_and_db_writes_to_postgresql(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = make_url(postgres_url)
    sender = f"dialect-{uuid.uuid4().hex[:8]}"
    for type_name in ("postgresql", "postgres", "PostgreSQL"):
        section = {
            "type": type_name,
            "url": url.host,
            "port": url.port,
            "db": url.database,
            "username": url.username,
        }
        with create_tracker_store(section) as store:
            assert store.url.get_backend_name() == "postgresql"
            store.append(sender, [{"event": "action", "name": type_name, "timestamp": 1.0}])
    assert list(tmp_path.iterdir()) == []  # no SQLite file named after the database
    with create_tracker_store({"type": "sql", "url": postgres_url}) as store:
        assert [e["name"] for e in store.read(sender)] == ["postgresql", "postgres", "PostgreSQL"]


def test_each_dialect_type_sets_its_dialect(tmp_path: Path) -> None:
    for type_name, dialect in (("mysql", "mysql"), ("mariadb", "mariadb"), ("oracle", "oracle")):
        path = tmp_path / f"{type_name}.yml"
        path.write_text(f"tracker_store:\n  type: {type_name}\n  url: db.invalid\n  db: x\n")
        database = open_database(str(path), None)
        assert database.url.get_backend_name() == dialect
        database.dispose()
    with create_tracker_store({"type": "sqlite", "db": str(tmp_path / "a.db")}) as store:
        assert store.url.get_backend_name() == "sqlite"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"type": "postgresql", "dialect": "sqlite"},
            "tracker_store: type 'postgresql' means dialect 'postgresql', but 'dialect' is "
            "'sqlite'; use type: sql with the dialect you mean",
        ),
        (
            {"type": "sql", "dialect": "postgresql", "url": "sqlite:///x.db"},
            "tracker_store: dialect 'postgresql' disagrees with the url's 'sqlite'; "
            "drop one of them",
        ),
        (
            {"type": "mysql", "url": "postgresql://u:pw@h/db"},
            "tracker_store: dialect 'mysql' disagrees with the url's 'postgresql'; "
            "drop one of them",
        ),
    ],
)
def test_a_dialect_that_disagrees_is_refused(section: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        create_tracker_store(section)
    assert str(err.value) == message


def test_a_dialect_type_agrees_with_a_driver_suffix_or_an_alias() -> None:
    for dialect in ("postgresql+psycopg", "postgres", "pg"):
        section = {"type": "postgresql", "dialect": dialect, "url": "db.invalid", "db": "x"}
        from eventstore.factory import store_class

        cls, settings = store_class(section)
        assert cls.__name__ == "SQLTrackerStore" and settings["dialect"] == dialect


def test_a_misspelled_dialect_type_suggests_the_dialect() -> None:
    with pytest.raises(ConfigError, match="unknown type 'postgre'; did you mean 'postgres'"):
        create_tracker_store({"type": "postgre"})
