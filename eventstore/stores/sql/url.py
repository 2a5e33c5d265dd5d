"""Settings of the SQL store and the database URL built from them, with secrets kept masked.

Rasa's keys and defaults: ``dialect`` (sqlite), ``url`` (host), ``port``, ``db`` (rasa.db),
``username``, ``password``, ``login_db``, ``query``. A ``url`` holding ``://`` is a full URL
used as given (the other keys are ignored); ``host:port`` in ``url`` supplies the port.
Everything else is assembled with ``sqlalchemy.engine.URL.create``, so any character in a
password works. Only ``shown_url(url)`` (``eventstore.secrets.mask_url``) is ever shown.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from eventstore.config import StoreSettings, secret_value
from eventstore.drivers import require
from eventstore.errors import ConfigError
from eventstore.secrets import mask_url
from eventstore.stores.sql.dialects import DIALECT_ALIASES, DRIVER_MODULES, DRIVERS


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
    #: Environment variable holding the keys that encrypt the ``data`` column (AES-GCM,
    #: ``id:base64key[,id:base64key]``; the first encrypts): see docs/privacy.md.
    encryption_keys_env: str | None = None

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

    @model_validator(mode="after")
    def _url_agrees_with_dialect(self) -> SQLConfig:
        """A full ``url`` decides the database; a ``dialect`` given beside it must agree."""
        if "dialect" in self.model_fields_set and self.url and "://" in self.url:
            scheme = self.url.split("://", 1)[0].split("+", 1)[0].strip().lower()
            if DIALECT_ALIASES.get(scheme, scheme) != self.dialect.split("+", 1)[0]:
                raise ValueError(
                    f"dialect {self.dialect!r} disagrees with the url's {scheme!r}; "
                    "drop one of them"
                )
        return self


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


def shown_url(url: URL) -> str:
    """The URL for logs, errors and reprs: password and secret options masked (``secrets``)."""
    return mask_url(url.render_as_string(hide_password=False))
