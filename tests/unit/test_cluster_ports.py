"""Port checks on 127.0.0.1: free, taken (and by whom), asked for twice."""

from __future__ import annotations

import os
import socket

from kplane.cluster.ports import PortRequest, check_ports, free_ports, port_holder, port_is_free


def listen() -> socket.socket:
    """A socket listening on an ephemeral loopback port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def test_listening_port_is_not_free_until_closed() -> None:
    """A port with a listener is taken; once closed it is free again."""
    s = listen()
    port = s.getsockname()[1]
    assert not port_is_free(port)
    s.close()
    assert port_is_free(port)


def test_taken_port_message_names_holder_and_flag() -> None:
    """The error names the port, the process holding it and the flag that moves it."""
    with listen() as s:
        port = s.getsockname()[1]
        holder = port_holder(port)
        assert holder is not None and holder.startswith(f"pid {os.getpid()} ")
        errors = check_ports([PortRequest(port, "apiserver", "--port")])
    assert len(errors) == 1
    msg = errors[0]
    assert msg.startswith(f"port {port} on 127.0.0.1 is in use (pid {os.getpid()} ")
    assert "is another cluster running? use --port or `kplane down`" in msg


def test_free_ports_pass_and_zero_is_ignored() -> None:
    """Free ports and port 0 (ephemeral) give no errors."""
    a, b = free_ports(2)
    assert a != b
    assert check_ports([PortRequest(a, "etcd client URL", "--etcd-port"), PortRequest(0, "x", "--x")]) == []


def test_port_asked_for_twice() -> None:
    """Two components configured onto one port is reported before anything starts."""
    (p,) = free_ports(1)
    errors = check_ports(
        [PortRequest(p, "etcd client URL", "--etcd-port"), PortRequest(p, "apiserver", "--port")]
    )
    assert errors == [f"port {p} is asked for twice: etcd client URL (--etcd-port) and apiserver (--port)"]
