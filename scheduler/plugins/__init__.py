"""Scheduler plugins: one module per plugin, each with a NAME, a `new(args, handle)` factory and
only the extension points it needs (see scheduler/framework.py). `REGISTRY` maps names to
factories; plugin modules register themselves by being listed here."""

from __future__ import annotations

import importlib

from scheduler.framework import PluginFactory

# plugin NAME -> module path; a module exposes NAME and new(args, handle)
_MODULES = {
    "NodeName": "scheduler.plugins.node_name",
    "NodeUnschedulable": "scheduler.plugins.node_unschedulable",
    "NodeAffinity": "scheduler.plugins.node_affinity",
    "TaintToleration": "scheduler.plugins.taint_toleration",
    "NodeResourcesFit": "scheduler.plugins.node_resources_fit",
    "NodeResourcesBalancedAllocation": "scheduler.plugins.balanced_allocation",
    "NodePorts": "scheduler.plugins.node_ports",
    "ImageLocality": "scheduler.plugins.image_locality",
    "InterPodAffinity": "scheduler.plugins.inter_pod_affinity",
    "PodTopologySpread": "scheduler.plugins.pod_topology_spread",
}


def factory(name: str) -> PluginFactory:
    """The factory of a registered plugin (KeyError names the known plugins)."""
    try:
        module = importlib.import_module(_MODULES[name])
    except KeyError:
        raise KeyError(f"unknown scheduler plugin {name!r}; known: {', '.join(sorted(_MODULES))}") from None
    return module.new  # type: ignore[no-any-return]


def names() -> list[str]:
    return sorted(_MODULES)
