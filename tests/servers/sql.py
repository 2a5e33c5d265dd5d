"""PostgreSQL and MariaDB: the machine's servers, with a fresh database per test session.

A fresh database per session keeps concurrent test runs (and CI) from seeing each other.
A server that is down fails the tests that need it; it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN = os.environ.get("EVENTSTORE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_HOST = os.environ.get("EVENTSTORE_TEST_MYSQL_HOST", "127.0.0.1")


def database_url(admin: str, database: str) -> str:
    """The admin URL's server and credentials, with the psycopg driver and ``database``."""
    from sqlalchemy.engine import make_url

    url = make_url(admin).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://`` URL of a new, empty database, dropped at the end."""
    import psycopg

    name = f"es_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield database_url(PG_ADMIN, name)
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """``mysql+pymysql://`` URL of a new, empty MariaDB database, dropped at the end."""
    import pymysql

    name = f"es_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = pymysql.connect(host=MYSQL_HOST, port=3306, user="root", connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        pytest.fail(f"MariaDB is not reachable at {MYSQL_HOST}:3306: {exc}")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin.close()
    yield f"mysql+pymysql://root@{MYSQL_HOST}:3306/{name}?charset=utf8mb4"
    admin = pymysql.connect(host=MYSQL_HOST, port=3306, user="root")
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()
