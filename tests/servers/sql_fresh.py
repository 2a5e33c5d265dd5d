"""Throwaway PostgreSQL / MariaDB databases per test, for tests that need an empty one.

The session databases of ``tests/servers/sql.py`` hold the contract suite's tables; the
migration tests need a database of their own (Rasa's layout, an empty one...).
``fresh_database("postgresql" | "mysql" | "sqlite")`` returns the URL of a new database;
each is dropped when the test ends. A server that is down fails the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers.sql import MYSQL_HOST, PG_ADMIN

FreshDatabase = Callable[[str], str]


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[FreshDatabase]:
    """A factory of empty databases: ``fresh_database(kind) -> URL``."""
    import psycopg
    import pymysql

    made: list[tuple[str, str]] = []

    def make(kind: str) -> str:
        name = f"es_fresh_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / (name + '.db')}"
        if kind == "postgresql":
            try:
                with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
                    admin.execute(f'CREATE DATABASE "{name}"')
            except psycopg.OperationalError as exc:
                pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
            made.append((kind, name))
            return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        if kind == "mysql":
            try:
                admin = pymysql.connect(host=MYSQL_HOST, user="root", connect_timeout=5)
            except pymysql.err.OperationalError as exc:
                pytest.fail(f"MariaDB is not reachable at {MYSQL_HOST}:3306: {exc}")
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            admin.close()
            made.append((kind, name))
            return f"mysql+pymysql://root@{MYSQL_HOST}:3306/{name}?charset=utf8mb4"
        raise ValueError(kind)

    yield make
    for kind, name in made:
        if kind == "postgresql":
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            admin = pymysql.connect(host=MYSQL_HOST, user="root")
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            admin.close()
