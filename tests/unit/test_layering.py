"""Layering rules, checked mechanically: lower layers never import upper ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("apiserver", "scheduler", "controller_manager", "kubelet")


def imported_modules(package: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if "/pb/" in str(path):
            continue
        mods: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods.add(node.module)
        out[str(path.relative_to(ROOT))] = mods
    return out


@pytest.mark.parametrize("package", ["kplane", *COMPONENTS])
def test_components_do_not_import_each_other(package: str) -> None:
    """The shared kplane package imports no component; a component imports no other component
    (they talk only through the apiserver's API)."""
    forbidden = set(COMPONENTS) - {package}
    for path, mods in imported_modules(package).items():
        bad = sorted(m for m in mods if m.split(".")[0] in forbidden)
        # kplane.devcluster starts apiserver *processes* for tests and benchmarks; it imports no apiserver code
        assert not bad, f"{path} imports {bad}"


def test_protogen_is_current() -> None:
    """The committed generated code matches proto/ (run `make proto` after changing a .proto)."""
    from kplane.api import protogen

    assert protogen.check() == 0
