"""Pod IP allocation from a node's pod CIDR, shared by the process and fake runtimes.

Every sandbox gets one address. The network address, the first host address (``.1``, the
"gateway" by convention) and the broadcast address are never handed out. Allocation walks forward
from the last address handed out (round robin), so an address freed by a deleted pod is not
reused at once: a stale client still talking to the old pod's IP reaches nothing instead of a new
pod. The allocator itself is in memory; a runtime persists allocations by recording each
sandbox's IP with the sandbox and :meth:`PodIPAllocator.reserve`-ing them again on restart.

Cheap on purpose: the fake runtime runs one allocator per simulated node, 100s per process.
"""

from __future__ import annotations

import ipaddress

from kubelet.runtime import RuntimeFailure


class PodIPAllocator:
    def __init__(self, cidr: str) -> None:
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            raise ValueError(f"invalid pod CIDR {cidr!r}: {exc}") from None
        if not isinstance(net, ipaddress.IPv4Network):
            raise ValueError(f"invalid pod CIDR {cidr!r}: only IPv4 is supported")
        if net.prefixlen > 30:
            raise ValueError(f"invalid pod CIDR {cidr!r}: too small (need at least a /30)")
        self.cidr = net
        self._base = int(net.network_address)
        self._first = 2  # skip the network address and .1
        self._last = net.num_addresses - 2  # skip broadcast
        self._next = self._first
        self._used: set[int] = set()

    @property
    def capacity(self) -> int:
        return self._last - self._first + 1

    def __len__(self) -> int:
        return len(self._used)

    def _offset(self, ip: str) -> int:
        addr = ipaddress.IPv4Address(ip)
        if addr not in self.cidr:
            raise ValueError(f"{ip} is not in the pod CIDR {self.cidr}")
        return int(addr) - self._base

    def allocate(self) -> str:
        """The next free address; raises :class:`RuntimeFailure` when the CIDR is exhausted."""
        span = self.capacity
        for i in range(span):
            off = self._first + (self._next - self._first + i) % span
            if off not in self._used:
                self._used.add(off)
                self._next = self._first + (off - self._first + 1) % span
                return str(ipaddress.IPv4Address(self._base + off))
        raise RuntimeFailure("IPExhausted", f"no free pod IP left in {self.cidr} ({span} in use)")

    def reserve(self, ip: str) -> None:
        """Mark ``ip`` as in use (re-adopting a persisted sandbox). Reserving twice is fine."""
        self._used.add(self._offset(ip))

    def release(self, ip: str) -> None:
        """Free ``ip``; releasing an address that is not allocated does nothing."""
        try:
            self._used.discard(self._offset(ip))
        except ValueError:
            pass

    def in_use(self, ip: str) -> bool:
        try:
            return self._offset(ip) in self._used
        except ValueError:
            return False
