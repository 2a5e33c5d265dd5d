"""The SQL dialects the store speaks and their names: the ``dialect:`` key, a URL's scheme,
and the ``type:`` names that mean "the sql store with this dialect" (``SQL_DIALECT_TYPES``).

Data only (no SQLAlchemy import), so the registry can read it without loading a driver.
"""

from __future__ import annotations

#: Dialect name -> (SQLAlchemy driver name, driver module, extra that installs it).
DRIVERS: dict[str, tuple[str, str | None, str | None]] = {
    "sqlite": ("sqlite", None, None),
    "postgresql": ("postgresql+psycopg", "psycopg", "postgresql"),
    "mysql": ("mysql+pymysql", "pymysql", "mysql"),
    "mariadb": ("mariadb+pymysql", "pymysql", "mysql"),
    "oracle": ("oracle+oracledb", "oracledb", "oracle"),
}
#: Other spellings accepted for ``dialect`` (and as the scheme of a full URL).
DIALECT_ALIASES: dict[str, str] = {"postgres": "postgresql", "pg": "postgresql"}
#: Driver modules of explicit ``dialect+driver`` names, for the missing-driver message.
DRIVER_MODULES: dict[str, tuple[str, str]] = {
    "psycopg": ("psycopg", "postgresql"),
    "psycopg2": ("psycopg2", "postgresql"),
    "pymysql": ("pymysql", "mysql"),
    "oracledb": ("oracledb", "oracle"),
}
#: Types that name a SQL dialect: the ``sql`` store with that ``dialect``, never another.
#: (A ``dialect:`` key that names a different one is refused.)
SQL_DIALECT_TYPES: dict[str, str] = {name: name for name in DRIVERS} | DIALECT_ALIASES
