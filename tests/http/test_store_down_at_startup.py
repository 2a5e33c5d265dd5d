"""``eventstore run`` with its store down: one behaviour for every backend. It exits 1 with
one line, whether the store's constructor connects (SQL) or its first call does (Redis,
MongoDB); ``--wait-for-store N`` keeps trying first."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore.cli import main
from tests.servers import free_port

SECTIONS = {
    "postgresql": "type: sql\n  url: postgresql://postgres@127.0.0.1:{port}/x",
    "redis": "type: redis\n  url: redis://127.0.0.1:{port}/0",
}


@pytest.mark.parametrize("backend", sorted(SECTIONS))
def test_an_unreachable_store_stops_run_with_one_line(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  " + SECTIONS[backend].format(port=free_port()))
    assert main(["run", "--endpoints", str(endpoints), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the tracker store is unreachable, not serving: ")
    assert err.rstrip().endswith("; --wait-for-store SECONDS waits for it")
    assert err.count("\n") == 1


def test_wait_for_store_tries_again_then_says_how_long_it_waited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  " + SECTIONS["redis"].format(port=free_port()))
    argv = ["run", "--endpoints", str(endpoints), "--port", "0", "--wait-for-store", "2"]
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("waiting up to 2 s for the tracker store: ")
    assert err[-1].startswith("error: the tracker store is unreachable (waited 2 s), not serving")
