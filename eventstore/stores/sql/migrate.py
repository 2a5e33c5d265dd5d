"""Alembic, driven from the package: schema state checks and upgrade/downgrade/current/history.

The Alembic ``Config`` is built in code from the installed ``migrations`` package, so these
work after a plain ``pip install`` with no ``alembic.ini``. They run over a connection of
the store's own engine.

States of a database (``schema_state``):

- ``empty``: no ``events`` table -> created at head on first use;
- ``rasa``: Rasa's ``events`` table without ``alembic_version`` -> the store refuses to
  start; ``eventstore db upgrade`` stamps it at revision 1 and upgrades it in place;
- ``behind`` / ``ahead`` / ``head``: compared with this version's head revision.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from eventstore.errors import SchemaError
from eventstore.stores.sql.engine import WRITE_OPTION
from eventstore.stores.sql.schema import HEAD_REVISION, RASA_COLUMNS, RASA_REVISION

logger = logging.getLogger(__name__)

UPGRADE_HINT = "eventstore db upgrade --endpoints endpoints.yml"


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: ``kind`` is empty, rasa, behind, head or ahead."""

    kind: str
    revision: str | None


def migrations_dir() -> Path:
    """The directory of the installed ``migrations`` package."""
    import migrations

    return Path(next(iter(migrations.__path__))).resolve()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for the packaged migrations, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    """The revisions shipped with this version."""
    return ScriptDirectory.from_config(alembic_config())


def schema_state(connection: Connection) -> SchemaState:
    """Inspect the database behind ``connection`` (see the module docstring)."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None:
        if "events" not in tables:
            return SchemaState("empty", None)
        columns = {c["name"].lower() for c in inspector.get_columns("events")}
        if columns >= RASA_COLUMNS and "seq" not in columns:
            return SchemaState("rasa", None)
        raise SchemaError(
            "the database has an 'events' table that is neither Rasa's tracker table nor "
            f"managed by eventstore (columns: {', '.join(sorted(columns))}); "
            "use another database"
        )
    if revision == HEAD_REVISION:
        return SchemaState("head", revision)
    known = {s.revision for s in script_directory().walk_revisions()}
    return SchemaState("behind" if revision in known else "ahead", revision)


#: Key of the database-wide lock held while the schema is created or migrated.
LOCK_NAME = "eventstore_schema"
_PG_LOCK_KEY = 0x6576656E7473  # "events"


@contextmanager
def schema_lock(conn: Connection, timeout: int = 300) -> Iterator[None]:
    """Hold a database-wide lock so that one process at a time creates or migrates.

    PostgreSQL: a transaction advisory lock; MySQL/MariaDB: ``GET_LOCK``; SQLite: the
    write lock the connection's ``BEGIN IMMEDIATE`` already holds.
    """
    name = conn.dialect.name
    if name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield
    elif name in ("mysql", "mariadb"):
        got = conn.execute(
            text("SELECT GET_LOCK(:name, :timeout)"), {"name": LOCK_NAME, "timeout": timeout}
        ).scalar()
        if got != 1:
            raise SchemaError(f"another process holds the schema lock for over {timeout} s")
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
    else:
        yield


def ensure_schema(engine: Engine, where: str) -> None:
    """Create an empty database at head; refuse anything not at head with a clear message.

    Processes starting together on an empty database queue on ``schema_lock``; the later
    ones find the schema at head.
    """
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
        with conn.begin(), schema_lock(conn):
            state = schema_state(conn)
            if state.kind == "empty":
                logger.info("creating the eventstore schema at %s in %s", HEAD_REVISION, where)
                command.upgrade(alembic_config(conn), "head")
                return
    _refuse(state, where)


def _refuse(state: SchemaState, where: str) -> None:
    if state.kind == "head":
        return
    if state.kind == "rasa":
        raise SchemaError(
            f"{where} holds a database written by Rasa's SQLTrackerStore; the store does not "
            f"change it on its own. Upgrade it in place (every event is kept) with: {UPGRADE_HINT}"
        )
    if state.kind == "behind":
        raise SchemaError(
            f"the schema of {where} is at revision {state.revision}, behind {HEAD_REVISION}; "
            f"upgrade it with: {UPGRADE_HINT}"
        )
    raise SchemaError(
        f"the schema of {where} is at revision {state.revision}, which this version of "
        f"eventstore does not know (its head is {HEAD_REVISION}); upgrade eventstore"
    )


@contextmanager
def _alembic_errors(action: str) -> Iterator[None]:
    """Alembic's own errors (an unknown revision...) as ``SchemaError``."""
    try:
        yield
    except CommandError as exc:
        raise SchemaError(f"{action}: {exc}") from exc


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the schema lock."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin(), schema_lock(conn):
            yield conn


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Upgrade to ``revision``; a Rasa database is stamped at revision 1 first. Returns a report."""
    lines = []
    with _migrating(engine) as conn:
        if schema_state(conn).kind == "rasa":
            MigrationContext.configure(conn).stamp(script_directory(), RASA_REVISION)
            lines.append(
                f"recognised a Rasa SQLTrackerStore database; stamped at revision {RASA_REVISION}"
            )
        with _alembic_errors(f"upgrading to {revision!r}"):
            command.upgrade(alembic_config(conn), revision)
        lines.append(f"now at revision {current_revision(conn) or 'base'}")
    return "\n".join(lines)


def downgrade(engine: Engine, revision: str) -> str:
    """Downgrade to ``revision`` (``base`` drops every table and event)."""
    with _migrating(engine) as conn:
        with _alembic_errors(f"downgrading to {revision!r}"):
            command.downgrade(alembic_config(conn), revision)
        return f"now at revision {current_revision(conn) or 'base'}"


def current_revision(connection: Connection) -> str | None:
    """The revision the database is stamped at (None: not managed by Alembic)."""
    return MigrationContext.configure(connection).get_current_revision()


def current(engine: Engine) -> str:
    """A one-line description of where the database stands."""
    with engine.connect() as conn:
        state = schema_state(conn)
    if state.kind == "empty":
        return "empty database (no eventstore tables); the store creates them at first use"
    if state.kind == "rasa":
        return f"Rasa SQLTrackerStore layout, not managed by Alembic; run: {UPGRADE_HINT}"
    marker = " (head)" if state.kind == "head" else f" ({state.kind} {HEAD_REVISION})"
    return f"{state.revision}{marker}"


def history(current: str | None = None) -> str:
    """The revisions shipped with this version, newest first; ``current`` is marked."""
    lines = []
    for script in script_directory().walk_revisions():
        doc = script.doc.strip().splitlines()[0].replace("``", "") if script.doc else ""
        marks = [
            m
            for m, on in (
                ("head", script.revision == HEAD_REVISION),
                ("current", script.revision == current),
            )
            if on
        ]
        mark = f" ({', '.join(marks)})" if marks else ""
        lines.append(f"{script.down_revision or 'base'} -> {script.revision}{mark}: {doc}")
    return "\n".join(lines)


def history_of(engine: Engine) -> str:
    """``history`` with the revision of the database behind ``engine`` marked."""
    with engine.connect() as conn:
        return history(current_revision(conn))
