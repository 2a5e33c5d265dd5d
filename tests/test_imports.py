"""Drivers are optional: importing eventstore loads none, a missing one names its extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from eventstore.drivers import require
from eventstore.errors import MissingDependencyError

DRIVERS = [
    "psycopg",
    "pymysql",
    "oracledb",
    "redis",
    "pymongo",
    "boto3",
    "pika",
    "kafka",
    "fastapi",
    "uvicorn",
]


def test_import_and_default_store_load_no_driver() -> None:
    code = (
        "import sys, eventstore, brokers\n"
        "from eventstore.cli import app\n"
        "store = eventstore.create_tracker_store(None)\n"
        "store.append('u', [{'event': 'pause'}])\n"
        f"print(sorted(m for m in {DRIVERS!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_driver_names_the_extra_to_install() -> None:
    with pytest.raises(MissingDependencyError) as info:
        require("surely_not_installed_driver", "redis")
    assert "pip install 'eventstore[redis]'" in str(info.value)


@pytest.mark.parametrize(
    ("store_type", "driver", "extra"),
    [("redis", "redis", "redis"), ("mongod", "pymongo", "mongo"), ("dynamo", "boto3", "dynamo")],
)
def test_backend_without_its_driver_says_what_to_install(
    store_type: str, driver: str, extra: str
) -> None:
    code = (
        "import sys\n"
        f"sys.modules[{driver!r}] = None  # as if not installed\n"
        "import eventstore\n"
        "try:\n"
        f"    eventstore.create_tracker_store({{'type': {store_type!r}}})\n"
        "except eventstore.MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert f"pip install 'eventstore[{extra}]'" in out.stdout, out.stderr[-2000:]
