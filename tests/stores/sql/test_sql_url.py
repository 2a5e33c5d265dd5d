"""SQL settings: Rasa's keys and URL rules, drivers per dialect, and passwords never shown."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from sqlalchemy.engine import make_url

from eventstore.config import parse_config
from eventstore.errors import BackendUnavailable, ConfigError, MissingDependencyError
from eventstore.factory import create_tracker_store
from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.stores.sql.url import SQLConfig, build_url
from eventstore.testing import action
from tests.servers.sql import PG_ADMIN

SECRET = "p@ss:/%w0rd?#"


def url_of(**settings: object) -> str:
    return build_url(parse_config(SQLConfig, settings, "tracker_store")).render_as_string(
        hide_password=False
    )


def test_defaults_are_rasas_sqlite_file() -> None:
    assert url_of() == "sqlite:///rasa.db"
    assert url_of(db="/var/lib/bot/events.db") == "sqlite:////var/lib/bot/events.db"


def test_a_full_url_is_used_as_given_and_other_keys_are_ignored() -> None:
    url = url_of(url="postgresql://u:pw@db.example:5433/bot?sslmode=require", port=1, db="x")
    assert url == "postgresql+psycopg://u:pw@db.example:5433/bot?sslmode=require"
    # a URL that names its driver keeps it
    assert url_of(url="mysql+pymysql://root@h/d").startswith("mysql+pymysql://")


def test_host_colon_port_supplies_the_port() -> None:
    assert url_of(dialect="postgresql", url="db.example:6543", db="rasa") == (
        "postgresql+psycopg://db.example:6543/rasa"
    )
    assert url_of(dialect="postgresql", url="db.example", port=5544, db="rasa") == (
        "postgresql+psycopg://db.example:5544/rasa"
    )


@pytest.mark.parametrize(
    ("dialect", "driver"),
    [
        ("postgresql", "postgresql+psycopg"),
        ("postgres", "postgresql+psycopg"),
        ("mysql", "mysql+pymysql"),
        ("mariadb", "mariadb+pymysql"),
        ("oracle", "oracle+oracledb"),
        ("Oracle", "oracle+oracledb"),
    ],
)
def test_dialects_map_to_the_project_drivers(dialect: str, driver: str) -> None:
    assert url_of(dialect=dialect, url="h", db="d").startswith(f"{driver}://h/d")


def test_query_and_special_characters_in_the_password() -> None:
    settings = {
        "dialect": "mysql",
        "url": "h",
        "username": "bot",
        "password": SECRET,
        "db": "rasa",
        "query": {"charset": "utf8mb4"},
    }
    url = build_url(parse_config(SQLConfig, settings, "tracker_store"))
    assert url.password == SECRET and url.username == "bot" and url.host == "h"
    assert url.query == {"charset": "utf8mb4"}
    assert make_url(url.render_as_string(hide_password=False)).password == SECRET
    assert SECRET not in url.render_as_string(hide_password=True)


def test_query_values_from_yaml_may_be_numbers() -> None:
    url = url_of(dialect="postgresql", url="h", db="d", query={"connect_timeout": 5})
    assert url == "postgresql+psycopg://h/d?connect_timeout=5"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dialect": "mssql"}, "unknown SQL dialect 'mssql'"),
        ({"port": "fivethousand"}, "key 'port'"),
        ({"dialect": "postgresql", "url": "h:abc"}, "the port in 'url' must be an integer"),
        ({"usernme": "x"}, "did you mean 'username'"),
        ({"url": "postgresql://h:notaport/db"}, "not a valid database URL"),
    ],
)
def test_bad_settings_are_one_clear_error(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_tracker_store({"type": "sql", **settings})
    assert message in str(info.value)


def test_passwords_stay_out_of_reprs() -> None:
    config = SQLConfig(dialect="postgresql", url="h", username="u", password=SECRET)
    full = SQLConfig(url=f"postgresql://u:{quote(SECRET, safe='')}@h/db")
    assert build_url(full).password == SECRET
    for text in (repr(config), str(config), repr(full), str(full)):
        assert "w0rd" not in text
    assert "***" in repr(full)


def test_a_missing_driver_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError) as info:
        SQLTrackerStore(SQLConfig(dialect="postgresql+psycopg2", url="h"))
    assert "pip install 'eventstore[postgresql]'" in str(info.value)
    # pymysql hidden from a fresh interpreter: the mysql extra is named
    code = (
        "import sys; sys.modules['pymysql'] = None\n"
        "from eventstore.errors import MissingDependencyError\n"
        "from eventstore import create_tracker_store\n"
        "try:\n"
        "    create_tracker_store({'type': 'sql', 'dialect': 'mysql', 'url': 'h'})\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'eventstore[mysql]'" in done.stdout, done.stderr


@pytest.fixture
def new_pg_name() -> Iterator[str]:
    name = f"es_login_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_login_db_creates_the_database_and_no_log_shows_the_password(
    new_pg_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL trusts local connections, so any password is accepted: it must still
    travel correctly escaped in the URL and never be shown."""
    caplog.set_level(logging.DEBUG)
    settings = {
        "dialect": "postgresql",
        "url": "127.0.0.1:5432",
        "username": "postgres",
        "password": SECRET,
        "db": new_pg_name,
        "login_db": "postgres",
    }
    store = create_tracker_store({"type": "sql", **settings})
    try:
        assert store.append("u1", [action("a")]) == 1
        assert store.read("u1")[0]["name"] == "a"
        assert "w0rd" not in repr(store)
        assert "***" in repr(store)
    finally:
        store.close()
    again = create_tracker_store({"type": "sql", **settings})  # exists now: reused
    try:
        assert again.version("u1") == 1
    finally:
        again.close()
    assert any(new_pg_name in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert "w0rd" not in record.getMessage()


def test_an_unreachable_server_is_backend_unavailable_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = {
        "dialect": "postgresql",
        "url": "127.0.0.1:1",  # nothing listens on port 1
        "username": "bot",
        "password": SECRET,
        "db": "rasa",
    }
    with pytest.raises(BackendUnavailable) as info:
        create_tracker_store({"type": "sql", **settings})
    message = str(info.value)
    assert "postgresql+psycopg://bot:***@127.0.0.1:1/rasa" in message
    assert "w0rd" not in message and "\n" not in message
    chain: BaseException | None = info.value
    while chain is not None:  # nor anywhere down the exception chain
        assert "w0rd" not in str(chain)
        chain = chain.__cause__
    for record in caplog.records:
        assert "w0rd" not in record.getMessage()
