"""pods/log, exec and attach end to end: the Client -> a real apiserver (real etcd) -> the kubelet's
StreamingServer (in this process) -> real subprocesses and real CRI log files (tests/streaming_double.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from streaming_double import Kubelet, create_node, kubelet

from kplane.api import errors as api
from kplane.api.resources import resolve
from kplane.devcluster import free_port

DEADLINE = 30.0


@pytest.fixture
async def kl(client: Any, tmp_path: Path) -> AsyncIterator[Kubelet]:
    async with kubelet(client, tmp_path) as k:
        yield k


async def read_logs(client: Any, namespace: str, name: str, **kwargs: Any) -> bytes:
    out = b""
    async with asyncio.timeout(DEADLINE):
        async for chunk in client.logs(namespace, name, **kwargs):
            out += chunk
    return out


async def wait_exited(kl: Kubelet, cid: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while (await kl.runtime.container_status(cid)).state != "exited":
        assert time.monotonic() < deadline, "the container did not exit"
        await asyncio.sleep(0.05)


async def test_logs_whole_tail_timestamps_and_limit(client: Any, namespace: str, kl: Kubelet) -> None:
    """A container's log comes back whole, as its last N lines, with CRI timestamps, or cut at limitBytes."""
    pod = await kl.add_pod(client, namespace, "web", ["web"])
    info = await kl.runtime.run("web", "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2")
    pod.attempts["web"] = [info]
    await wait_exited(kl, info.id)
    assert await read_logs(client, namespace, "web") == b"line1\nline2\nline3\nline4\nline5\noops\n"
    assert await read_logs(client, namespace, "web", tail_lines=2) == b"line5\noops\n"
    assert await read_logs(client, namespace, "web", tail_lines=0) == b""
    assert await read_logs(client, namespace, "web", limit_bytes=8) == b"line1\nli"
    stamped = (await read_logs(client, namespace, "web", tail_lines=1, timestamps=True)).decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z oops\n", stamped), stamped


async def test_raw_log_files_are_served_as_written(client: Any, namespace: str, kl: Kubelet) -> None:
    """A runtime that writes the process's raw output (not CRI lines) is served byte for byte."""
    pod = await kl.add_pod(client, namespace, "raw", ["app"])
    pod.attempts["app"] = [kl.runtime.exited("app", b"plain 1\nplain 2\nno newline", 0, raw=True)]
    assert await read_logs(client, namespace, "raw") == b"plain 1\nplain 2\nno newline"
    assert await read_logs(client, namespace, "raw", tail_lines=1) == b"no newline"


async def test_follow_streams_until_the_container_exits(client: Any, namespace: str, kl: Kubelet) -> None:
    """`follow` delivers lines as they are written and ends by itself when the container exits."""
    pod = await kl.add_pod(client, namespace, "ticker", ["t"])
    info = await kl.runtime.run("t", "echo start; read go; for i in 1 2 3; do echo tick$i; sleep 0.2; done",
                                stdin=True)
    pod.attempts["t"] = [info]
    got = b""
    async with asyncio.timeout(DEADLINE):
        stream = client.logs(namespace, "ticker", follow=True)
        async for chunk in stream:
            got += chunk
            if got == b"start\n":
                # the first line arrived while the container still runs; now let it finish
                stdin = kl.runtime.containers[info.id].proc.stdin  # type: ignore[union-attr]
                stdin.write(b"go\n")  # type: ignore[union-attr]
                await stdin.drain()  # type: ignore[union-attr]
    assert got == b"start\ntick1\ntick2\ntick3\n"
    assert (await kl.runtime.container_status(info.id)).state == "exited"


async def test_previous_attempt_and_its_absence(client: Any, namespace: str, kl: Kubelet) -> None:
    """--previous reads the attempt before the current one; with none, Kubernetes' BadRequest."""
    pod = await kl.add_pod(client, namespace, "crashy", ["app"])
    pod.attempts["app"] = [kl.runtime.exited("app", b"first run\ncrashed", 1)]
    with pytest.raises(api.BadRequest, match='previous terminated container "app" in pod "crashy" not found'):
        await read_logs(client, namespace, "crashy", previous=True)
    pod.attempts["app"].append(kl.runtime.exited("app", b"second run", 0, attempt=1))
    assert await read_logs(client, namespace, "crashy", previous=True) == b"first run\ncrashed\n"
    assert await read_logs(client, namespace, "crashy") == b"second run\n"


async def test_container_choice_errors(client: Any, namespace: str, kl: Kubelet) -> None:
    """No container named in a multi-container pod, an unknown name, and a container still waiting
    are BadRequests with Kubernetes' wording; a missing pod is NotFound."""
    pod = await kl.add_pod(client, namespace, "web", ["a", "b"], ["setup"])
    with pytest.raises(api.BadRequest) as exc:
        await read_logs(client, namespace, "web")
    assert exc.value.message == ("a container name must be specified for pod web, choose one of: [a b] or one of "
                                 "the init containers: [setup]")
    with pytest.raises(api.BadRequest, match=r"^container c is not valid for pod web$"):
        await read_logs(client, namespace, "web", container="c")
    pod.waiting["b"] = "ContainerCreating"
    with pytest.raises(api.BadRequest, match=r'^container "b" in pod "web" is waiting to start: ContainerCreating$'):
        await read_logs(client, namespace, "web", container="b")
    with pytest.raises(api.BadRequest, match="waiting to start"):
        await client.exec(namespace, "web", ["true"], container="b")
    with pytest.raises(api.NotFound, match=r'^pods "nope" not found$'):
        await read_logs(client, namespace, "nope")
    with pytest.raises(api.NotFound, match=r'^pods "nope" not found$'):
        await client.exec(namespace, "nope", ["true"])


async def test_exec_output_exit_codes_and_stdin(client: Any, namespace: str, kl: Kubelet) -> None:
    """exec separates stdout from stderr, returns the command's exit code, and forwards stdin to EOF."""
    pod = await kl.add_pod(client, namespace, "box", ["box"])
    pod.attempts["box"] = [await kl.runtime.run("box", "exec sleep 60")]

    async with await client.exec(namespace, "box", ["sh", "-c", "echo out; echo err >&2; exit 3"]) as session:
        streams: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        async for stream, data in session.output():
            streams[stream] += data
        assert streams == {"stdout": b"out\n", "stderr": b"err\n"}
        assert session.exit_code == 3

    async with await client.exec(namespace, "box", ["true"]) as session:
        assert await session.wait() == 0

    async with await client.exec(namespace, "box", ["sh", "-c", "tr a-z A-Z; echo done"], stdin=True) as session:
        await session.write_stdin(b"hello ")
        await session.write_stdin(b"world\n")
        await session.close_stdin()
        out = b"".join([data async for _, data in session.output()])
        assert out == b"HELLO WORLD\ndone\n"
        assert session.exit_code == 0

    with pytest.raises(api.BadRequest, match="you must specify at least one command"):
        await client.exec(namespace, "box", [])


async def test_closing_an_exec_session_ends_the_command(client: Any, namespace: str, kl: Kubelet) -> None:
    """When the caller goes away mid-command, the kubelet kills what it started."""
    pod = await kl.add_pod(client, namespace, "box", ["box"])
    pod.attempts["box"] = [await kl.runtime.run("box", "exec sleep 60")]
    session = await client.exec(namespace, "box", ["sh", "-c", "echo $$; exec sleep 60"])
    first = b""
    async for _, data in session.output():
        first += data
        if first.endswith(b"\n"):
            break
    pid = int(first)
    await session.close()
    deadline = time.monotonic() + DEADLINE
    while _alive(pid):
        assert time.monotonic() < deadline, "the exec'd command outlived its session"
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split(") ")[1].split()[0] != "Z"


async def test_attach_to_the_container_stdin_and_output(client: Any, namespace: str, kl: Kubelet) -> None:
    """attach writes to the container's own stdin and reads its live output; the session ends with
    the container, carrying its exit code."""
    pod = await kl.add_pod(client, namespace, "echo", ["echo"], stdin=True)
    info = await kl.runtime.run("echo", "while read l; do echo got $l; done; echo bye; exit 4", stdin=True)
    pod.attempts["echo"] = [info]
    session = await client.attach(namespace, "echo", stdin=True)
    async with session:
        await session.write_stdin(b"one\n")
        out = b""
        async with asyncio.timeout(DEADLINE):
            async for _, data in session.output():
                out += data
                if out == b"got one\n":
                    await session.write_stdin(b"two\n")
                    await session.close_stdin()
        assert out == b"got one\ngot two\nbye\n"
        assert session.exit_code == 4
    # everything attach saw is in the container's log too
    assert await read_logs(client, namespace, "echo") == b"got one\ngot two\nbye\n"


async def test_a_pod_without_a_node(client: Any, namespace: str) -> None:
    """A pod the scheduler has not bound has no kubelet to ask: Kubernetes' BadRequest."""
    await client.create(resolve("pods"), {"apiVersion": "v1", "kind": "Pod",
                                          "metadata": {"name": "pending", "namespace": namespace},
                                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    with pytest.raises(api.BadRequest, match=r"^pod pending does not have a host assigned$"):
        await read_logs(client, namespace, "pending")
    with pytest.raises(api.BadRequest, match=r"^pod pending does not have a host assigned$"):
        await client.exec(namespace, "pending", ["true"])


async def _pod_on(client: Any, namespace: str, node: str) -> None:
    await client.create(resolve("pods"), {"apiVersion": "v1", "kind": "Pod",
                                          "metadata": {"name": "p", "namespace": namespace},
                                          "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}})


async def test_a_node_without_a_kubelet_endpoint(client: Any, namespace: str) -> None:
    """A Node that publishes no kubelet port (no kubelet registered it): Unavailable, naming the node."""
    node = f"bare-{uuid.uuid4().hex[:8]}"
    await create_node(client, node, port=None)
    await _pod_on(client, namespace, node)
    with pytest.raises(api.Unavailable, match=f'node "{node}" publishes no kubelet endpoint'):
        await read_logs(client, namespace, "p")


async def test_an_unreachable_kubelet(client: Any, namespace: str) -> None:
    """A kubelet endpoint nobody listens on: Unavailable, naming the node and the address."""
    node = f"gone-{uuid.uuid4().hex[:8]}"
    port = free_port()
    await create_node(client, node, port=port)
    await _pod_on(client, namespace, node)
    with pytest.raises(api.Unavailable, match=f'kubelet of node "{node}" at 127.0.0.1:{port} is unreachable'):
        await read_logs(client, namespace, "p")
    with pytest.raises(api.Unavailable, match=f'kubelet of node "{node}"'):
        await client.exec(namespace, "p", ["true"])


async def test_a_kubelet_off_loopback_is_never_dialled(client: Any, namespace: str) -> None:
    """The apiserver only connects to loopback addresses, whatever a Node object says."""
    node = f"far-{uuid.uuid4().hex[:8]}"
    await create_node(client, node, address="192.0.2.10", port=10250)
    await _pod_on(client, namespace, node)
    with pytest.raises(api.Forbidden, match="only connects to loopback addresses"):
        await read_logs(client, namespace, "p")


async def test_a_restarted_kubelet_is_reachable_again(client: Any, namespace: str, tmp_path: Path) -> None:
    """The apiserver's cached channel to a kubelet recovers when the kubelet comes back on its port."""
    async with kubelet(client, tmp_path) as kl:
        pod = await kl.add_pod(client, namespace, "web", ["web"])
        pod.attempts["web"] = [kl.runtime.exited("web", b"hello", 0)]
        assert await read_logs(client, namespace, "web") == b"hello\n"
        port = kl.server.port
        await kl.server.stop(0)
        with pytest.raises(api.Unavailable):
            await read_logs(client, namespace, "web")
        kl.server.port = port
        await kl.server.start()
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                assert await read_logs(client, namespace, "web") == b"hello\n"
                break
            except api.Unavailable:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)


async def test_a_kubelet_never_answers_for_another_pod_of_the_same_name(client: Any, namespace: str,
                                                                        kl: Kubelet) -> None:
    """The apiserver sends the UID it saw: a kubelet still running an older pod of that name says NotFound."""
    pod = await kl.add_pod(client, namespace, "web", ["web"])
    pod.attempts["web"] = [kl.runtime.exited("web", b"old pod", 0)]
    assert await read_logs(client, namespace, "web") == b"old pod\n"
    pod.uid = "uid-of-the-deleted-pod"
    with pytest.raises(api.NotFound, match=r'^pods "web" not found$'):
        await read_logs(client, namespace, "web")
