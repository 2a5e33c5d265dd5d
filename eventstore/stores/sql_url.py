"""Settings of the SQL store and the database URL built from them, with secrets kept masked.

Rasa's keys and defaults: ``dialect`` (sqlite), ``url`` (host), ``port``, ``db`` (rasa.db),
``username``, ``password``, ``login_db``, ``query``. A ``url`` holding ``://`` is a full URL
used as given (the other keys are ignored); ``host:port`` in ``url`` supplies the port.
Everything else is assembled with ``sqlalchemy.engine.URL.create``, so any character in a
password works. Only ``url.render_as_string(hide_password=True)`` is ever shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field, SecretStr, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from eventstore.config import StoreSettings, secret_value
from eventstore.drivers import require
from eventstore.errors import ConfigError

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


class SQLConfig(StoreSettings):
    """``tracker_store: {type: sql, ...}``: Rasa's keys plus pool settings."""

    dialect: str = "sqlite"
    url: str | None = None
    port: int | None = None
    db: str = "rasa.db"
    username: str | None = None
    password: SecretStr | None = None
    login_db: str | None = None
    query: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)
    #: Connections kept open per process (SQLAlchemy's QueuePool; not used for SQLite files).
    pool_size: int = Field(default=5, ge=1)
    #: Extra connections allowed above ``pool_size`` under load.
    max_overflow: int = Field(default=10, ge=0)
    #: Seconds to wait for a free connection before failing.
    pool_timeout: float = Field(default=30.0, gt=0)
    #: Recycle connections older than this many seconds (-1: never).
    pool_recycle: int = 3600
    #: Test each connection before use, so a restarted server is reconnected transparently.
    pool_pre_ping: bool = True
    #: SQLite only: seconds a writer waits for the database lock.
    sqlite_busy_timeout: float = Field(default=30.0, ge=0)

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        name = value.strip().lower()
        base = name.split("+", 1)[0]
        base = DIALECT_ALIASES.get(base, base)
        if base not in DRIVERS:
            known = ", ".join(sorted(DRIVERS))
            raise ValueError(f"unknown SQL dialect {value!r}; known: {known}")
        return base + name[len(name.split("+", 1)[0]) :]

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for key, value in super().__repr_args__():
            if key == "url" and isinstance(value, str):
                yield key, mask_url_string(value)
            else:
                yield key, value


def mask_url_string(text: str) -> str:
    """``text`` with the password of a URL in it replaced by ``***``."""
    if "://" not in text:
        return text
    try:
        return make_url(text).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"


def with_driver(url: URL) -> URL:
    """``url`` with this project's driver when it names none (``postgresql://`` -> psycopg 3)."""
    if "+" in url.drivername:
        return url
    name = DIALECT_ALIASES.get(url.drivername, url.drivername)
    if name in DRIVERS:
        return url.set(drivername=DRIVERS[name][0])
    return url


def parse_url(text: str) -> URL:
    """A full URL string as a SQLAlchemy ``URL`` (with the default driver filled in)."""
    try:
        url = with_driver(make_url(text))
    except (ArgumentError, ValueError):  # not shown: the message could echo the password
        raise ConfigError(
            "tracker_store: 'url' is not a valid database URL "
            "(expected dialect[+driver]://user:password@host:port/database)"
        ) from None
    backend = url.get_backend_name()
    if DIALECT_ALIASES.get(backend, backend) not in DRIVERS:
        known = ", ".join(sorted(DRIVERS))
        raise ConfigError(f"tracker_store: 'url': unknown SQL dialect {backend!r}; known: {known}")
    return url


def build_url(config: SQLConfig, database: str | None = None) -> URL:
    """The URL to connect with, following Rasa's rules (see the module docstring).

    ``database`` overrides the database name (``login_db`` handling connects elsewhere first).
    """
    if config.url and "://" in config.url:
        url = parse_url(config.url)
        return url.set(database=database) if database is not None else url
    host, port = config.url, config.port
    if host and ":" in host and not host.startswith("["):
        host, _, port_text = host.rpartition(":")
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(
                f"tracker_store: the port in 'url' must be an integer, got {port_text!r}"
            ) from None
    name = config.dialect
    base = name.split("+", 1)[0]
    drivername = name if "+" in name else DRIVERS[base][0]
    if base == "sqlite":
        return URL.create(drivername, database=database if database is not None else config.db)
    return URL.create(
        drivername,
        username=config.username,
        password=secret_value(config.password),
        host=host or None,
        port=port,
        database=database if database is not None else config.db,
        query={k: v if isinstance(v, list) else _query_text(v) for k, v in config.query.items()},
    )


def _query_text(value: str | int | float | bool) -> str:
    """A URL query value as text (YAML gives ``connect_timeout: 5`` as an int)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def require_driver(url: URL) -> None:
    """Import the DB-API driver ``url`` needs, or raise ``MissingDependencyError``."""
    backend, _, driver = url.drivername.partition("+")
    if driver:
        module, extra = DRIVER_MODULES.get(driver, (driver, backend))
        require(module, extra)
    elif backend in DRIVERS and DRIVERS[backend][1]:
        _, module_name, extra_name = DRIVERS[backend]
        require(str(module_name), str(extra_name))


def masked(url: URL) -> str:
    """The URL for logs, errors and reprs: password replaced by ``***``."""
    return url.render_as_string(hide_password=True)
