"""endpoints.yml: a typo in a section name, or a file without a store, never means in-memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import ConfigError, load_endpoints
from eventstore.cli import main
from eventstore.endpoints import parse_endpoints
from eventstore.factory import create_from_endpoints


def test_a_misspelled_section_is_refused_with_did_you_mean() -> None:
    with pytest.raises(ConfigError) as err:
        parse_endpoints("tracker_stor:\n  type: redis\n", "x.yml")
    assert str(err.value) == "x.yml: unknown section 'tracker_stor'; did you mean 'tracker_store'?"


def test_rasa_sections_are_accepted_and_left_to_rasa() -> None:
    endpoints = parse_endpoints(
        "action_endpoint:\n  url: http://localhost:5055/webhook\nlock_store:\n  type: redis\n"
        "models:\n  url: http://x\nnlg:\n  url: http://y\ntracker_store:\n  type: sql\n"
    )
    assert endpoints.tracker_store == {"type": "sql"}


def test_a_section_with_no_name_close_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown section 'zzz'; known: action_endpoint, "):
        parse_endpoints("zzz: {}\n")


@pytest.mark.parametrize("text", ["", "event_broker:\n  type: file\n  path: e.log\n"])
def test_a_file_without_tracker_store_is_an_error_where_a_store_is_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "x.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="has no tracker_store section; eventstore run needs"):
        create_from_endpoints(load_endpoints(path), "eventstore run")
    for argv in (
        ["events", "--endpoints", str(path)],
        ["run", "--endpoints", str(path), "--port", "0"],
        ["relay", "--once", "--endpoints", str(path)],
        ["db", "current", "--endpoints", str(path)],
        ["export", "--endpoints", str(path)],
        ["migrate", "--from", str(path), "--to", str(path)],
    ):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path} has no tracker_store section; "), argv
        assert "tracker_store: {type: in_memory}" in err
        assert err.count("\n") == 1


def test_the_in_memory_store_on_purpose_is_spelled_out(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text("tracker_store:\n  type: in_memory\n")
    store = create_from_endpoints(load_endpoints(path))
    assert type(store).__name__ == "InMemoryTrackerStore"
    store.close()


def test_a_misspelled_section_fails_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.yml"
    path.write_text("tracker_stor:\n  type: redis\n")
    for argv in (["events", "--endpoints", str(path)], ["run", "--endpoints", str(path)]):
        assert main(argv) == 1
        assert "unknown section 'tracker_stor'; did you mean 'tracker_store'?" in (
            capsys.readouterr().err
        )
