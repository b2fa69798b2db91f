"""scheduler.nodeinfo: pod requests (component-helpers PodRequests) and NodeInfo bookkeeping
(framework/types.go), with cases ported from upstream's helpers_test.go and types_test.go."""

from __future__ import annotations

from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import NodeInfo, Resource
from scheduler.nodeinfo import (
    add_pod,
    host_ports,
    image_key,
    new_node_info,
    new_pod_info,
    non_zero_requests,
    normalized_image_name,
    pod_requests,
    remove_pod,
)

MI = 1024 * 1024


def ctr(requests: dict[str, str] | None = None, *, name: str = "c", restart: str | None = None,
        ports: list[dict[str, Any]] | None = None, image: str = "img") -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image}
    if requests is not None:
        c["resources"] = {"requests": requests}
    if restart:
        c["restartPolicy"] = restart
    if ports:
        c["ports"] = ports
    return c


def make_pod(name: str = "p", *, containers: list[dict[str, Any]] | None = None,
             init: list[dict[str, Any]] | None = None, overhead: dict[str, str] | None = None,
             phase: str = "", affinity: dict[str, Any] | None = None) -> Any:
    spec: dict[str, Any] = {"containers": containers or []}
    if init:
        spec["initContainers"] = init
    if overhead:
        spec["overhead"] = overhead
    if affinity:
        spec["affinity"] = affinity
    obj: dict[str, Any] = {"metadata": {"name": name, "namespace": "default"}, "spec": spec}
    if phase:
        obj["status"] = {"phase": phase}
    return codec.from_dict(obj, core_pb2.Pod)


def make_node(allocatable: dict[str, str] | None = None, images: list[dict[str, Any]] | None = None) -> Any:
    return codec.from_dict(
        {"metadata": {"name": "n1"}, "status": {"allocatable": allocatable or {}, "images": images or []}},
        core_pb2.Node,
    )


SIDECAR = "Always"


@pytest.mark.parametrize(
    ("pod", "want"),
    [
        pytest.param(make_pod(), Resource(), id="no containers"),
        pytest.param(
            make_pod(containers=[ctr({"cpu": "1", "memory": "1G"}, name="a"), ctr({"cpu": "500m"}, name="b")]),
            Resource(milli_cpu=1500, memory=10**9),
            id="containers are summed",
        ),
        pytest.param(
            # computePodResourceRequest's doc example: max(sum(containers), each init container)
            make_pod(
                containers=[ctr({"cpu": "2", "memory": "1G"}, name="c1"), ctr({"cpu": "1", "memory": "1G"}, name="c2")],
                init=[ctr({"cpu": "2", "memory": "1G"}, name="i1"), ctr({"cpu": "2", "memory": "3G"}, name="i2")],
            ),
            Resource(milli_cpu=3000, memory=3 * 10**9),
            id="init containers take the max",
        ),
        pytest.param(
            make_pod(containers=[ctr({"cpu": "1"})], init=[ctr({"cpu": "1"}, name="ri1", restart=SIDECAR)]),
            Resource(milli_cpu=2000),
            id="restartable init container",
        ),
        pytest.param(
            make_pod(
                containers=[ctr({"cpu": "1"})],
                init=[ctr({"cpu": "5"}, name="i1"), ctr({"cpu": "1"}, name="ri1", restart=SIDECAR),
                      ctr({"cpu": "2"}, name="ri2", restart=SIDECAR), ctr({"cpu": "3"}, name="ri3", restart=SIDECAR)],
            ),
            Resource(milli_cpu=7000),
            id="multiple restartable init containers",
        ),
        pytest.param(
            make_pod(
                containers=[ctr({"cpu": "1"})],
                init=[ctr({"cpu": "5"}, name="i1"), ctr({"cpu": "1"}, name="ri1", restart=SIDECAR),
                      ctr({"cpu": "2"}, name="ri2", restart=SIDECAR), ctr({"cpu": "5"}, name="i2"),
                      ctr({"cpu": "3"}, name="ri3", restart=SIDECAR)],
            ),
            Resource(milli_cpu=8000),
            id="multiple restartable and regular init containers",
        ),
        pytest.param(
            make_pod(
                containers=[ctr({"cpu": "100"})],
                init=[ctr({"cpu": "10"}, name="ri1", restart=SIDECAR), ctr({"cpu": "200"}, name="i1")],
            ),
            Resource(milli_cpu=210000),
            id="restartable-init, init and regular",
        ),
        pytest.param(
            make_pod(containers=[ctr({"cpu": "1m", "memory": "1"})], overhead={"cpu": "3m", "memory": "13"}),
            Resource(milli_cpu=4, memory=14),
            id="pod overhead is added",
        ),
        pytest.param(
            make_pod(containers=[ctr({"cpu": "0.5m"}, name="a"), ctr({"cpu": "0.5m"}, name="b")]),
            Resource(milli_cpu=1),
            id="quantities are summed exactly before rounding up",
        ),
        pytest.param(
            make_pod(containers=[ctr({"example.com/gpu": "2", "hugepages-2Mi": "4Mi", "ephemeral-storage": "1Ki",
                                      "kubernetes.io/something": "3", "unqualified": "9"})]),
            Resource(ephemeral_storage=1024, scalar={"example.com/gpu": 2, "hugepages-2Mi": 4 * MI,
                                                     "kubernetes.io/something": 3}),
            id="scalar resources kept, unknown native names dropped",
        ),
    ],
)
def test_pod_requests(pod: Any, want: Resource) -> None:
    """pod_requests follows PodRequests: sum of containers and sidecars, max with init containers, plus overhead."""
    assert pod_requests(pod) == want


@pytest.mark.parametrize(
    ("pod", "want_cpu", "want_mem"),
    [
        pytest.param(make_pod(), 0, 0, id="no containers request nothing"),
        pytest.param(make_pod(containers=[ctr()]), 100, 200 * MI, id="missing requests get defaults"),
        pytest.param(make_pod(containers=[ctr({"cpu": "0", "memory": "0"})]), 0, 0, id="explicit zero is kept"),
        pytest.param(make_pod(containers=[ctr({"cpu": "1"})]), 1000, 200 * MI, id="only the missing one defaults"),
        pytest.param(make_pod(containers=[ctr(name="a"), ctr(name="b")]), 200, 400 * MI, id="per container"),
        pytest.param(make_pod(containers=[ctr({"cpu": "50m", "memory": "10Mi"})], init=[ctr(name="i")]),
                     100, 200 * MI, id="init container defaults take the max"),
        pytest.param(make_pod(containers=[ctr()], overhead={"cpu": "10m"}), 110, 200 * MI, id="overhead added"),
    ],
)
def test_non_zero_requests(pod: Any, want_cpu: int, want_mem: int) -> None:
    """non_zero_requests substitutes 100m/200Mi for containers that set no cpu/memory request."""
    got = non_zero_requests(pod)
    assert (got.milli_cpu, got.memory) == (want_cpu, want_mem)


def test_new_pod_info() -> None:
    """new_pod_info computes both request variants once."""
    pi = new_pod_info(make_pod(containers=[ctr({"memory": "1Ki"})]))
    assert pi.requests == Resource(memory=1024)
    assert pi.non_zero_requests == Resource(milli_cpu=100, memory=1024)
    assert pi.key == "default/p"


def test_new_node_info_ported() -> None:
    """types_test.go TestNewNodeInfo: requests, non-zero requests and used ports of two pods."""
    pods = [
        make_pod("test-1", containers=[ctr({"cpu": "100m", "memory": "500"},
                                           ports=[{"hostIP": "127.0.0.1", "hostPort": 80, "protocol": "TCP"}])]),
        make_pod("test-2", containers=[ctr({"cpu": "200m", "memory": "1Ki"},
                                           ports=[{"hostIP": "127.0.0.1", "hostPort": 8080, "protocol": "TCP"}])]),
    ]
    ni = new_node_info(make_node({"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "10Gi",
                                  "example.com/gpu": "2"}), pods)
    assert ni.requested == Resource(milli_cpu=300, memory=1524)
    assert ni.non_zero_requested == Resource(milli_cpu=300, memory=1524)
    assert ni.used_ports == {("127.0.0.1", "TCP", 80), ("127.0.0.1", "TCP", 8080)}
    assert [p.key for p in ni.pods] == ["default/test-1", "default/test-2"]
    assert ni.allocatable == Resource(milli_cpu=4000, memory=8 * 1024**3, ephemeral_storage=10 * 1024**3,
                                      allowed_pod_number=110, scalar={"example.com/gpu": 2})
    assert ni.generation == 2


def test_new_node_info_images() -> None:
    """Every name of every node image is indexed by its canonical reference."""
    node = make_node(images=[{"names": ["docker.io/library/nginx:1.25", "nginx@sha256:abc"], "sizeBytes": 100},
                             {"names": ["gcr.io/40:latest"], "sizeBytes": 40}])
    ni = new_node_info(node)
    assert ni.image_sizes == {
        "docker.io/library/nginx:1.25": 100,
        "docker.io/library/nginx@sha256:abc": 100,
        "gcr.io/40:latest": 40,
    }


def test_terminal_pods_are_not_counted() -> None:
    """add_pod ignores Succeeded/Failed pods (returns False); new_node_info skips them."""
    running = make_pod("run", containers=[ctr({"cpu": "1"})], phase="Running")
    done = make_pod("done", containers=[ctr({"cpu": "1"}, ports=[{"containerPort": 80, "hostPort": 80}])],
                    phase="Succeeded")
    failed = make_pod("failed", containers=[ctr({"cpu": "1"})], phase="Failed")
    ni = new_node_info(make_node({"cpu": "4", "pods": "10"}), [running, done, failed])
    assert [p.key for p in ni.pods] == ["default/run"]
    assert ni.requested.milli_cpu == 1000
    assert ni.used_ports == set()
    assert add_pod(ni, new_pod_info(done)) is False
    assert ni.generation == 1


def test_add_and_remove_pod() -> None:
    """add_pod/remove_pod keep requests, ports, affinity lists and generation in step."""
    ni = new_node_info(make_node({"cpu": "4", "memory": "4Gi", "pods": "10"}))
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone"}]}}
    preferred = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "podAffinityTerm": {"topologyKey": "zone"}}]}}
    a = new_pod_info(make_pod("a", containers=[ctr({"cpu": "1"}, ports=[{"containerPort": 80, "hostPort": 8080}])],
                              affinity=anti))
    b = new_pod_info(make_pod("b", containers=[ctr({"memory": "1Gi"})], affinity=preferred))
    c = new_pod_info(make_pod("c", containers=[ctr({"cpu": "1"}, ports=[{"containerPort": 80}])]))
    for pi in (a, b, c):
        assert add_pod(ni, pi) is True
    assert ni.generation == 3
    assert ni.requested == Resource(milli_cpu=2000, memory=1024**3)
    assert ni.non_zero_requested == Resource(milli_cpu=2100, memory=1024**3 + 400 * MI)
    assert ni.used_ports == {("0.0.0.0", "TCP", 8080)}  # hostPort 0 is not a host port
    assert [p.key for p in ni.pods_with_affinity] == ["default/a", "default/b"]
    assert [p.key for p in ni.pods_with_required_anti_affinity] == ["default/a"]

    assert remove_pod(ni, "default/a") is True
    assert ni.generation == 4
    assert ni.requested == Resource(milli_cpu=1000, memory=1024**3)
    assert ni.non_zero_requested == Resource(milli_cpu=1100, memory=1024**3 + 200 * MI)
    assert ni.used_ports == set()
    assert [p.key for p in ni.pods_with_affinity] == ["default/b"]
    assert ni.pods_with_required_anti_affinity == []
    assert remove_pod(ni, "default/a") is False
    assert ni.generation == 4


def test_add_pod_replaces_same_key() -> None:
    """Re-adding a pod with the same namespace/name replaces it instead of counting it twice."""
    ni = new_node_info(make_node({"cpu": "4", "pods": "10"}))
    add_pod(ni, new_pod_info(make_pod("a", containers=[ctr({"cpu": "1"})])))
    add_pod(ni, new_pod_info(make_pod("a", containers=[ctr({"cpu": "2"})])))
    assert len(ni.pods) == 1
    assert ni.requested.milli_cpu == 2000


def test_remove_keeps_port_used_by_another_pod() -> None:
    """A host port bound by two pods (e.g. both bound via spec.nodeName) stays used until both go."""
    port = [{"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]
    ni = new_node_info(make_node({"pods": "10"}), [make_pod("a", containers=[ctr(ports=port)]),
                                                  make_pod("b", containers=[ctr(ports=port)])])
    remove_pod(ni, "default/a")
    assert ni.used_ports == {("0.0.0.0", "UDP", 53)}
    remove_pod(ni, "default/b")
    assert ni.used_ports == set()


def test_host_ports_include_sidecars_only() -> None:
    """GetHostPorts: regular containers and restartable init containers, not plain init containers."""
    pod = make_pod(
        containers=[ctr(ports=[{"containerPort": 1, "hostPort": 8001, "hostIP": "10.0.0.1", "protocol": "UDP"}])],
        init=[ctr(name="side", restart=SIDECAR, ports=[{"containerPort": 2, "hostPort": 8002}]),
              ctr(name="init", ports=[{"containerPort": 3, "hostPort": 8003}])],
    )
    assert sorted(host_ports(pod)) == [("0.0.0.0", "TCP", 8002), ("10.0.0.1", "UDP", 8001)]


def test_clone_is_independent() -> None:
    """A cloned NodeInfo does not see later add_pod calls on the original."""
    ni = new_node_info(make_node({"cpu": "4", "pods": "10"}))
    copy: NodeInfo = ni.clone()
    add_pod(ni, new_pod_info(make_pod("a", containers=[ctr({"cpu": "1"}, ports=[{"containerPort": 1, "hostPort": 9}])])))
    assert copy.pods == [] and copy.requested == Resource() and copy.used_ports == set()


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("root", "root:latest"),
        ("gcr.io:5000/root", "gcr.io:5000/root:latest"),
        ("root:tag", "root:tag"),
        ("root@sha256:4a5573037f358b6cdfa2f3e8a9c33a5cf11bcd1675ca72ca76fbe5bd77d0d682",
         "root@sha256:4a5573037f358b6cdfa2f3e8a9c33a5cf11bcd1675ca72ca76fbe5bd77d0d682"),
    ],
)
def test_normalized_image_name(name: str, want: str) -> None:
    """Upstream TestNormalizedImageName: append :latest only when there is no tag."""
    assert normalized_image_name(name) == want


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("library/nginx", "docker.io/library/nginx:latest"),
        ("docker.io/library/nginx:latest", "docker.io/library/nginx:latest"),
        ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
        ("user/repo:v1", "docker.io/user/repo:v1"),
        ("gcr.io/40", "gcr.io/40:latest"),
        ("gcr.io:5000/root", "gcr.io:5000/root:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/a/b:v2", "localhost:5000/a/b:v2"),
        ("nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"),
    ],
)
def test_image_key(name: str, want: str) -> None:
    """image_key canonicalises Docker references so short and fully qualified names match."""
    assert image_key(name) == want


def test_pod_infos_of_one_shape_share_the_arithmetic_but_not_the_objects() -> None:
    """new_pod_info computes requests once per resource shape; each PodInfo gets its own copies,
    and a pod differing in any resource field (a sidecar flag, the overhead) gets its own answer."""
    shape = {"containers": [ctr({"cpu": "100m", "memory": "64Mi"})],
             "init": [ctr({"cpu": "1"}, name="i", restart="Always")]}
    a, b = new_pod_info(make_pod("a", **shape)), new_pod_info(make_pod("b", **shape))
    assert a.requests == b.requests == pod_requests(make_pod("a", **shape))
    assert a.requests is not b.requests and a.non_zero_requests is not b.non_zero_requests
    plain_init = new_pod_info(make_pod("c", containers=shape["containers"], init=[ctr({"cpu": "1"}, name="i")]))
    assert plain_init.requests.milli_cpu == 1000 != a.requests.milli_cpu
    with_overhead = new_pod_info(make_pod("d", overhead={"cpu": "5m"}, **shape))
    assert with_overhead.requests.milli_cpu == a.requests.milli_cpu + 5
