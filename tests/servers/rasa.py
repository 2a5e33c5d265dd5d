"""Rasa 3.6.21: a real Rasa environment, built once per machine outside the clone.

The venv comes from ``../shared/rasa/setup`` (idempotent: a built venv is reused in
well under a second). ``EVENTSTORE_TEST_RASA_VENV`` overrides where it lives (default
``~/.rasa-venv``). A venv that cannot be built fails the tests that need it; it is never
skipped. Tests run Rasa's own classes in that interpreter as subprocesses: Rasa pins
SQLAlchemy 1.4 and pydantic 1, so it can never share the test process.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO.parent / "shared" / "rasa" / "setup"
RASA_BOT = REPO.parent / "shared" / "rasa" / "bot"
RASA_VENV = Path(os.environ.get("EVENTSTORE_TEST_RASA_VENV", Path.home() / ".rasa-venv"))


def build_rasa_venv() -> Path:
    """Build (or reuse) the Rasa venv and return its python; fails loudly when impossible."""
    if not SETUP.exists():
        pytest.fail(f"the Rasa environment script is missing: {SETUP}")
    proc = subprocess.run(
        [str(SETUP), str(RASA_VENV)], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        pytest.fail(f"building the Rasa venv failed:\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip() or RASA_VENV) / "bin" / "python"


@pytest.fixture(scope="session")
def rasa_python() -> Path:
    """The interpreter of the Rasa 3.6.21 venv (``rasa`` and its tracker stores import)."""
    return build_rasa_venv()


@pytest.fixture(scope="session")
def rasa_bot_dir() -> Path:
    """``../shared/rasa/bot``: the rules-only bot (read-only: copy before training)."""
    if not RASA_BOT.exists():
        pytest.fail(f"the Rasa bot is missing: {RASA_BOT}")
    return RASA_BOT


def rasa_env() -> dict[str, str]:
    """Environment for Rasa subprocesses: no telemetry, no SQLAlchemy 2.0 banner."""
    env = dict(os.environ)
    env.update(RASA_TELEMETRY_ENABLED="false", SQLALCHEMY_SILENCE_UBER_WARNING="1")
    env.pop("PYTHONPATH", None)
    return env
