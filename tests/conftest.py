"""Shared test setup: every module in tests/servers/ is a plugin providing server fixtures."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = sorted(
    f"tests.servers.{p.stem}"
    for p in (Path(__file__).parent / "servers").glob("*.py")
    if p.stem != "__init__"
)
