"""kpctl end to end: the real binary against a real apiserver process and a real etcd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from procs import KPCTL, new_namespace
from procs import kpctl as run_kpctl

from kplane.devcluster import APIServer, start_apiserver, stop_process, wait_until

pytestmark = pytest.mark.e2e


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
"""


@pytest.fixture
def ns(apiserver: APIServer) -> str:
    return new_namespace(apiserver.address)


def kpctl(apiserver: APIServer, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
          server: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_kpctl(server or apiserver.address, *args, stdin=stdin, env=env)


def test_apply_get_and_output_formats(apiserver: APIServer, ns: str, tmp_path: Path) -> None:
    """apply creates then reports unchanged; get prints tables, yaml, json, name and jsonpath like kubectl."""
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOYMENT)
    first = kpctl(apiserver, "-n", ns, "apply", "-f", str(manifest))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["deployment.apps/web created", "configmap/settings created"]
    again = kpctl(apiserver, "-n", ns, "apply", "-f", str(manifest))
    assert again.stdout.splitlines() == ["deployment.apps/web unchanged", "configmap/settings unchanged"]

    table = kpctl(apiserver, "-n", ns, "get", "deploy")
    assert table.stdout.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table.stdout.splitlines()[1].split()[:2] == ["web", "0/3"]
    wide = kpctl(apiserver, "-n", ns, "get", "deployments.apps", "web", "-o", "wide", "--show-labels")
    assert "nginx:1.25" in wide.stdout and "app=web" in wide.stdout
    as_json = json.loads(kpctl(apiserver, "-n", ns, "get", "deploy/web", "-o", "json").stdout)
    assert as_json["kind"] == "Deployment" and as_json["spec"]["replicas"] == 3
    assert as_json["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    names = kpctl(apiserver, "-n", ns, "get", "deploy,cm", "-o", "name").stdout.split()
    assert names == ["deployment.apps/web", "configmap/settings"]
    jp = kpctl(apiserver, "-n", ns, "get", "deploy", "-o", "jsonpath={.items[*].spec.template.spec.containers[0].image}")
    assert jp.stdout == "nginx:1.25"
    everything = kpctl(apiserver, "get", "deploy", "-A").stdout
    assert "NAMESPACE" in everything.splitlines()[0] and ns in everything

    manifest.write_text(DEPLOYMENT.replace("replicas: 3", "replicas: 5"))
    changed = kpctl(apiserver, "-n", ns, "apply", "-f", str(manifest))
    assert "deployment.apps/web configured" in changed.stdout
    generation = kpctl(apiserver, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}/{.metadata.generation}")
    assert generation.stdout == "5/2"


def test_stdin_label_annotate_patch_delete(apiserver: APIServer, ns: str) -> None:
    """Manifests from stdin, then label/annotate/patch/delete behave and report like kubectl."""
    created = kpctl(apiserver, "-n", ns, "create", "-f", "-", stdin=DEPLOYMENT)
    assert created.returncode == 0, created.stderr
    assert kpctl(apiserver, "-n", ns, "label", "deploy", "web", "tier=front").stdout.strip() == \
        "deployment.apps/web labeled"
    refused = kpctl(apiserver, "-n", ns, "label", "deploy", "web", "tier=back")
    assert refused.returncode == 1 and "--overwrite is false" in refused.stderr
    assert kpctl(apiserver, "-n", ns, "label", "deploy/web", "tier=back", "--overwrite").returncode == 0
    assert kpctl(apiserver, "-n", ns, "annotate", "cm", "settings", "owner=me").stdout.strip() == \
        "configmap/settings annotated"
    patched = kpctl(apiserver, "-n", ns, "patch", "deploy", "web", "-p", '{"spec":{"replicas":1}}')
    assert patched.stdout.strip() == "deployment.apps/web patched"
    json_patch = kpctl(apiserver, "-n", ns, "patch", "deploy", "web", "--type", "json", "-p",
                       '[{"op":"replace","path":"/spec/replicas","value":2}]')
    assert json_patch.returncode == 0, json_patch.stderr
    labels = kpctl(apiserver, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.metadata.labels.tier} {.spec.replicas}")
    assert labels.stdout == "back 2"
    deleted = kpctl(apiserver, "-n", ns, "delete", "deploy", "web")
    assert deleted.returncode == 0 and 'deployment.apps "web" deleted' in deleted.stdout
    gone = kpctl(apiserver, "-n", ns, "get", "deploy", "web")
    assert gone.returncode == 1 and 'deployments.apps "web" not found' in gone.stderr
    by_label = kpctl(apiserver, "-n", ns, "delete", "cm", "-l", "missing=label")
    assert by_label.returncode == 0


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: three\n"
         "  selector: {matchLabels: {app: w}}\n  template:\n    metadata: {labels: {app: w}}\n"
         "    spec:\n      cantainers: [{name: c, image: nginx}]\n",
         ['spec.replicas: Invalid value: "three"', 'unknown field "spec.template.spec.cantainers"']),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: Web_App}\nspec:\n  replicas: -1\n"
         "  selector: {matchLabels: {app: w}}\n  template:\n    metadata: {labels: {app: w}}\n"
         "    spec:\n      containers: [{name: c}]\n",
         ["metadata.name: Invalid value: \"Web_App\"", "spec.replicas: Invalid value: -1",
          "spec.template.spec.containers[0].image: Required value"]),
        ("apiVersion: v1\nkind: Gizmo\nmetadata: {name: g}\n", ['no matches for kind "Gizmo" in version "v1"']),
        ("apiVersion: v7\nkind: Pod\nmetadata: {name: g}\n", ['no matches for kind "Pod" in version "v7"']),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: [oops\n", ["error converting YAML to JSON"]),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: does-not-exist}\n",
         ['namespaces "does-not-exist" not found']),
    ],
    ids=["typo-and-type", "semantic", "unknown-kind", "unknown-version", "malformed-yaml", "missing-namespace"],
)
def test_bad_input_is_rejected_clearly(apiserver: APIServer, ns: str, manifest: str, expected: list[str]) -> None:
    """Bad manifests fail with exit 1, a message naming each problem and its field path, and store nothing."""
    before = kpctl(apiserver, "get", "all", "-A", "-o", "name").stdout
    ns_args = [] if "namespace:" in manifest else ["-n", ns]
    result = kpctl(apiserver, *ns_args, "create", "-f", "-", stdin=manifest)
    assert result.returncode == 1
    for text in expected:
        assert text in result.stderr, result.stderr
    assert kpctl(apiserver, "get", "all", "-A", "-o", "name").stdout == before


def test_duplicate_create_and_stale_replace(apiserver: APIServer, ns: str, tmp_path: Path) -> None:
    """A second create is AlreadyExists; a replace carrying an old resourceVersion is a Conflict."""
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1'}\n"
    assert kpctl(apiserver, "-n", ns, "create", "-f", "-", stdin=cm).returncode == 0
    dup = kpctl(apiserver, "-n", ns, "create", "-f", "-", stdin=cm)
    assert dup.returncode == 1 and "(AlreadyExists)" in dup.stderr and 'configmaps "c" already exists' in dup.stderr
    live = kpctl(apiserver, "-n", ns, "get", "cm", "c", "-o", "yaml").stdout
    assert kpctl(apiserver, "-n", ns, "patch", "cm", "c", "-p", '{"data":{"a":"2"}}').returncode == 0
    stale = kpctl(apiserver, "-n", ns, "replace", "-f", "-", stdin=live.replace("a: '1'", "a: '3'"))
    assert stale.returncode == 1 and "(Conflict)" in stale.stderr
    assert kpctl(apiserver, "-n", ns, "get", "cm", "c", "-o", "jsonpath={.data.a}").stdout == "2"


def test_edit_uses_editor(apiserver: APIServer, ns: str, tmp_path: Path) -> None:
    """kpctl edit opens $EDITOR on the YAML and saves the change."""
    kpctl(apiserver, "-n", ns, "create", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: e}\n"
                                                          "data: {k: before}\n")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/k: before/k: after/' \"$1\"\n")
    editor.chmod(0o755)
    result = kpctl(apiserver, "-n", ns, "edit", "cm", "e", env={"EDITOR": str(editor)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "configmap/e edited"
    assert kpctl(apiserver, "-n", ns, "get", "cm", "e", "-o", "jsonpath={.data.k}").stdout == "after"


def test_discovery_commands(apiserver: APIServer) -> None:
    """api-resources, explain and version answer like kubectl's."""
    resources = kpctl(apiserver, "api-resources").stdout
    assert any(line.split()[:3] == ["deployments", "deploy", "apps/v1"] for line in resources.splitlines())
    explained = kpctl(apiserver, "explain", "deployment.spec.strategy")
    assert explained.returncode == 0 and "FIELD: strategy <DeploymentStrategy>" in explained.stdout
    assert "rollingUpdate" in explained.stdout
    bad = kpctl(apiserver, "explain", "pods.spec.cantainers")
    assert bad.returncode == 1 and 'field "cantainers" does not exist' in bad.stderr
    version = kpctl(apiserver, "version")
    assert version.returncode == 0 and "Server Version" in version.stdout


def test_unreachable_server_is_a_clear_error(apiserver: APIServer) -> None:
    """A wrong address fails fast with kubectl's connection message and exit code 1."""
    from kplane.devcluster import free_port

    result = kpctl(apiserver, "get", "pods", server=f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "The connection to the server" in result.stderr and "was refused" in result.stderr


class LineReader:
    """Collects a process's stdout lines on a thread, so tests can wait for a line with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        import queue
        import threading

        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, predicate: Any, timeout: float) -> list[str]:
        import queue

        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; the watch printed: {self.lines}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the watch exited; it printed: {self.lines}")
            self.lines.append(line)
        return self.lines


def test_watch_survives_an_apiserver_restart(etcd: Any, tmp_path: Path) -> None:
    """`kpctl get -w` shows changes live and resumes after the apiserver is killed and restarted;
    nothing stored before the crash is lost."""
    from kplane.devcluster import free_port

    port = free_port()
    api = start_apiserver(etcd, tmp_path, port=port)
    watcher = None
    try:
        ns = f"w-{uuid.uuid4().hex[:6]}"
        assert kpctl(api, "create", "namespace", ns).returncode == 0
        kpctl(api, "-n", ns, "create", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: before}\n")
        watcher = subprocess.Popen([*KPCTL, "--server", api.address, "-n", ns, "get", "cm", "-w"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        reader = LineReader(watcher)
        reader.wait_for(lambda ls: any(line.startswith("before") for line in ls), 30)
        kpctl(api, "-n", ns, "create", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: live}\n")
        reader.wait_for(lambda ls: any(line.startswith("live") for line in ls), 30)

        api.proc.send_signal(signal.SIGKILL)
        api.proc.wait()
        api = start_apiserver(etcd, tmp_path, port=port)
        listed = kpctl(api, "-n", ns, "get", "cm", "-o", "name").stdout.split()
        assert listed == ["configmap/before", "configmap/live"]
        kpctl(api, "-n", ns, "create", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after}\n")
        reader.wait_for(lambda ls: any(line.startswith("after") for line in ls), 60)
    finally:
        if watcher is not None:
            watcher.kill()
            watcher.wait()
        stop_process(api.proc)


def test_kplane_up_status_and_clean_stop(tmp_path: Path) -> None:
    """`kplane up --nodes 3` starts etcd, the apiserver, the scheduler, the controller-manager and
    three kubelets as processes, writes the config kpctl reads, `kplane status` reports them
    healthy, the nodes turn Ready and a Deployment's pods run; SIGTERM stops everything cleanly,
    pod processes included."""
    from kplane.cluster.pods import pod_processes
    from kplane.devcluster import free_port

    data, config = tmp_path / "data", tmp_path / "config"
    env = {**os.environ, "KPLANE_CONFIG": str(config)}
    up = subprocess.Popen(
        [sys.executable, "-m", "kplane.cli.kplane", "up", "--data-dir", str(data), "--etcd-port", str(free_port()),
         "--etcd-peer-port", str(free_port()), "--port", str(free_port()), "--nodes", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        wait_until(lambda: config.exists() and (data / "cluster.json").exists(), 90, "kplane up to write its config")
        wait_until(lambda: subprocess.run([*KPCTL, "get", "ns"], env=env, capture_output=True, timeout=30)
                   .returncode == 0, 60, "kpctl through the written config")
        namespaces = subprocess.run([*KPCTL, "get", "ns", "-o", "name"], env=env, capture_output=True, text=True)
        assert "namespace/kube-system" in namespaces.stdout.split()
        status = subprocess.run([sys.executable, "-m", "kplane.cli.kplane", "status", "--data-dir", str(data)],
                                env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "apiserver" in status.stdout and "etcd" in status.stdout
        for component in ("scheduler", "controller-manager", "node-1", "node-2", "node-3"):
            assert component in status.stdout

        def ready_nodes() -> bool:
            out = subprocess.run([*KPCTL, "get", "nodes", "--no-headers"], env=env, capture_output=True,
                                 text=True, timeout=30).stdout.splitlines()
            return len(out) == 3 and all(line.split()[1] == "Ready" for line in out)

        wait_until(ready_nodes, 90, "three Ready nodes")
        created = subprocess.run([*KPCTL, "create", "deployment", "pause", "--image=pause", "--replicas=3"],
                                 env=env, capture_output=True, text=True, timeout=30)
        assert created.returncode == 0, created.stderr

        def running() -> bool:
            out = subprocess.run([*KPCTL, "get", "pods", "--no-headers"], env=env, capture_output=True,
                                 text=True, timeout=30).stdout.splitlines()
            return len(out) == 3 and all(line.split()[2] == "Running" for line in out)

        wait_until(running, 120, "the deployment's three pods to run")
        assert pod_processes(data / "kubelet")
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            out, _ = up.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            raise
    assert up.returncode == 0, out[-3000:]
    state = json.loads((data / "cluster.json").read_text())
    assert all(c.get("pid") is None for c in state["components"]), state
    assert pod_processes(data / "kubelet") == []


APPLY_FULL = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: fe}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: nginx
        args: ["--a", "--b"]
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
        ports:
        - containerPort: 80
        resources:
          limits: {cpu: 100m, memory: 64Mi}
"""

APPLY_TRIMMED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: nginx
        env:
        - {name: A, value: "1"}
        resources:
          limits: {memory: 64Mi}
"""


def test_apply_removes_fields_inside_lists_and_switches_strategy(apiserver: APIServer, ns: str,
                                                                  tmp_path: Path) -> None:
    """Re-applying a trimmed manifest removes args, ports, a limit and an env item, then Recreate replaces rollingUpdate."""
    manifest = tmp_path / "web.yaml"
    manifest.write_text(APPLY_FULL)
    assert kpctl(apiserver, "-n", ns, "apply", "-f", str(manifest)).stdout.strip() == "deployment.apps/web created"

    manifest.write_text(APPLY_TRIMMED)
    trimmed = kpctl(apiserver, "-n", ns, "apply", "-f", str(manifest))
    assert trimmed.stdout.strip() == "deployment.apps/web configured", trimmed.stderr
    live = json.loads(kpctl(apiserver, "-n", ns, "get", "deploy", "web", "-o", "json").stdout)
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert "args" not in container and "ports" not in container
    assert container["resources"] == {"limits": {"memory": "64Mi"}}
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert container["imagePullPolicy"]  # the server defaulted the re-sent container again
    assert live["spec"]["replicas"] == 1 and live["metadata"]["labels"] == {"app": "web"}
    again = kpctl(apiserver, "-n", ns, "apply", "-f", str(manifest))
    assert again.stdout.strip() == "deployment.apps/web unchanged"

    manifest.write_text(APPLY_TRIMMED.replace("spec:\n  selector:", "spec:\n  strategy: {type: Recreate}\n  selector:"))
    recreate = kpctl(apiserver, "-n", ns, "apply", "-f", str(manifest))
    assert recreate.returncode == 0, recreate.stderr
    assert recreate.stdout.strip() == "deployment.apps/web configured"
    strategy = kpctl(apiserver, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.strategy}").stdout
    assert json.loads(strategy) == {"type": "Recreate"}
    assert kpctl(apiserver, "-n", ns, "apply", "-f", str(manifest)).stdout.strip() == "deployment.apps/web unchanged"


def test_apply_create_failure_says_creating(apiserver: APIServer, tmp_path: Path) -> None:
    """A failed create during apply is reported as 'error when creating', not as a patch."""
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: no-such-ns}\n")
    result = kpctl(apiserver, "apply", "-f", str(manifest))
    assert result.returncode == 1
    assert f'Error from server (NotFound): error when creating "{manifest}": namespaces "no-such-ns" not found' \
        in result.stderr, result.stderr
