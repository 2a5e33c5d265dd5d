"""One pytest marker per server, registered and selectable (``-m postgres``)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import SERVER_MARKERS

ROOT = Path(__file__).resolve().parents[1]


def test_every_server_marker_is_registered() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    registered = {m.split(":")[0] for m in config["tool"]["pytest"]["ini_options"]["markers"]}
    assert set(SERVER_MARKERS) <= registered


def test_a_server_marker_selects_the_tests_on_that_server() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", "postgres", "tests/stores/sql/test_sql_contract.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    assert ids and all("TestPostgreSQLStore" in i for i in ids)
