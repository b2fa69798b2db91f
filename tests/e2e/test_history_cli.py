"""kplane history / events / timeline and kpctl events, end to end: the real binaries against the
session's apiserver process and etcd."""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from procs import KPCTL, new_namespace
from procs import kpctl as run_kpctl

from kplane.devcluster import APIServer

pytestmark = pytest.mark.e2e

KPLANE = [sys.executable, "-m", "kplane.cli.kplane"]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.25"}]}
"""


def kpctl(apiserver: APIServer, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_kpctl(apiserver.address, *args, stdin=stdin, timeout=120, env={"NO_COLOR": "1"})


def kplane(apiserver: APIServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KPLANE, *args, "--server", apiserver.address], text=True, capture_output=True,
                          timeout=120, env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture
def ns(apiserver: APIServer) -> str:
    return new_namespace(apiserver.address, timeout=120)


def user_label() -> str:
    try:
        return f"kpctl ({getpass.getuser()})"
    except Exception:
        return "kpctl"


def test_history_shows_writers_and_diffs(apiserver: APIServer, ns: str) -> None:
    """Every revision with its writer and a diff; -o json for tools; --at; --show-deleted."""
    assert kpctl(apiserver, "-n", ns, "apply", "-f", "-", stdin=DEPLOYMENT).returncode == 0
    patched = kpctl(apiserver, "-n", ns, "patch", "deploy", "web", "-p", '{"spec":{"replicas":3}}')
    assert patched.returncode == 0, patched.stderr

    out = kplane(apiserver, "history", "deploy/web", "-n", ns)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Deployment {ns}/web\n")
    heads = [line for line in out.stdout.splitlines() if line.startswith("revision ")]
    assert len(heads) == 2
    assert heads[0].split()[3:] == ["ADDED", *user_label().split(), "create"]
    assert heads[1].split()[3:] == ["MODIFIED", *user_label().split(), "patch"]
    assert "-  replicas: 2" in out.stdout and "+  replicas: 3" in out.stdout
    assert "resourceVersion" not in out.stdout and "managedFields" not in out.stdout

    as_json = [json.loads(line) for line in kplane(apiserver, "history", "deployments.apps", "web", "-n", ns,
                                                    "-o", "json").stdout.splitlines()]
    assert [e["type"] for e in as_json] == ["ADDED", "MODIFIED"]
    assert as_json[1]["writer"]["verb"] == "patch" and as_json[1]["object"]["spec"]["replicas"] == 3
    first = as_json[0]["revision"]

    at = kplane(apiserver, "history", "deploy/web", "-n", ns, "--at", str(first))
    assert at.returncode == 0 and at.stdout.startswith(f"# at revision {first}: last changed at revision {first}")
    assert "replicas: 2" in at.stdout

    assert kpctl(apiserver, "-n", ns, "delete", "deploy", "web").returncode == 0
    gone = kplane(apiserver, "history", "deploy/web", "-n", ns)
    assert gone.returncode == 1 and "not found" in gone.stderr and "--show-deleted" in gone.stderr
    deleted = kplane(apiserver, "history", "deploy/web", "-n", ns, "--show-deleted")
    assert deleted.returncode == 0, deleted.stderr
    last = [line for line in deleted.stdout.splitlines() if line.startswith("revision ")][-1]
    assert last.split()[3] == "DELETED" and last.endswith("delete")


@pytest.mark.parametrize(("args", "message"), [
    (("history", "gizmo/web"), 'the server doesn\'t have a resource type "gizmo"'),
    (("history", "cm/nope"), 'configmaps "nope" not found'),
    (("history", "cm/x", "--at", "999999999"), "revision 999999999 is in the future: the current revision is"),
    (("history", "web"), "expected KIND/NAME"),
    (("events", "--since-revision", "999999999"), "is in the future"),
    (("events", "-l", "app in ("), "invalid label selector"),
    (("events", "--kind", "gizmos"), 'the server doesn\'t have a resource type "gizmos"'),
])
def test_bad_input_fails_clearly(apiserver: APIServer, ns: str, args: tuple[str, ...], message: str) -> None:
    """Unknown kinds and names, future revisions and malformed selectors: one clear line, exit 1."""
    result = kplane(apiserver, *args, "-n", ns)
    assert result.returncode == 1
    assert message in result.stderr and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr


def test_events_stream_summarises_changes(apiserver: APIServer, ns: str) -> None:
    """One line per change, in revision order, with the summary and the writer; JSON lines too."""
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {app: a}}\ndata: {mode: slow}\n"
    created = kpctl(apiserver, "-n", ns, "create", "-f", "-", "-o", "json", stdin=cm)
    assert created.returncode == 0, created.stderr
    start = int(json.loads(created.stdout)["metadata"]["resourceVersion"]) - 1
    assert kpctl(apiserver, "-n", ns, "patch", "cm", "c", "-p", '{"data":{"mode":"fast"}}').returncode == 0
    out = kplane(apiserver, "events", "--since-revision", str(start), "-n", ns, "--kind", "cm")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["REVISION", "TIME", "TYPE", "OBJECT"]
    assert re.search(rf"ADDED\s+ConfigMap {ns}/c\s+created\s+\({re.escape(user_label())}: create\)", lines[1])
    assert f"ConfigMap {ns}/c" in lines[2] and "data.mode: slow → fast" in lines[2]
    records = [json.loads(x) for x in kplane(apiserver, "events", "--since-revision", str(start), "-n", ns,
                                             "-o", "json", "-l", "app=a").stdout.splitlines()]
    assert [r["type"] for r in records] == ["ADDED", "MODIFIED"]
    assert records[1]["changes"] == [{"path": "data.mode", "before": "slow", "after": "fast"}]


def test_events_follow_prints_live_changes(apiserver: APIServer, ns: str) -> None:
    """`kplane events -f` keeps running and prints changes as they happen."""
    proc = subprocess.Popen([*KPLANE, "events", "-f", "-n", ns, "--server", apiserver.address, "--no-headers"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)  # let it subscribe (a change before it would be missed: it starts from now)
        kpctl(apiserver, "-n", ns, "create", "-f", "-",
              stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: live}\n")
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"ConfigMap {ns}/live" in line and "created" in line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_timeline_writes_a_self_contained_page(apiserver: APIServer, ns: str, tmp_path: Path) -> None:
    """The page has a lane for the object, its marks with hover details, and loads nothing."""
    assert kpctl(apiserver, "-n", ns, "apply", "-f", "-", stdin=DEPLOYMENT).returncode == 0
    kpctl(apiserver, "-n", ns, "scale", "deploy/web", "--replicas", "4")
    page = tmp_path / "web.html"
    out = kplane(apiserver, "timeline", "--for", "deploy/web", "-n", ns, "--out", str(page))
    assert out.returncode == 0, out.stderr
    text = page.read_text()
    assert f"Deployment {ns}/web" in text and "<svg" in text and "data-tip=" in text
    assert set(re.findall(r"https?://[^\"' )]+", text)) == {"http://www.w3.org/2000/svg"}


EVENTS = """\
apiVersion: v1
kind: Event
metadata: {{name: {name}}}
involvedObject: {{kind: Pod, name: {obj}, namespace: {ns}}}
reason: {reason}
message: {message}
type: {type}
count: 1
firstTimestamp: "{ts}"
lastTimestamp: "{ts}"
"""


def test_kpctl_events_sorted_with_kubectl_columns(apiserver: APIServer, ns: str) -> None:
    """kpctl events and get events list oldest first; --types and --for narrow it."""
    docs = [EVENTS.format(name="late", obj="a", ns=ns, reason="Started", message="late one", type="Normal",
                          ts="2026-11-22T01:00:09Z"),
            EVENTS.format(name="early", obj="b", ns=ns, reason="BackOff", message="early one", type="Warning",
                          ts="2026-11-22T01:00:01Z")]
    created = kpctl(apiserver, "-n", ns, "create", "-f", "-", stdin="---\n".join(docs))
    assert created.returncode == 0, created.stderr
    listed = kpctl(apiserver, "-n", ns, "events")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [line.split()[2] for line in lines[1:]] == ["BackOff", "Started"]
    assert "Pod/b" in lines[1] and "early one" in lines[1]
    got = kpctl(apiserver, "-n", ns, "get", "events").stdout.splitlines()
    assert "pod/b" in got[1] and "pod/a" in got[2]  # kpctl get events: oldest first too
    warnings = kpctl(apiserver, "-n", ns, "events", "--types", "Warning").stdout.splitlines()
    assert len(warnings) == 2 and "BackOff" in warnings[1]
    only_a = kpctl(apiserver, "-n", ns, "events", "--for", "pod/a").stdout.splitlines()
    assert len(only_a) == 2 and "Pod/a" in only_a[1]
    bad = kpctl(apiserver, "-n", ns, "events", "--types", "Bad")
    assert bad.returncode == 1 and "valid --types are Normal or Warning" in bad.stderr
    empty = kpctl(apiserver, "-n", ns, "events", "--for", "pod/none")
    assert empty.returncode == 0 and f"No events found in {ns} namespace." in empty.stderr


def test_kpctl_hides_managed_fields_unless_asked(apiserver: APIServer, ns: str) -> None:
    """-o yaml leaves managedFields out (kubectl ≥ 1.21); --show-managed-fields shows who owns what."""
    kpctl(apiserver, "-n", ns, "create", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n"
                                                          "data: {a: '1'}\n")
    plain = kpctl(apiserver, "-n", ns, "get", "cm", "m", "-o", "yaml").stdout
    assert "managedFields" not in plain
    shown = json.loads(kpctl(apiserver, "-n", ns, "get", "cm", "m", "-o", "json", "--show-managed-fields").stdout)
    [entry] = shown["metadata"]["managedFields"]
    assert entry["manager"] == "kpctl" and entry["operation"] == "Update" and entry["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_kplane_up_audits_and_status_shows_retention(tmp_path: Path) -> None:
    """Under `kplane up` the apiserver writes DATA/logs/audit.log, `kplane status` prints the
    retained history, and `kplane history` finds the cluster through the written config."""
    from kplane.devcluster import free_port, wait_until

    data, config = tmp_path / "data", tmp_path / "config"
    env = {**os.environ, "KPLANE_CONFIG": str(config)}
    env.pop("KPLANE_SERVER", None)
    up = subprocess.Popen(
        [*KPLANE, "up", "--data-dir", str(data), "--etcd-port", str(free_port()), "--etcd-peer-port",
         str(free_port()), "--port", str(free_port()), "--nodes", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        wait_until(lambda: config.exists() and (data / "cluster.json").exists(), 90, "kplane up to write its config")
        wait_until(lambda: subprocess.run([*KPCTL, "get", "ns"], env=env, capture_output=True, timeout=30)
                   .returncode == 0, 60, "kpctl through the written config")
        created = subprocess.run([*KPCTL, "create", "-f", "-"], input="apiVersion: v1\nkind: ConfigMap\n"
                                 "metadata: {name: audited}\n", env=env, capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        audit_log = data / "logs" / "audit.log"

        def audited() -> bool:
            lines = [json.loads(x) for x in audit_log.read_text().splitlines()]
            return any(e["verb"] == "create" and e["objectRef"].get("name") == "audited" for e in lines)

        wait_until(audited, 30, "the create in the audit log")
        status = subprocess.run([*KPLANE, "status", "--data-dir", str(data)], env=env, capture_output=True,
                                text=True, timeout=60)
        assert "history: revisions 1–" in status.stdout, status.stdout + status.stderr
        assert "compaction keeps at least 1h of history" in status.stdout
        history = subprocess.run([*KPLANE, "history", "cm/audited"], env=env, capture_output=True, text=True,
                                 timeout=60)
        assert history.returncode == 0, history.stderr
        assert f"ADDED  {user_label()}  create" in history.stdout
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            raise
