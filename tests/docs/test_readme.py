"""The README's test section tells what the suite needs: every override the fixtures read."""

from __future__ import annotations

import re
from pathlib import Path

from tests.servers.sql import database_url

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_override_is_documented() -> None:
    used = set()
    for path in [*(ROOT / "tests" / "servers").glob("*.py"), ROOT / ".ci" / "run"]:
        used |= set(re.findall(r"EVENTSTORE_TEST_[A-Z_]+", path.read_text(encoding="utf-8")))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert used and {name for name in used if name not in readme} == set()
    for needed in ("redis-server", "openssl", "guest", "Python 3.11", "database `0`"):
        assert needed in readme


def test_eventstore_test_pg_sets_the_test_databases_server_too() -> None:
    assert database_url("postgresql://u:p%40w@db.internal:5433/postgres", "es_test_x") == (
        "postgresql+psycopg://u:p%40w@db.internal:5433/es_test_x"
    )
