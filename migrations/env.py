"""Alembic environment of the SQL tracker store (after Alembic's generic template).

The database comes from, in order: a connection handed over by eventstore itself
(``config.attributes["connection"]``), ``-x url=...``, the ``EVENTSTORE_DB_URL`` environment
variable, or ``sqlalchemy.url``. A URL without a driver gets the project's one
(``postgresql://`` -> psycopg 3, ``mysql://`` -> pymysql, ``oracle://`` -> oracledb).
Only the store's own tables are compared, so other tables in the database are left alone,
and on MySQL/MariaDB the collation of the exactly-compared name columns is compared too
(Alembic alone overlooks a column that has the default collation instead of the binary one).
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Column, create_engine, pool, text
from sqlalchemy.engine import URL
from sqlalchemy.types import TypeEngine

from eventstore.errors import ConfigError
from eventstore.stores.sql.analytics_schema import ANALYTICS_TABLE_NAMES
from eventstore.stores.sql.schema import TABLE_NAMES, ExactString, metadata
from eventstore.stores.sql.url import parse_url

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Compare only the tables (and their indexes) this project owns."""
    if type_ == "table":
        return name in TABLE_NAMES or name in ANALYTICS_TABLE_NAMES
    return True


def compare_type(
    migration: Any,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """MySQL/MariaDB: an ``ExactString`` column differs when its collation is not the binary one.

    Alembic flags a collation only when both sides name one, and the reflected type names
    none when the column has the table's default: read the column's collation from
    ``information_schema`` instead. Everything else: Alembic's own comparison (``None``).
    """
    dialect = migration.dialect
    if dialect.name not in ("mysql", "mariadb") or not isinstance(metadata_type, ExactString):
        return None
    expected = metadata_type.dialect_impl(dialect).collation  # type: ignore[attr-defined]
    actual = getattr(inspected_type, "collation", None)
    if migration.connection is not None:
        actual = migration.connection.execute(
            text(
                "SELECT collation_name FROM information_schema.columns WHERE "
                "table_schema = DATABASE() AND table_name = :t AND column_name = :c"
            ),
            {"t": metadata_column.table.name, "c": metadata_column.name},
        ).scalar()
    return True if actual != expected else None


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
        "compare_type": compare_type,
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
