"""kpctl logs / exec / attach / run end to end: the real kpctl binary -> the session's apiserver (real
etcd) -> a kubelet StreamingServer in this test process over real subprocesses (tests/streaming_double.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from streaming_double import Kubelet, PodRecord, create_node, kubelet

from kplane.api import errors as api
from kplane.api.resources import resolve
from kplane.devcluster import APIServer

pytestmark = pytest.mark.e2e

KPCTL = [sys.executable, "-m", "kplane.cli.kpctl"]
DEADLINE = 60.0


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


async def kpctl(apiserver: APIServer, *args: str, stdin: bytes | None = None) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *KPCTL, "--server", apiserver.address, *args, stdin=asyncio.subprocess.PIPE if stdin is not None else
        asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ})
    async with asyncio.timeout(DEADLINE):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def kl(client: Any, tmp_path: Path) -> AsyncIterator[Kubelet]:
    async with kubelet(client, tmp_path) as k:
        yield k


async def wait_exited(kl: Kubelet, cid: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while (await kl.runtime.container_status(cid)).state != "exited":
        assert time.monotonic() < deadline, "the container did not exit"
        await asyncio.sleep(0.05)


async def test_logs(apiserver: APIServer, client: Any, namespace: str, kl: Kubelet) -> None:
    """kpctl logs prints the log, --tail, --timestamps, -p, an inline container, and defaults the
    container of a multi-container pod with kubectl's notice."""
    pod = await kl.add_pod(client, namespace, "web", ["app", "sidecar"])
    pod.attempts["app"] = [kl.runtime.exited("app", b"old 1\nold 2", 1),
                           kl.runtime.exited("app", b"new 1\nnew 2\nnew 3", 0, attempt=1)]
    pod.attempts["sidecar"] = [kl.runtime.exited("sidecar", b"side", 0)]
    ns = ("-n", namespace)

    result = await kpctl(apiserver, "logs", "web", *ns)
    assert (result.returncode, result.stdout) == (0, "new 1\nnew 2\nnew 3\n"), result.stderr
    assert result.stderr == 'Defaulted container "app" out of: app, sidecar\n'
    result = await kpctl(apiserver, "logs", "pod/web", "-c", "app", "--tail", "1", *ns)
    assert (result.returncode, result.stdout, result.stderr) == (0, "new 3\n", "")
    result = await kpctl(apiserver, "logs", "web", "sidecar", *ns)
    assert result.stdout == "side\n"
    result = await kpctl(apiserver, "logs", "web", "-c", "app", "-p", *ns)
    assert result.stdout == "old 1\nold 2\n"
    result = await kpctl(apiserver, "logs", "web", "-c", "app", "--timestamps", "--tail=1", *ns)
    stamp, _, text = result.stdout.partition(" ")
    assert text == "new 3\n" and stamp.endswith("Z") and "T" in stamp
    result = await kpctl(apiserver, "logs", "web", "-c", "sidecar", "--previous", *ns)
    assert result.returncode == 1
    assert result.stderr == ('Error from server (BadRequest): previous terminated container "sidecar" in pod "web" '
                             "not found\n")


async def test_logs_follow_ends_with_the_container(apiserver: APIServer, client: Any, namespace: str,
                                                   kl: Kubelet) -> None:
    """kpctl logs -f prints lines as they come and exits 0 when the container exits."""
    pod = await kl.add_pod(client, namespace, "ticker", ["t"])
    info = await kl.runtime.run("t", "for i in 1 2 3; do echo tick$i; sleep 0.3; done")
    pod.attempts["t"] = [info]
    result = await kpctl(apiserver, "logs", "-f", "ticker", "-n", namespace)
    assert (result.returncode, result.stdout) == (0, "tick1\ntick2\ntick3\n"), result.stderr
    assert (await kl.runtime.container_status(info.id)).state == "exited"


async def test_logs_errors(apiserver: APIServer, client: Any, namespace: str, kl: Kubelet) -> None:
    """A missing pod, an unknown container and a container still waiting: one clear line, exit 1."""
    pod = await kl.add_pod(client, namespace, "web", ["app"])
    pod.waiting["app"] = "ContainerCreating"
    cases = {
        ("logs", "nope"): 'Error from server (NotFound): pods "nope" not found\n',
        ("logs", "web", "-c", "zz"): "error: container zz is not valid for pod web\n",
        ("logs", "web"): 'Error from server (BadRequest): container "app" in pod "web" is waiting to start: '
                         "ContainerCreating\n",
        ("exec", "web", "--", "true"): 'Error from server (BadRequest): container "app" in pod "web" is waiting '
                                       "to start: ContainerCreating\n",
        ("logs",): "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a "
                   "required argument for the logs command\nSee 'kpctl logs -h' for help and examples\n",
    }
    for args, expected in cases.items():
        result = await kpctl(apiserver, "-n", namespace, *args)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", expected), args


async def test_exec(apiserver: APIServer, client: Any, namespace: str, kl: Kubelet) -> None:
    """kpctl exec relays stdout and stderr, forwards stdin with -i, and exits with the command's code."""
    pod = await kl.add_pod(client, namespace, "box", ["box"])
    pod.attempts["box"] = [await kl.runtime.run("box", "exec sleep 120")]
    ns = ("-n", namespace)

    result = await kpctl(apiserver, "exec", "box", *ns, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout) == (3, "out\n")
    assert result.stderr == "err\ncommand terminated with exit code 3\n"
    result = await kpctl(apiserver, "exec", "-i", "box", *ns, "--", "tr", "a-z", "A-Z", stdin=b"shout\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, "SHOUT\n", "")
    # flags after -- belong to the command, even kpctl's own (--follow=true is not rewritten)
    result = await kpctl(apiserver, "exec", "box", *ns, "--", "echo", "-c", "x", "--follow=true")
    assert result.stdout == "-c x --follow=true\n"
    result = await kpctl(apiserver, "exec", "box", *ns)
    assert (result.returncode, result.stderr) == (1, "error: you must specify at least one command for the "
                                                     "container\nSee 'kpctl exec -h' for help and examples\n")


async def test_attach(apiserver: APIServer, client: Any, namespace: str, kl: Kubelet) -> None:
    """kpctl attach -i feeds the container's own stdin and prints its output until it exits."""
    pod = await kl.add_pod(client, namespace, "echo", ["echo"], stdin=True)
    pod.attempts["echo"] = [await kl.runtime.run("echo", "while read l; do echo got $l; done; echo bye", stdin=True)]
    result = await kpctl(apiserver, "attach", "echo", "-i", "-n", namespace, stdin=b"one\ntwo\n")
    assert (result.returncode, result.stdout) == (0, "got one\ngot two\nbye\n"), result.stderr
    assert "If you don't see a command prompt, try pressing enter." in result.stderr


async def test_no_node_no_endpoint_no_kubelet(apiserver: APIServer, client: Any, namespace: str) -> None:
    """Without a node, a kubelet endpoint, or a listening kubelet: a one-line error naming why, exit 1."""
    pods = resolve("pods")
    await client.create(pods, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pending", "namespace": namespace},
                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    result = await kpctl(apiserver, "logs", "pending", "-n", namespace)
    assert (result.returncode, result.stderr) == (1, "Error from server (BadRequest): pod pending does not have a "
                                                     "host assigned\n")
    bare = f"bare-{uuid.uuid4().hex[:8]}"
    await create_node(client, bare, port=None)
    await client.create(pods, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "namespace": namespace},
                               "spec": {"nodeName": bare, "containers": [{"name": "c", "image": "busybox"}]}})
    result = await kpctl(apiserver, "exec", "orphan", "-n", namespace, "--", "true")
    assert result.returncode == 1
    assert result.stderr.startswith(f'Error from server (ServiceUnavailable): node "{bare}" publishes no kubelet '
                                    f"endpoint"), result.stderr
    assert result.stderr.count("\n") == 1


RUN_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    a: b
    c: d
  name: x
spec:
  containers:
  - args:
    - sleep
    - "10"
    env:
    - name: A
      value: B
    image: "y"
    name: x
    ports:
    - containerPort: 80
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Never
status: {}
"""  # exactly what `kubectl run x --image=y --restart=Never --env A=B --labels a=b,c=d --port 80
#      --dry-run=client -o yaml -- sleep 10` prints (kubectl v1.32)

RUN_COMMAND_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: x
  name: x
spec:
  containers:
  - command:
    - sh
    - -c
    - echo hi
    image: "y"
    name: x
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: OnFailure
status: {}
"""  # kubectl run x --image=y --dry-run=client -o yaml --command --restart=OnFailure -- sh -c "echo hi"


async def test_run_dry_run_matches_kubectl(apiserver: APIServer) -> None:
    """kpctl run --dry-run=client -o yaml prints kubectl's Pod, and kubectl's validation messages."""
    result = await kpctl(apiserver, "run", "x", "--image=y", "--restart=Never", "--env", "A=B", "--labels", "a=b,c=d",
                         "--port", "80", "--dry-run=client", "-o", "yaml", "--", "sleep", "10")
    assert (result.returncode, result.stdout, result.stderr) == (0, RUN_YAML, "")
    result = await kpctl(apiserver, "run", "x", "--image=y", "--dry-run=client", "-o", "yaml", "--command",
                         "--restart=OnFailure", "--", "sh", "-c", "echo hi")
    assert result.stdout == RUN_COMMAND_YAML
    result = await kpctl(apiserver, "run", "x", "--image=y", "--dry-run=client")
    assert result.stdout == "pod/x created (dry run)\n"
    errors = {
        ("--image=y", "--rm"): "error: --rm should only be used for attached containers\nSee 'kpctl run -h' for "
                               "help and examples\n",
        ("--image=y", "-i", "--dry-run=client"): "error: --dry-run=[server|client] can't be used with attached "
                                                 "containers options (--attach, --stdin, or --tty)\nSee 'kpctl run -h' "
                                                 "for help and examples\n",
        ("--image=y", "-t"): "error: -i/--stdin is required for containers with -t/--tty=true\nSee 'kpctl run -h' "
                             "for help and examples\n",
        ("--image=y", "--restart=Bogus"): "error: invalid restart policy: Bogus\nSee 'kpctl run -h' for help and "
                                          "examples\n",
        ("--image=Bad Image",): 'error: Invalid image name "Bad Image": invalid reference format\n',
        ("--image=y", "--env=FOO"): "error: invalid env: FOO\n",
        ("--image=y", "--labels=foo"): "error: unexpected label spec: foo\n",
        (): 'error: required flag(s) "image" not set\n',
    }
    for args, expected in errors.items():
        result = await kpctl(apiserver, "run", "x", *args)
        assert (result.returncode, result.stderr) == (1, expected), args


async def test_run_creates_the_pod(apiserver: APIServer, client: Any, namespace: str) -> None:
    """Without -i, kpctl run creates the Pod kubectl would (label run=NAME, args after --) and says so."""
    result = await kpctl(apiserver, "run", "web", "--image=nginx:1.25", "-n", namespace, "--", "--port", "8080")
    assert (result.returncode, result.stdout, result.stderr) == (0, "pod/web created\n", "")
    pod = await client.get(resolve("pods"), "web", namespace=namespace)
    assert dict(pod.metadata.labels) == {"run": "web"}
    container = pod.spec.containers[0]
    assert (container.name, container.image, list(container.args)) == ("web", "nginx:1.25", ["--port", "8080"])
    assert pod.spec.restartPolicy == "Always"


async def _play_kubelet(client: Any, kl: Kubelet, namespace: str, name: str, script: str) -> None:
    """What the scheduler and a kubelet would do for `kpctl run -i`: bind the pod, run its container,
    report Running+Ready, then the container's termination."""
    pods = resolve("pods")
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            created = await client.get(pods, name, namespace=namespace)
            break
        except api.NotFound:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    await client.bind(namespace, name, kl.node, uid=created.metadata.uid)
    info = await kl.runtime.run(name, script, stdin=True)
    kl.locator.pods[(namespace, name)] = PodRecord(uid=created.metadata.uid, containers=[name],
                                                   attempts={name: [info]})

    async def report(status: dict[str, Any]) -> None:
        current = await client.get(pods, name, namespace=namespace)
        await client.update_status(pods, {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": namespace, "resourceVersion": current.metadata.resourceVersion},
            "status": status})

    await report({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                  "containerStatuses": [{"name": name, "ready": True, "restartCount": 0, "image": "busybox",
                                         "imageID": "", "state": {"running": {}}}]})
    await wait_exited(kl, info.id)
    code = (await kl.runtime.container_status(info.id)).exit_code
    await report({"phase": "Failed" if code else "Succeeded", "conditions": [{"type": "Ready", "status": "False"}],
                  "containerStatuses": [{"name": name, "ready": False, "restartCount": 0, "image": "busybox",
                                         "imageID": "", "state": {"terminated": {"exitCode": code, "reason":
                                                                                 "Error" if code else "Completed"}}}]})


async def test_run_interactive_rm(apiserver: APIServer, client: Any, namespace: str, kl: Kubelet) -> None:
    """kpctl run -i --rm --restart=Never waits for the pod to run, attaches stdin and output, deletes
    the pod, and exits with the container's exit code (kubectl's contract)."""
    player = asyncio.create_task(_play_kubelet(client, kl, namespace, "job", "read l; echo got $l; exit 5"))
    result = await kpctl(apiserver, "run", "job", "-i", "--rm", "--restart=Never", "--image=busybox", "-n", namespace,
                         "--", "sh", "-c", "ignored by the double", stdin=b"hello\n")
    await player
    assert result.returncode == 5, result.stderr
    assert result.stdout == 'got hello\npod "job" deleted\n'
    assert "If you don't see a command prompt, try pressing enter." in result.stderr
    assert f"error: pod {namespace}/job terminated (Error)" in result.stderr
    try:
        pod = await client.get(resolve("pods"), "job", namespace=namespace)
        assert pod.metadata.HasField("deletionTimestamp")  # bound to a node: its kubelet confirms the deletion
    except api.NotFound:
        pass


async def test_logs_of_a_workload_picks_one_of_its_pods(apiserver: APIServer, client: Any, namespace: str,
                                                        kl: Kubelet) -> None:
    """`kpctl logs rs/NAME` (deploy/, job/, ...) streams from a pod its selector picks, like kubectl."""
    pod = await kl.add_pod(client, namespace, "picked", ["app"])
    pod.attempts["app"] = [kl.runtime.exited("app", b"from the picked pod", 0)]
    await client.patch(resolve("pods"), "picked", {"metadata": {"labels": {"tier": "picked"}}}, namespace=namespace)
    await client.create(resolve("replicasets"), {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs1"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"tier": "picked"}},
                 "template": {"metadata": {"labels": {"tier": "picked"}},
                              "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}}, namespace=namespace)
    result = await kpctl(apiserver, "logs", "rs/rs1", "-n", namespace)
    assert (result.returncode, result.stdout) == (0, "from the picked pod\n"), result.stderr
    result = await kpctl(apiserver, "logs", "configmap/x", "-n", namespace)
    assert result.returncode == 1 and "selector for ConfigMap not implemented" in result.stderr
