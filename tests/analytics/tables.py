"""Helpers of the analytics tests: run the projection, read the tables, the docs' queries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from eventstore.analytics.runner import AnalyticsReport, AnalyticsRunner, open_target
from eventstore.stores.base import TrackerStore
from eventstore.stores.sql.analytics_schema import ANALYTICS_TABLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"
_QUERY = re.compile(r"<!-- query: (\w+) -->\n```sql\n(.*?)```", re.S)


def doc_queries() -> dict[str, str]:
    """The SQL of docs/analytics.md, by the name in the comment above each block."""
    return dict(_QUERY.findall(DOC.read_text(encoding="utf-8")))


@contextmanager
def projector(
    store: TrackerStore, to: str | None = None, batch_size: int = 3
) -> Iterator[AnalyticsRunner]:
    """A runner on ``to`` (or the store's database) for several runs; closed after."""
    target = open_target(store, to)
    try:
        yield AnalyticsRunner(store, target, batch_size=batch_size)
    finally:
        target.close()


def project(
    store: TrackerStore, to: str | None = None, batch_size: int = 4, rebuild: bool = False
) -> AnalyticsReport:
    """One catch-up run of the projection (as ``eventstore analytics`` does); its report."""
    target = open_target(store, to)
    try:
        runner = AnalyticsRunner(store, target, batch_size=batch_size)
        if rebuild:
            runner.rebuild()
        return runner.run()
    finally:
        target.close()


def engine_of(url: str) -> Engine:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from eventstore.stores.sql.url import parse_url

    return create_engine(parse_url(url), poolclass=NullPool)


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every analytics row, table by table, in primary-key order (booleans as 0/1)."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in ANALYTICS_TABLES:
            order = list(table.primary_key.columns)
            rows = conn.execute(select(table).order_by(*order)).all()
            tables[table.name] = [
                tuple(int(v) if isinstance(v, bool) else v for v in row) for row in rows
            ]
    return tables


def normal(rows: list[Any]) -> list[tuple[Any, ...]]:
    """Query results with numbers as floats (Decimal on PostgreSQL/MariaDB, int on SQLite)."""
    from decimal import Decimal

    return [
        tuple(
            float(v) if isinstance(v, Decimal | int) and not isinstance(v, bool) else v for v in r
        )
        for r in rows
    ]
