"""``eventstore db upgrade|downgrade|current|history``: Alembic for the SQL tracker store.

The database is the ``tracker_store`` of endpoints.yml (``--endpoints``) or ``--url``. No
``alembic.ini`` is needed: the revisions ship in the package. ``upgrade`` also takes a
database Rasa's SQLTrackerStore wrote: it is stamped at revision 1, then upgraded in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from eventstore.cli.app import app
from eventstore.config import parse_config
from eventstore.endpoints import load_endpoints
from eventstore.errors import ConfigError
from eventstore.factory import store_class

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from eventstore.stores.sql.engine import SQLDatabase

db_app = typer.Typer(
    name="db",
    help="Upgrade, downgrade and inspect the SQL tracker store's schema (Alembic).",
    no_args_is_help=True,
)
app.add_typer(db_app)

ENDPOINTS_HELP = "endpoints.yml whose tracker_store is the SQL database"
URL_HELP = "database URL (instead of --endpoints), e.g. postgresql://user@host/db"


def open_database(endpoints: str | None, url: str | None) -> SQLDatabase:
    """The ``SQLDatabase`` named by ``--url`` or by the endpoints file's tracker_store."""
    from eventstore.stores.sql.engine import SQLDatabase
    from eventstore.stores.sql.store import SQLTrackerStore
    from eventstore.stores.sql.url import SQLConfig

    if url is not None:
        return SQLDatabase(SQLConfig(url=url))
    path = endpoints or "endpoints.yml"
    section = load_endpoints(path).store_section("eventstore db")
    cls, settings = store_class(section)
    if not issubclass(cls, SQLTrackerStore):
        type_name = section.get("store_type") or section.get("type") or "in_memory"
        raise ConfigError(
            f"{path}: the db commands need a tracker_store of type sql, not {type_name!r}"
        )
    return SQLDatabase(parse_config(SQLConfig, settings, "tracker_store"))


def _run(
    endpoints: str | None, url: str | None, action: str, work: Callable[[Engine], str]
) -> None:
    database = open_database(endpoints, url)
    try:
        with database.translate(action):
            typer.echo(work(database.engine))
    finally:
        database.dispose()


@db_app.command("upgrade")
def upgrade_command(
    revision: str = typer.Argument("head", help="target revision"),
    endpoints: str | None = typer.Option(None, "--endpoints", help=ENDPOINTS_HELP),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Upgrade the schema (an empty database is created; a Rasa one is adopted in place)."""
    from eventstore.stores.sql import migrate as sql_migrate

    _run(endpoints, url, "upgrading", lambda engine: sql_migrate.upgrade(engine, revision))


@db_app.command("downgrade")
def downgrade_command(
    revision: str = typer.Argument(..., help="target revision ('base' drops every table)"),
    endpoints: str | None = typer.Option(None, "--endpoints", help=ENDPOINTS_HELP),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Downgrade the schema to REVISION (0001 is Rasa's own layout)."""
    from eventstore.stores.sql import migrate as sql_migrate

    _run(endpoints, url, "downgrading", lambda engine: sql_migrate.downgrade(engine, revision))


@db_app.command("current")
def current_command(
    endpoints: str | None = typer.Option(None, "--endpoints", help=ENDPOINTS_HELP),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Show the revision the database is at."""
    from eventstore.stores.sql import migrate as sql_migrate

    _run(endpoints, url, "reading the revision", sql_migrate.current)


@db_app.command("history")
def history_command(
    endpoints: str | None = typer.Option(None, "--endpoints", help=ENDPOINTS_HELP),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """List the revisions shipped with this version, newest first (marking the current one)."""
    from eventstore.stores.sql import migrate as sql_migrate

    if endpoints is None and url is None:
        typer.echo(sql_migrate.history())
        return
    _run(endpoints, url, "reading the revision", sql_migrate.history_of)
