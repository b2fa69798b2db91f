"""What a cluster is made of: component specs, their health checks, and their start order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from kplane.cluster.ports import LOOPBACK

HealthKind = Literal["etcd", "grpc", "http", "alive"]


@dataclass(frozen=True)
class HealthCheck:
    """How to tell that a component is ready.

    - ``etcd``: GET /health on ``host:port`` answers ``{"health": "true"}``;
    - ``grpc``: ``grpc.health.v1.Health/Check`` for ``service`` on ``host:port`` answers SERVING;
    - ``http``: GET ``path`` on ``host:port`` answers 2xx;
    - ``alive``: the process is still running ``settle`` seconds after it started.
    """

    kind: HealthKind = "alive"
    host: str = LOOPBACK
    port: int = 0
    path: str = "/healthz"
    service: str = ""
    settle: float = 1.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.port else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "host": self.host,
            "port": self.port,
            "path": self.path,
            "service": self.service,
            "settle": self.settle,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HealthCheck:
        return cls(
            kind=d.get("kind", "alive"),
            host=str(d.get("host", LOOPBACK)),
            port=int(d.get("port", 0)),
            path=str(d.get("path", "/healthz")),
            service=str(d.get("service", "")),
            settle=float(d.get("settle", 1.0)),
        )


ALIVE = HealthCheck()


@dataclass
class ComponentSpec:
    """One OS process of the cluster (or an external server that is only probed)."""

    name: str
    argv: list[str]
    health: HealthCheck = ALIVE
    depends_on: tuple[str, ...] = ()
    env: dict[str, str] | None = None  # None: inherit the launcher's environment
    address: str = ""  # what `kplane status` shows, e.g. http://127.0.0.1:2379 or 127.0.0.1:6443
    console_level: str = "info"  # lines below this level go to the log file only
    external: bool = False  # not started by us (etcd via --etcd-servers): probed, never signalled
    stop_timeout: float = 10.0  # SIGTERM, then SIGKILL after this many seconds
    extra: dict[str, Any] = field(default_factory=dict)


class SpecError(ValueError):
    """The component list is inconsistent (duplicate names, unknown dependencies, a cycle)."""


def order_components(specs: Iterable[ComponentSpec]) -> list[ComponentSpec]:
    """Dependencies first; otherwise the given order (a stable topological sort)."""
    items = list(specs)
    by_name: dict[str, ComponentSpec] = {}
    for s in items:
        if s.name in by_name:
            raise SpecError(f"two components are called {s.name!r}")
        by_name[s.name] = s
    for s in items:
        for d in s.depends_on:
            if d not in by_name:
                raise SpecError(f"component {s.name!r} depends on unknown component {d!r}")
    done: set[str] = set()
    out: list[ComponentSpec] = []
    pending = list(items)
    while pending:
        for i, s in enumerate(pending):
            if all(d in done for d in s.depends_on):
                out.append(s)
                done.add(s.name)
                del pending[i]
                break
        else:
            names = ", ".join(s.name for s in pending)
            raise SpecError(f"dependency cycle among components: {names}")
    return out


# ------------------------------------------------------------------------------------ profiles


@dataclass(frozen=True)
class Profile:
    """Timing flags `kplane up --profile NAME` adds to each component's command line.

    ``default`` passes nothing: every component keeps its Kubernetes-like defaults (node lease
    renewed every 10 s, a node declared lost 50 s after its last heartbeat, pods tolerating an
    unreachable node for 300 s). ``fast`` shrinks the node-loss pipeline to seconds so chaos
    scenarios finish in well under a minute: heartbeats every second, a node is lost after 5 s of
    silence, its pods are evicted 5 s later, and leader elections hand over within a few seconds.
    """

    name: str
    summary: str
    node_monitor_grace: float  # seconds without a heartbeat before a node is NotReady/Unknown
    toleration: float  # seconds pods tolerate a not-ready/unreachable node before eviction
    heartbeat: float  # the kubelet's lease renew interval
    apiserver: tuple[str, ...] = ()
    controller_manager: tuple[str, ...] = ()
    scheduler: tuple[str, ...] = ()
    kubelet: tuple[str, ...] = ()

    def args_for(self, component: str) -> list[str]:
        return list(getattr(self, component.replace("-", "_"), ()))


_FAST_ELECTION = ("--leader-elect-lease-duration", "6s", "--leader-elect-renew-deadline", "4s",
                  "--leader-elect-retry-period", "1s")

PROFILES: dict[str, Profile] = {
    "default": Profile("default", "Kubernetes-like timings (grace 50s, toleration 300s, leases 10s)",
                       node_monitor_grace=50.0, toleration=300.0, heartbeat=10.0),
    "fast": Profile(
        "fast",
        "node loss in seconds (heartbeats 1s, grace 5s, toleration 5s, leader hand-over ~7s)",
        node_monitor_grace=5.0, toleration=5.0, heartbeat=1.0,
        apiserver=("--default-not-ready-toleration-seconds", "5", "--default-unreachable-toleration-seconds", "5"),
        controller_manager=("--node-monitor-period", "1s", "--node-monitor-grace-period", "5s",
                            "--node-startup-grace-period", "10s", *_FAST_ELECTION),
        scheduler=_FAST_ELECTION,
        kubelet=("--node-lease-duration", "5s", "--node-lease-renew-interval", "1s",
                 "--node-status-update-frequency", "1s"),
    ),
}
