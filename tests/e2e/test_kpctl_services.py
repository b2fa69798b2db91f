"""kpctl for Services end to end: the real kpctl binary against a real apiserver process and etcd.

`create service` dry runs are compared byte for byte with the real kubectl when it is installed;
`expose` reads the exposed object from the apiserver, so its output is checked against the text
kubectl prints for the same object.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess

import pytest
from procs import kpctl as run_kpctl
from procs import new_namespace

from kplane.devcluster import APIServer

pytestmark = pytest.mark.e2e

def kpctl(apiserver: APIServer, *args: str, stdin: str | None = None,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_kpctl(apiserver.address, *args, stdin=stdin, env=env)


@pytest.fixture
def ns(apiserver: APIServer) -> str:
    return new_namespace(apiserver.address)


CREATE_SERVICE_CASES = [
    ["clusterip", "my-cs", "--tcp=5678:8080"],
    ["clusterip", "my-cs", "--clusterip=None"],
    ["clusterip", "x", "--tcp=80,443:8443", "--clusterip=127.96.0.9"],
    ["clusterip", "x", "--tcp=80:http", "-n", "foo"],
    ["nodeport", "y", "--tcp=5678:8080", "--node-port=30080"],
    ["nodeport", "my-ns", "--tcp=80", "--tcp=443:8443"],
    ["loadbalancer", "my-lb", "--tcp=5678:8080"],
    ["externalname", "my-en", "--external-name", "bar.com"],
    # errors
    ["clusterip", "x", "--tcp=abc"],
    ["nodeport", "y"],
    ["nodeport", "y", "--tcp=70000"],
    ["clusterip", "a", "b", "--tcp=80"],
]


def test_create_service_dry_run_is_kubectls_output(apiserver: APIServer) -> None:
    """`kpctl create service ... --dry-run=client -o yaml|json|name` prints exactly what kubectl
    prints (and fails with kubectl's message and exit code on bad input)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl binary to compare with")
    for i, case in enumerate(CREATE_SERVICE_CASES):
        # every case as YAML; JSON (Go field order) and the plain message for a few
        for output in (["-o", "yaml"], ["-o", "json"], [])[: 3 if i in (2, 4) else 1]:
            args = ["create", "service", *case, "--dry-run=client", *output]
            want = subprocess.run([kubectl, *args], capture_output=True, text=True, timeout=60)
            got = kpctl(apiserver, *args)
            assert got.returncode == want.returncode, (case, got.stderr)
            assert got.stdout == want.stdout, case
            if want.returncode:
                assert got.stderr.strip() == want.stderr.strip().replace("kubectl", "kpctl"), case


def test_create_get_describe_services(apiserver: APIServer, ns: str, service_cidr: str) -> None:
    made = kpctl(apiserver, "-n", ns, "create", "service", "clusterip", "web", "--tcp=80:8080")
    assert (made.returncode, made.stdout) == (0, "service/web created\n"), made.stderr
    made = kpctl(apiserver, "-n", ns, "create", "service", "nodeport", "np", "--tcp=80:8080")
    assert made.returncode == 0, made.stderr
    table = kpctl(apiserver, "-n", ns, "get", "svc")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["web"][1] == "ClusterIP" and rows["web"][3:5] == ["<none>", "80/TCP"]
    assert ipaddress.ip_address(rows["web"][2]) in ipaddress.ip_network(service_cidr)
    np_port = json.loads(kpctl(apiserver, "-n", ns, "get", "svc", "np", "-o", "json").stdout)["spec"]["ports"][0]
    assert rows["np"][1] == "NodePort" and rows["np"][4] == f"80:{np_port['nodePort']}/TCP"
    # a taken ClusterIP is refused with kubectl's wording and exit code
    web_ip = rows["web"][2]
    taken = kpctl(apiserver, "-n", ns, "create", "service", "clusterip", "web2", "--tcp=80", f"--clusterip={web_ip}")
    assert taken.returncode == 1
    assert taken.stderr.strip() == (
        f'error: failed to create ClusterIP service: Service "web2" is invalid: spec.clusterIPs: Invalid value: '
        f'["{web_ip}"]: failed to allocate IP {web_ip}: provided IP is already allocated')
    # Endpoints (written by hand here: no controller runs beside this apiserver) show in get ep and describe
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                 "subsets": [{"addresses": [{"ip": "127.244.9.2"}, {"ip": "127.244.9.3"}],
                              "notReadyAddresses": [{"ip": "127.244.9.4"}],
                              "ports": [{"name": "80-8080", "port": 8080, "protocol": "TCP"}]}]}
    applied = kpctl(apiserver, "-n", ns, "apply", "-f", "-", stdin=json.dumps(endpoints))
    assert applied.returncode == 0, applied.stderr
    ep = kpctl(apiserver, "-n", ns, "get", "ep", "web").stdout.splitlines()
    assert ep[0].split() == ["NAME", "ENDPOINTS", "AGE"]
    assert ep[1].split()[:2] == ["web", "127.244.9.2:8080,127.244.9.3:8080"]
    described = kpctl(apiserver, "-n", ns, "describe", "svc", "web")
    assert described.returncode == 0, described.stderr
    text = described.stdout
    for line in (f"IP:                       {web_ip}", "Type:                     ClusterIP",
                 "Port:                     80-8080  80/TCP", "TargetPort:               8080/TCP",
                 "Endpoints:                127.244.9.2:8080,127.244.9.3:8080",
                 "Session Affinity:         None", "IP Family Policy:         SingleStack",
                 "IP Families:              IPv4", "Internal Traffic Policy:  Cluster"):
        assert line in text.splitlines(), (line, text)
    np_text = kpctl(apiserver, "-n", ns, "describe", "svc", "np").stdout
    assert f"NodePort:                 80-8080  {np_port['nodePort']}/TCP" in np_text.splitlines(), np_text
    assert "External Traffic Policy:  Cluster" in np_text.splitlines()


def test_expose_deployment_pod_and_service(apiserver: APIServer, ns: str) -> None:
    made = kpctl(apiserver, "-n", ns, "create", "deployment", "myapp", "--image=myapp:v1", "--port=8080")
    assert made.returncode == 0, made.stderr
    preview = kpctl(apiserver, "-n", ns, "expose", "deployment", "myapp", "--dry-run=client", "-o", "yaml")
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout == (
        "apiVersion: v1\nkind: Service\nmetadata:\n  creationTimestamp: null\n  labels:\n    app: myapp\n"
        f"  name: myapp\n  namespace: {ns}\nspec:\n  ports:\n  - port: 8080\n    protocol: TCP\n    targetPort: 8080\n"
        "  selector:\n    app: myapp\nstatus:\n  loadBalancer: {}\n")
    exposed = kpctl(apiserver, "-n", ns, "expose", "deployment", "myapp", "--port=80", "--target-port=8080")
    assert (exposed.returncode, exposed.stdout) == (0, "service/myapp exposed\n"), exposed.stderr
    svc = json.loads(kpctl(apiserver, "-n", ns, "get", "svc", "myapp", "-o", "json").stdout)
    assert svc["spec"]["selector"] == {"app": "myapp"} and svc["metadata"]["labels"] == {"app": "myapp"}
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert svc["spec"]["clusterIP"]
    # deploy/NAME form, NodePort, another name
    np = kpctl(apiserver, "-n", ns, "expose", "deploy/myapp", "--port=80", "--type=NodePort", "--name=myapp-np")
    assert np.returncode == 0, np.stderr
    np_svc = json.loads(kpctl(apiserver, "-n", ns, "get", "svc", "myapp-np", "-o", "json").stdout)
    assert 30000 <= np_svc["spec"]["ports"][0]["nodePort"] <= 32767
    # a service can be exposed again under another name
    again = kpctl(apiserver, "-n", ns, "expose", "svc", "myapp", "--name=myapp-2", "--port=81")
    assert again.returncode == 0, again.stderr
    # a pod without ports and without --port: kubectl's usage error
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo", "labels": {"run": "solo"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert kpctl(apiserver, "-n", ns, "apply", "-f", "-", stdin=json.dumps(pod)).returncode == 0
    no_port = kpctl(apiserver, "-n", ns, "expose", "pod", "solo")
    assert no_port.returncode == 1
    assert no_port.stderr == ("error: couldn't find port via --port flag or introspection\n"
                              "See 'kpctl expose -h' for help and examples\n")
    with_port = kpctl(apiserver, "-n", ns, "expose", "pod", "solo", "--port=444", "--name=frontend",
                      "--dry-run=client", "-o", "json")
    assert json.loads(with_port.stdout)["spec"] == {"ports": [{"protocol": "TCP", "port": 444, "targetPort": 444}],
                                                     "selector": {"run": "solo"}}
    unsupported = kpctl(apiserver, "-n", ns, "expose", "configmap", "x")
    assert (unsupported.returncode, unsupported.stderr) == (1, "error: cannot expose a ConfigMap\n")
    missing = kpctl(apiserver, "-n", ns, "expose", "deployment", "nope")
    assert missing.returncode == 1 and 'deployments.apps "nope" not found' in missing.stderr


def test_patch_switches_the_type(apiserver: APIServer, ns: str) -> None:
    assert kpctl(apiserver, "-n", ns, "create", "service", "clusterip", "sw", "--tcp=80").returncode == 0
    patched = kpctl(apiserver, "-n", ns, "patch", "svc", "sw", "-p", '{"spec":{"type":"NodePort"}}')
    assert (patched.returncode, patched.stdout) == (0, "service/sw patched\n"), patched.stderr
    row = kpctl(apiserver, "-n", ns, "get", "svc", "sw", "--no-headers").stdout.split()
    assert row[1] == "NodePort" and row[4].startswith("80:") and row[4].endswith("/TCP")
    node_port = int(row[4][3:-4])
    assert 30000 <= node_port <= 32767
    back = kpctl(apiserver, "-n", ns, "patch", "svc", "sw", "-p", '{"spec":{"type":"ClusterIP"}}')
    assert back.returncode == 0, back.stderr
    row = kpctl(apiserver, "-n", ns, "get", "svc", "sw", "--no-headers").stdout.split()
    assert row[1] == "ClusterIP" and row[4] == "80/TCP"
    # the freed node port can be asked for by another Service
    again = kpctl(apiserver, "-n", ns, "create", "service", "nodeport", "np", "--tcp=80", f"--node-port={node_port}")
    assert again.returncode == 0, again.stderr
    # kpctl edit (the whole object sent back, clusterIP and all) switches the type too
    to_np = kpctl(apiserver, "-n", ns, "edit", "svc", "sw", env={"KUBE_EDITOR": "sed -i 's/type: ClusterIP/type: NodePort/'"})
    assert (to_np.returncode, to_np.stdout) == (0, "service/sw edited\n"), to_np.stderr
    row = kpctl(apiserver, "-n", ns, "get", "svc", "sw", "--no-headers").stdout.split()
    assert row[1] == "NodePort" and row[4].startswith("80:")
    to_cip = kpctl(apiserver, "-n", ns, "edit", "svc", "sw", env={"KUBE_EDITOR": "sed -i 's/type: NodePort/type: ClusterIP/'"})
    assert to_cip.returncode == 0, to_cip.stderr
    assert kpctl(apiserver, "-n", ns, "get", "svc", "sw", "--no-headers").stdout.split()[4] == "80/TCP"
