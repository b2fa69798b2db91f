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
