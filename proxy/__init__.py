"""kplane's node proxy (kube-proxy's job in userspace): ``python -m proxy``.

:mod:`proxy.table` turns Services and Endpoints into routes, :mod:`proxy.forwarder` listens
(``SO_REUSEPORT``) and forwards TCP connections, :mod:`proxy.proxier` keeps the two in step with
the apiserver through informers.
"""

from proxy.forwarder import Balancer, Forwarder
from proxy.proxier import Proxier
from proxy.table import Endpoint, Route, Table, build_table

__all__ = ["Balancer", "Endpoint", "Forwarder", "Proxier", "Route", "Table", "build_table"]
