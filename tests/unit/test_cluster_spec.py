"""Component ordering: dependencies first, stable otherwise, and clear errors."""

from __future__ import annotations

import pytest

from kplane.cluster.spec import ComponentSpec, HealthCheck, SpecError, order_components


def spec(name: str, *deps: str) -> ComponentSpec:
    return ComponentSpec(name=name, argv=["true"], depends_on=deps)


def names(specs: list[ComponentSpec]) -> list[str]:
    return [s.name for s in specs]


def test_dependencies_start_first() -> None:
    """Each component comes after everything it depends on, whatever the input order."""
    order = order_components(
        [spec("node-1", "apiserver"), spec("scheduler", "apiserver"), spec("apiserver", "etcd"), spec("etcd")]
    )
    assert names(order) == ["etcd", "apiserver", "node-1", "scheduler"]


def test_order_is_stable_without_dependencies() -> None:
    """Independent components keep the order they were given in."""
    assert names(order_components([spec("b"), spec("a"), spec("c")])) == ["b", "a", "c"]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([spec("a", "b"), spec("b", "a")], "dependency cycle among components: a, b"),
        ([spec("a", "nope")], "component 'a' depends on unknown component 'nope'"),
        ([spec("a"), spec("a")], "two components are called 'a'"),
    ],
)
def test_bad_specs_are_rejected(specs: list[ComponentSpec], message: str) -> None:
    """Cycles, unknown dependencies and duplicate names raise SpecError with a clear message."""
    with pytest.raises(SpecError) as e:
        order_components(specs)
    assert str(e.value) == message


def test_health_check_json_round_trip() -> None:
    """A HealthCheck survives the trip through the state file."""
    h = HealthCheck(kind="grpc", port=6443, service="kplane")
    assert HealthCheck.from_json(h.to_json()) == h
    assert h.address == "127.0.0.1:6443"
