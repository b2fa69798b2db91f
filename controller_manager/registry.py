"""Which controllers exist, and how ``--controllers`` chooses among them.

Each entry names a module with ``new(ctx) -> Controller | list[Controller]``; modules are
imported only when their controller is enabled. ``--controllers`` reads like Kubernetes':
``*`` (every controller), ``name`` (add), ``-name`` (remove), comma separated, e.g.
``*,-cronjob`` or ``replicaset,deployment``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

CONTROLLERS: dict[str, str] = {
    "replicaset": "controller_manager.replicaset:new_replicaset",
    "replicationcontroller": "controller_manager.replicaset:new_replicationcontroller",
    "deployment": "controller_manager.deployment:new",
    "daemonset": "controller_manager.daemonset:new",
    "job": "controller_manager.job:new",
    "cronjob": "controller_manager.cronjob:new",
    "garbagecollector": "controller_manager.garbagecollector:new",
    "namespace": "controller_manager.namespace:new",
    "nodelifecycle": "controller_manager.nodelifecycle:new",
    "endpoints": "controller_manager.endpoints:new",
    "disruption": "controller_manager.disruption:new",
}


class ControllersError(ValueError):
    pass


def select(spec: str) -> list[str]:
    """The enabled controllers for a ``--controllers`` value, in registry order."""
    enabled: set[str] = set()
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        if item == "*":
            enabled |= set(CONTROLLERS)
            continue
        name = item[1:] if item.startswith("-") else item
        if name not in CONTROLLERS:
            known = ", ".join(sorted(CONTROLLERS))
            raise ControllersError(f'unknown controller "{name}" (known: {known})')
        if item.startswith("-"):
            enabled.discard(name)
        else:
            enabled.add(name)
    return [name for name in CONTROLLERS if name in enabled]


def builder(name: str) -> Callable[[Any], Any]:
    module, _, func = CONTROLLERS[name].partition(":")
    return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]
