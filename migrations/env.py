"""Alembic environment of the SQL tracker store (after Alembic's generic template).

The database comes from, in order: a connection handed over by eventstore itself
(``config.attributes["connection"]``), ``-x url=...``, the ``EVENTSTORE_DB_URL`` environment
variable, or ``sqlalchemy.url``. A URL without a driver gets the project's one
(``postgresql://`` -> psycopg 3, ``mysql://`` -> pymysql, ``oracle://`` -> oracledb).
Only the store's own tables are compared, so other tables in the database are left alone.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL

from eventstore.errors import ConfigError
from eventstore.stores.sql_schema import TABLE_NAMES, metadata
from eventstore.stores.sql_url import parse_url

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Compare only the tables (and their indexes) this project owns."""
    if type_ == "table":
        return name in TABLE_NAMES
    return True


def database_url() -> URL:
    """The URL to migrate, from ``-x url=``, ``EVENTSTORE_DB_URL`` or ``sqlalchemy.url``."""
    text = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("EVENTSTORE_DB_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not text:
        raise ConfigError(
            "no database URL: pass -x url=DIALECT://... or set EVENTSTORE_DB_URL "
            "(or use: eventstore db upgrade --endpoints endpoints.yml)"
        )
    return parse_url(text)


def configure_options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "include_name": include_name,
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
    }


def run_migrations_offline() -> None:
    """Emit the SQL for the chosen dialect (``alembic upgrade head --sql``)."""
    url = database_url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **configure_options(url.get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over a live connection (eventstore's own, or one made from the URL)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **configure_options(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()
        return
    url = database_url()
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, **configure_options(conn.dialect.name))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
