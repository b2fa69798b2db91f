"""Conformance tables: upstream input -> expected-output vectors in ../shared/conformance.

Two ways to use them, neither of which imports this module (a plain `import conftest` would be
ambiguous next to tests/conftest.py):

- mark a test and take a `case` argument; it runs once per row of that section::

      @pytest.mark.conformance("labels_selector.json", "parse_roundtrip")
      def test_roundtrip(case): ...

- or ask for the `conformance` fixture, a loader: `conformance("labels_selector.json")`.

A clone without ../shared (or with KPLANE_CONFORMANCE_DIR pointing at a missing directory)
skips these tests instead of failing them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

CONFORMANCE_DIR = Path(__file__).resolve().parents[3] / "shared" / "conformance"
_MISSING = "../shared/conformance not present"


def conformance_dir() -> Path:
    """Where the tables live; KPLANE_CONFORMANCE_DIR overrides (e.g. to prove the suite skips cleanly)."""
    override = os.environ.get("KPLANE_CONFORMANCE_DIR")
    return Path(override) if override else CONFORMANCE_DIR


@cache
def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def load_conformance(name: str) -> dict[str, Any]:
    """The parsed table `name`; skips the calling test when the conformance folder is absent."""
    directory = conformance_dir()
    if not directory.is_dir():
        pytest.skip(_MISSING)
    return _read(directory / name)


@pytest.fixture
def conformance() -> Callable[[str], dict[str, Any]]:
    """The `load_conformance` function, for tests that load tables themselves."""
    return load_conformance


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "conformance(file, section): parametrize the test's `case` argument over a conformance section",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("conformance")
    if marker is None:
        return
    name, section = marker.args
    directory = conformance_dir()
    if not directory.is_dir():
        # Collection must not fail: one placeholder case that reports the skip.
        metafunc.parametrize(
            "case", [pytest.param(None, marks=pytest.mark.skip(reason=_MISSING))], ids=["absent"]
        )
        return
    cases = _read(directory / name)[section]["cases"]
    metafunc.parametrize("case", cases, ids=[f"{section}-{i}" for i in range(len(cases))])
