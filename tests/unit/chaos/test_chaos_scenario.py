"""Chaos scenario files: the shipped ones validate; every problem is reported with its field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kplane.chaos.scenario import INVARIANTS, ScenarioError, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "deploy" / "chaos").glob("*.yaml"))


def errors_of(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text)
    return info.value.errors


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenarios_validate(path: Path) -> None:
    """Every scenario in deploy/chaos parses, with its manifest files found."""
    sc = load_scenario(path)
    assert sc.name == path.stem and sc.steps and sc.invariants == INVARIANTS


def test_four_scenarios_are_shipped() -> None:
    """The node-loss, flapping, leader-kill and apiserver-restart scenarios are all there."""
    assert {p.stem for p in SHIPPED} >= {"node-loss-deployment", "flapping-node", "leader-kill-rollout",
                                         "apiserver-restart-scaleup"}


def test_defaults_and_variables() -> None:
    """A minimal scenario gets the default namespace and bounds; `as` defines a node variable."""
    sc = parse_scenario("name: t\nsteps:\n- kill-node: {nodeOf: deployment/web, as: v}\n- restart-node: $v\n"
                        "- sleep: 1m30s\n")
    assert sc.namespace == "chaos-t" and sc.bounds.converge == 60.0
    assert [s.action for s in sc.steps] == ["kill-node", "restart-node", "sleep"]
    assert sc.steps[0].args == {"nodeOf": "deployments/web", "as": "v"}
    assert sc.steps[1].args == {"node": "$v"} and sc.steps[2].args == {"duration": 90.0}
    assert sc.steps[0].title() == "kill-node the node of deployments/web as $v"


def test_requires_control_plane_replicas() -> None:
    """A leader-kill scenario can demand standbys; the shipped one does; a bad count names its path."""
    sc = parse_scenario("name: t\nrequires: {control-plane-replicas: 2}\nsteps:\n- sleep: 1s\n")
    assert sc.requires_control_plane_replicas == 2
    assert parse_scenario("name: t\nsteps:\n- sleep: 1s\n").requires_control_plane_replicas == 1
    leader = next(p for p in SHIPPED if p.stem == "leader-kill-rollout")
    assert load_scenario(leader).requires_control_plane_replicas == 2
    with pytest.raises(ScenarioError) as e:
        parse_scenario("name: t\nrequires: {control-plane-replicas: zero}\nsteps:\n- sleep: 1s\n")
    assert "requires.control-plane-replicas" in str(e.value)


def test_every_error_has_its_path() -> None:
    """Unknown steps and fields get suggestions; bad durations, targets, components and undefined
    variables name the exact field — all in one report."""
    errs = errors_of("""
name: Bad_Name
bounds: {converge: soon, restor: 5s}
invariants: [converged, no-lost-write]
steps:
- aply: {file: x.yaml}
- wait: {for: available, target: pod/web, timeout: -3}
- thaw-node: $nobody
- kill: {component: kubelet, leader: true}
- apply: {file: a.yaml, manifest: {}}
- expect: {evicted: {node: node-1}}
- sleep: 5s
  name: 3
""")
    assert 'name: "Bad_Name" must be lowercase letters, digits and "-"' in errs
    assert "bounds.converge: invalid duration 'soon' (like \"30s\", \"1m30s\", \"500ms\" or seconds)" in errs
    assert 'bounds.restor: unknown field "restor", did you mean "restore"?' in errs
    assert 'invariants[1]: unknown invariant "no-lost-write", did you mean "no-lost-writes"?' in errs
    assert 'steps[0].aply: unknown step "aply", did you mean "apply"?' in errs
    assert ('steps[1].wait.target: expected KIND/NAME with KIND one of deployment, replicaset, daemonset, '
            'got "pod/web"') in errs
    assert "steps[1].wait.timeout: must not be negative" in errs
    assert 'steps[2].thaw-node.node: "$nobody" is not defined by an earlier step\'s "as" (defined: none yet)' in errs
    assert any(e.startswith('steps[3].kill.component: unknown component "kubelet"') for e in errs)
    assert 'steps[4].apply: give exactly one of "file" or "manifest"' in errs
    assert "steps[5].expect.evicted.within: invalid duration None (like \"30s\", \"1m30s\", \"500ms\" or seconds)" in errs
    assert "steps[6].name: expected a string, got an integer" in errs


def test_structural_errors() -> None:
    """Not a mapping, no steps, two actions in one step, YAML syntax errors."""
    assert errors_of("- a\n- b\n") == ["(scenario): expected a mapping, got a list"]
    assert "steps: expected a non-empty list of steps" in errors_of("name: x\n")
    assert "steps[0]: one action per step, got sleep, kill-etcd" in errors_of(
        "name: x\nsteps:\n- {sleep: 1s, kill-etcd: {}}\n")
    assert errors_of("name: [x\n")[0].startswith("(file): line ")


def test_missing_manifest_file_is_named(tmp_path: Path) -> None:
    """A manifest file is resolved against the scenario's directory and must exist."""
    (tmp_path / "s.yaml").write_text("name: s\nsteps:\n- apply: {file: nope.yaml}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "s.yaml")
    assert info.value.errors == [f'steps[0].apply.file: no such file "{tmp_path / "nope.yaml"}"']
