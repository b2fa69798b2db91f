"""kplane: a Kubernetes-style control plane in Python that people can read, run and break."""

__version__ = "0.1.0"
