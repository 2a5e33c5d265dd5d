"""docs/custom-store.md's example backend passes the shipped contracts, and the page shows
exactly the module that is tested."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from eventstore.factory import create_tracker_store
from eventstore.testing import QueryContract, TrackerStoreContract

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "examples" / "dict_store.py"


def load_example() -> ModuleType:
    name = "mypackage.dict_store"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


example = load_example()


class TestDictStore(TrackerStoreContract, QueryContract):
    @pytest.fixture
    def store(self) -> Iterator[Any]:
        with example.DictStore() as store:
            yield store


def test_the_page_shows_the_tested_module_whole() -> None:
    page = (DOCS / "custom-store.md").read_text(encoding="utf-8")
    assert EXAMPLE.read_text(encoding="utf-8").rstrip() in page


def test_the_example_is_configured_by_dotted_path_with_checked_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = ModuleType("mypackage")
    package.dict_store = example  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mypackage", package)
    section = {"type": "mypackage.dict_store.DictStore", "label": "demo", "tracker_cache_size": 3}
    with create_tracker_store(section) as store:
        assert isinstance(store, example.DictStore)
        assert store.settings.label == "demo" and store._trackers.size == 3
    from eventstore.errors import ConfigError

    with pytest.raises(ConfigError, match="labl"):
        create_tracker_store({"type": "mypackage.dict_store.DictStore", "labl": "x"})
