"""kpctl taint / cordon / uncordon / label on nodes, end to end: the real kpctl against the session apiserver."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from procs import KPCTL
from procs import kpctl as run_kpctl

from kplane.devcluster import APIServer

pytestmark = pytest.mark.e2e



def kpctl(apiserver: APIServer, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_kpctl(apiserver.address, *args, stdin=stdin)


MakeNode = Callable[..., str]


@pytest.fixture
def make_node(apiserver: APIServer) -> Iterator[MakeNode]:
    """Creates Nodes with unique names (the apiserver is shared by the session) and deletes them afterwards."""
    created: list[str] = []

    def make(labels: dict[str, str] | None = None, ready: bool | None = None,
             taints: list[dict[str, str]] | None = None) -> str:
        name = f"n-{uuid.uuid4().hex[:10]}"
        node: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
        if labels:
            node["metadata"]["labels"] = labels
        if taints:
            node["spec"] = {"taints": taints}
        if ready is not None:
            node["status"] = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
        result = kpctl(apiserver, "create", "-f", "-", stdin=json.dumps(node))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"node/{name} created"
        created.append(name)
        return name

    yield make
    if created:
        kpctl(apiserver, "delete", "nodes", *created)


def taints_of(apiserver: APIServer, name: str) -> list[dict[str, Any]]:
    result = kpctl(apiserver, "get", "node", name, "-o", "json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout).get("spec", {}).get("taints") or [])


def plain(taints: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(t["key"], t.get("value", ""), t["effect"]) for t in taints]


def node_status(apiserver: APIServer, name: str) -> str:
    result = kpctl(apiserver, "get", "nodes", name, "--no-headers")
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[1]


def test_taint_add_overwrite_and_remove(apiserver: APIServer, make_node: MakeNode) -> None:
    """Adding, overwriting and removing taints prints kubectl's tainted/modified/untainted and updates spec.taints."""
    name = make_node()
    added = kpctl(apiserver, "taint", "nodes", name, "dedicated=gpu:NoSchedule")
    assert (added.returncode, added.stdout, added.stderr) == (0, f"node/{name} tainted\n", "")
    assert plain(taints_of(apiserver, name)) == [("dedicated", "gpu", "NoSchedule")]

    # other spellings of the node: `no NAME` and `node/NAME`; several taints at once
    assert kpctl(apiserver, "taint", "no", name, "spot:PreferNoSchedule").stdout == f"node/{name} tainted\n"
    two = kpctl(apiserver, "taint", f"node/{name}", "evict=now:NoExecute", "dedicated:NoExecute")
    assert two.stdout == f"node/{name} tainted\n", two.stderr
    taints = taints_of(apiserver, name)
    # like kubectl, the added taints come first, then the ones the node already had
    assert plain(taints) == [("evict", "now", "NoExecute"), ("dedicated", "", "NoExecute"),
                             ("spot", "", "PreferNoSchedule"), ("dedicated", "gpu", "NoSchedule")]
    assert [bool(t.get("timeAdded")) for t in taints] == [True, True, False, False]

    overwritten = kpctl(apiserver, "taint", "nodes", name, "dedicated=cpu:NoSchedule", "--overwrite")
    assert overwritten.stdout == f"node/{name} modified\n", overwritten.stderr
    assert ("dedicated", "cpu", "NoSchedule") in plain(taints_of(apiserver, name))

    removed = kpctl(apiserver, "taint", "nodes", name, "dedicated:NoSchedule-", "evict-")
    assert removed.stdout == f"node/{name} untainted\n", removed.stderr
    assert plain(taints_of(apiserver, name)) == [("dedicated", "", "NoExecute"), ("spot", "", "PreferNoSchedule")]

    both = kpctl(apiserver, "taint", "nodes", name, "dedicated-", "zone=a:NoSchedule")
    assert both.stdout == f"node/{name} modified\n", both.stderr
    assert plain(taints_of(apiserver, name)) == [("zone", "a", "NoSchedule"), ("spot", "", "PreferNoSchedule")]

    cleared = kpctl(apiserver, "taint", "nodes", name, "zone-", "spot-")
    assert cleared.stdout == f"node/{name} untainted\n", cleared.stderr
    assert taints_of(apiserver, name) == []


def test_taint_errors_exit_1_and_change_nothing(apiserver: APIServer, make_node: MakeNode) -> None:
    """Every refused taint change prints kubectl's error on stderr, exits 1 and leaves the node's taints alone."""
    name = make_node(taints=[{"key": "node-role.kubernetes.io/x", "value": "a", "effect": "NoSchedule"}])
    before = taints_of(apiserver, name)
    cases = {
        ("node-role.kubernetes.io/x=b:NoSchedule",):
            f"error: node {name} already has node-role.kubernetes.io/x taint(s) with same effect(s) and "
            f"--overwrite is false\n",
        ("node-role.kubernetes.io/x=a:NoSchedule",):
            f"error: node {name} already has node-role.kubernetes.io/x taint(s) with same effect(s) and "
            f"--overwrite is false\n",
        ("missing:NoExecute-",): 'error: taint "missing:NoExecute" not found\n',
        ("missing-",): 'error: taint "missing" not found\n',
        ("a=1:NoSchedule", "a=2:NoSchedule"):
            "error: duplicated taints with the same key and effect: {a 2 NoSchedule <nil>}\n"
            "See 'kpctl taint -h' for help and examples\n",
        ("a=1:NoSchedule", "a-"):
            "error: can not both modify and remove the following taint(s) in the same command: a=\n",
    }
    for specs, stderr in cases.items():
        result = kpctl(apiserver, "taint", "nodes", name, *specs)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr), specs

    bad_effect = kpctl(apiserver, "taint", "nodes", name, "a=1:NoScheduled")
    assert bad_effect.returncode == 1 and bad_effect.stderr.startswith("error: invalid taint effect")
    assert "NoSchedule, PreferNoSchedule, NoExecute" in bad_effect.stderr
    no_change = kpctl(apiserver, "taint", "nodes", name)
    assert (no_change.returncode, no_change.stderr) == (1, "error: at least one taint update is required\n")
    pods = kpctl(apiserver, "taint", "pods", "web", "a=1:NoSchedule")
    assert (pods.returncode, pods.stderr) == (1, "error: invalid resource type pods, only node types are supported\n")
    order = kpctl(apiserver, "taint", "nodes", "a=1:NoSchedule", name)
    assert order.returncode == 1 and "all resources must be specified before taint changes" in order.stderr
    nameless = kpctl(apiserver, "taint", "nodes", "a=1:NoSchedule")
    assert nameless.returncode == 1 and "at least one resource name must be specified" in nameless.stderr
    missing = kpctl(apiserver, "taint", "nodes", f"{name}-absent", "a=1:NoSchedule")
    assert (missing.returncode, missing.stderr) == (1, f'Error from server (NotFound): nodes "{name}-absent" not found\n')
    assert taints_of(apiserver, name) == before


def test_taint_by_selector_and_dry_run(apiserver: APIServer, make_node: MakeNode) -> None:
    """`-l` taints every matching node, --dry-run=server reports without persisting, and -l with --all is refused."""
    group = uuid.uuid4().hex[:8]
    first, second = make_node(labels={"grp": group}), make_node(labels={"grp": group})
    other = make_node()
    dry = kpctl(apiserver, "taint", "nodes", "-l", f"grp={group}", "pool=spot:NoSchedule", "--dry-run=server")
    assert sorted(dry.stdout.splitlines()) == sorted([f"node/{first} tainted (server dry run)",
                                                      f"node/{second} tainted (server dry run)"]), dry.stderr
    assert taints_of(apiserver, first) == []
    result = kpctl(apiserver, "taint", "node", "-l", f"grp={group}", "pool=spot:NoSchedule")
    assert sorted(result.stdout.splitlines()) == sorted([f"node/{first} tainted", f"node/{second} tainted"])
    assert plain(taints_of(apiserver, second)) == [("pool", "spot", "NoSchedule")]
    assert taints_of(apiserver, other) == []
    both = kpctl(apiserver, "taint", "nodes", "-l", f"grp={group}", "--all", "pool-")
    assert (both.returncode, both.stderr) == (
        1, "error: setting 'all' parameter with a non empty selector is prohibited\n")


def test_concurrent_taints_are_all_kept(apiserver: APIServer, make_node: MakeNode) -> None:
    """Concurrent `kpctl taint` runs on one node lose no taint (resourceVersion precondition, retried on Conflict)."""
    name = make_node()
    procs = [subprocess.Popen([*KPCTL, "--server", apiserver.address, "taint", "nodes", name, f"k{i}=v:NoSchedule"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, out) == (0, f"node/{name} tainted\n"), err
    assert sorted(t["key"] for t in taints_of(apiserver, name)) == ["k0", "k1", "k2", "k3"]


def test_cordon_and_uncordon_are_idempotent(apiserver: APIServer, make_node: MakeNode) -> None:
    """cordon/uncordon set and clear spec.unschedulable, say `already ...` the second time, and get shows it."""
    name = make_node()
    assert node_status(apiserver, name) == "Unknown"
    dry = kpctl(apiserver, "cordon", name, "--dry-run=server")
    assert dry.stdout == f"node/{name} cordoned (server dry run)\n", dry.stderr
    assert node_status(apiserver, name) == "Unknown"

    first = kpctl(apiserver, "cordon", name)
    assert (first.returncode, first.stdout, first.stderr) == (0, f"node/{name} cordoned\n", "")
    assert kpctl(apiserver, "cordon", name).stdout == f"node/{name} already cordoned\n"
    assert node_status(apiserver, name) == "Unknown,SchedulingDisabled"
    spec = kpctl(apiserver, "get", "node", name, "-o", "jsonpath={.spec.unschedulable}")
    assert spec.stdout == "true"

    assert kpctl(apiserver, "uncordon", f"node/{name}").stdout == f"node/{name} uncordoned\n"
    assert kpctl(apiserver, "uncordon", name).stdout == f"node/{name} already uncordoned\n"
    assert node_status(apiserver, name) == "Unknown"
    assert kpctl(apiserver, "get", "node", name, "-o", "jsonpath={.spec.unschedulable}").stdout == ""


def test_cordon_ready_node_selector_and_errors(apiserver: APIServer, make_node: MakeNode) -> None:
    """A cordoned Ready node shows Ready,SchedulingDisabled; -l selects nodes; bad invocations exit 1."""
    group = uuid.uuid4().hex[:8]
    ready, not_ready = make_node(labels={"grp": group}, ready=True), make_node(labels={"grp": group}, ready=False)
    cordoned = kpctl(apiserver, "cordon", "-l", f"grp={group}")
    assert sorted(cordoned.stdout.splitlines()) == sorted([f"node/{ready} cordoned", f"node/{not_ready} cordoned"])
    assert node_status(apiserver, ready) == "Ready,SchedulingDisabled"
    assert node_status(apiserver, not_ready) == "NotReady,SchedulingDisabled"
    assert kpctl(apiserver, "uncordon", "-l", f"grp={group}").returncode == 0
    assert node_status(apiserver, ready) == "Ready"

    missing = kpctl(apiserver, "cordon", f"{ready}-absent")
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        1, "", f'Error from server (NotFound): nodes "{ready}-absent" not found\n')
    usage = kpctl(apiserver, "cordon")
    assert (usage.returncode, usage.stderr) == (
        1, "error: USAGE: cordon NODE [flags]\nSee 'kpctl cordon -h' for help and examples\n")
    both = kpctl(apiserver, "uncordon", ready, "-l", f"grp={group}")
    assert both.returncode == 1 and "cannot specify both a node name and a --selector option" in both.stderr


def test_label_nodes(apiserver: APIServer, make_node: MakeNode) -> None:
    """The generic label command works on nodes like kubectl, including --overwrite and removal."""
    name = make_node()
    labeled = kpctl(apiserver, "label", "nodes", name, "pool=spot")
    assert (labeled.returncode, labeled.stdout) == (0, f"node/{name} labeled\n"), labeled.stderr
    refused = kpctl(apiserver, "label", "node", name, "pool=ondemand")
    assert refused.returncode == 1 and "--overwrite is false" in refused.stderr
    assert kpctl(apiserver, "label", f"node/{name}", "pool=ondemand", "--overwrite").returncode == 0
    value = kpctl(apiserver, "get", "nodes", "-l", "pool=ondemand", "-o", "jsonpath={.items[*].metadata.name}")
    assert value.stdout == name
    removed = kpctl(apiserver, "label", "no", name, "pool-")
    assert removed.returncode == 0, removed.stderr
    assert kpctl(apiserver, "get", "node", name, "-o", "jsonpath={.metadata.labels}").stdout in ("", "{}")
