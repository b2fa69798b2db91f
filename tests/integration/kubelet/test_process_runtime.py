"""The process runtime with real bubblewrap containers (no etcd needed).

Every test gets its own runtime root and pod CIDR (distinct per xdist worker too), and a fixture
stops every container the root knows about afterwards, whatever the test did. Servers listen on
their pod IPs only.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from kubelet.images import Image, ImageStore, container_argv, container_env, container_working_dir
from kubelet.runtime import (
    ContainerConfig,
    ContainerInfo,
    ExecProcess,
    Mount,
    RuntimeFailure,
    SandboxConfig,
    SandboxInfo,
    StartError,
)
from kubelet.runtime.process import ProcessRuntime

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="needs root on Linux"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (deploy/ensure-bwrap.sh)"),
    pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs util-linux nsenter"),
]

DEADLINE = 30.0
_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % 20
_cidrs = itertools.count(1)


def next_cidr() -> str:
    return f"127.{230 + _worker}.{next(_cidrs) % 250}.0/24"


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "runtime"


@pytest.fixture
async def runtime(root: Path) -> AsyncIterator[ProcessRuntime]:
    cidr = next_cidr()
    rt = ProcessRuntime(root, cidr)
    yield rt
    await rt.close()
    # a fresh instance sees every container on this root, including other instances' ones
    cleanup = ProcessRuntime(root, cidr)
    for c in await cleanup.list_containers():
        await cleanup.stop_container(c.id, 0)
    await cleanup.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    store = ImageStore(tmp_path_factory.mktemp("node"))
    for ref in ("busybox", "myapp:v1", "nginx", "pause"):
        store.pull(ref)
    return store


def config(
    image: Image,
    name: str,
    command: list[str] | None = None,
    *,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    mounts: list[Mount] | None = None,
    attempt: int = 0,
    stdin: bool = False,
    stdin_once: bool = False,
    working_dir: str | None = None,
) -> ContainerConfig:
    return ContainerConfig(
        name=name,
        attempt=attempt,
        image=image.ref.familiar,
        image_id=image.id,
        image_root=image.root,
        argv=container_argv(image, command, args),
        env=container_env(image, env or {}),
        working_dir=container_working_dir(image, working_dir),
        mounts=mounts or [],
        stdin=stdin,
        stdin_once=stdin_once,
    )


async def sandbox(rt: ProcessRuntime, name: str = "pod") -> SandboxInfo:
    return await rt.run_pod_sandbox(SandboxConfig(pod_uid=f"uid-{name}", namespace="default", name=name))


async def run(rt: ProcessRuntime, sb: SandboxInfo, cfg: ContainerConfig) -> ContainerInfo:
    created = await rt.create_container(sb.id, cfg)
    assert created.state == "created"
    return await rt.start_container(created.id)


async def wait_exited(rt: ProcessRuntime, cid: str) -> ContainerInfo:
    async def exited() -> bool:
        return (await rt.container_status(cid)).state == "exited"

    await eventually(exited, f"container {cid} to exit")
    return await rt.container_status(cid)


async def wait_log(rt: ProcessRuntime, cid: str, text: str) -> str:
    path = rt.log_path(cid)
    assert path is not None

    async def has() -> bool:
        return path.exists() and text in path.read_text(errors="replace")

    await eventually(has, f"{text!r} in the log of {cid}")
    return path.read_text(errors="replace")


async def read_until(session: ExecProcess, text: bytes) -> bytes:
    got = b""

    async def pump() -> None:
        nonlocal got
        async for _stream, chunk in session.output():
            got += chunk
            if text in got:
                return

    await asyncio.wait_for(pump(), DEADLINE)
    return got


def http_get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    with opener.open(url, timeout=5) as resp:
        return resp.status, resp.read().decode()


async def http_eventually(url: str) -> tuple[int, str]:
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return await asyncio.to_thread(http_get, url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


# -- running, logs, exit codes ---------------------------------------------------------------------


async def test_busybox_runs_and_logs(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    sb = await sandbox(runtime)
    assert sb.ip.startswith("127.") and sb.state == "ready"
    info = await run(runtime, sb, config(busybox, "main", ["sh", "-c", "echo hi; sleep 60"]))
    assert info.state == "running"
    assert info.pid is not None and info.started_at is not None
    log = await wait_log(runtime, info.id, "hi")
    assert log == "hi\n"
    assert runtime.log_path(info.id) == sb.directory / "main" / "0.log"
    [listed] = await runtime.list_containers(sb.id)
    assert listed.id == info.id and listed.state == "running"


async def test_exit_codes(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    sb = await sandbox(runtime)
    ok = await run(runtime, sb, config(busybox, "ok", ["sh", "-c", "echo done"]))
    bad = await run(runtime, sb, config(busybox, "bad", ["sh", "-c", "exit 3"]))
    ok_info = await wait_exited(runtime, ok.id)
    assert (ok_info.exit_code, ok_info.reason) == (0, "Completed")
    assert ok_info.started_at is not None and ok_info.finished_at is not None
    assert ok_info.finished_at >= ok_info.started_at - 1
    bad_info = await wait_exited(runtime, bad.id)
    assert (bad_info.exit_code, bad_info.reason) == (3, "Error")


async def test_start_error_for_missing_command(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    sb = await sandbox(runtime)
    created = await runtime.create_container(sb.id, config(busybox, "main", ["nosuchcmd", "x"]))
    with pytest.raises(StartError) as err:
        await runtime.start_container(created.id)
    message = 'exec: "nosuchcmd": executable file not found in $PATH'
    assert err.value.reason == "StartError" and err.value.message == message
    info = await runtime.container_status(created.id)
    assert (info.state, info.exit_code, info.reason, info.message) == ("exited", 128, "StartError", message)
    created = await runtime.create_container(sb.id, config(busybox, "abs", ["/no/such/bin"]))
    with pytest.raises(
        StartError, match='exec: "/no/such/bin": stat /no/such/bin: no such file or directory'
    ):
        await runtime.start_container(created.id)


async def test_logs_per_attempt(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    sb = await sandbox(runtime)
    first = await run(runtime, sb, config(busybox, "c", ["sh", "-c", "echo first; echo err >&2"]))
    await wait_exited(runtime, first.id)
    second = await run(runtime, sb, config(busybox, "c", ["sh", "-c", "echo second"], attempt=1))
    await wait_exited(runtime, second.id)
    assert runtime.log_path(first.id) == sb.directory / "c" / "0.log"
    assert (sb.directory / "c" / "0.log").read_text() == "first\nerr\n"
    assert (sb.directory / "c" / "1.log").read_text() == "second\n"
    await runtime.remove_container(first.id)
    assert not (sb.directory / "c" / "0.log").exists()


# -- the container's view --------------------------------------------------------------------------


async def test_two_containers_share_a_volume(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    sb = await sandbox(runtime)
    volume = sb.directory / "volumes" / "shared"
    volume.mkdir(parents=True)
    mounts = [Mount(volume, "/data")]
    writer = config(busybox, "writer", ["sh", "-c", "echo hello > /data/msg; sleep 60"], mounts=mounts)
    reader = config(
        busybox,
        "reader",
        ["sh", "-c", "while [ ! -f /data/msg ]; do sleep 0.1; done; cat /data/msg; sleep 60"],
        mounts=mounts,
    )
    r = await run(runtime, sb, reader)
    await run(runtime, sb, writer)
    await wait_log(runtime, r.id, "hello")
    assert (volume / "msg").read_text() == "hello\n"


async def test_image_files_and_mounts_in_exec(
    runtime: ProcessRuntime, images: ImageStore, tmp_path: Path
) -> None:
    nginx = images.get("nginx")
    assert nginx is not None
    sb = await sandbox(runtime)
    conf = tmp_path / "app.conf"
    conf.write_text("setting=1\n")
    cfg = config(
        nginx,
        "web",
        env={"POD_IP": sb.ip},
        mounts=[Mount(conf, "/etc/app/app.conf", read_only=True)],
    )
    on_host_before = [Path(p).exists() for p in ("/usr/share/nginx", "/etc/app", "/opt/nginx")]
    info = await run(runtime, sb, cfg)
    listing = await runtime.exec_sync(info.id, ["ls", "/usr/share/nginx/html"], DEADLINE)
    assert listing.exit_code == 0 and b"index.html" in listing.output.split()
    index = await runtime.exec_sync(info.id, ["cat", "/usr/share/nginx/html/index.html"], DEADLINE)
    assert b"Welcome to nginx!" in index.output
    mounted = await runtime.exec_sync(info.id, ["cat", "/etc/app/app.conf"], DEADLINE)
    assert mounted.output == b"setting=1\n"
    readonly = await runtime.exec_sync(info.id, ["sh", "-c", "echo x > /etc/app/app.conf"], DEADLINE)
    assert readonly.exit_code != 0 and b"Read-only" in readonly.output
    # the host's files are usable, its /tmp is not visible, and nothing was created on the host
    host = await runtime.exec_sync(
        info.id, ["sh", "-c", "ls /tmp | wc -l; python3 -c 'print(6*7)'"], DEADLINE
    )
    assert host.output.split() == [b"0", b"42"]
    assert [Path(p).exists() for p in ("/usr/share/nginx", "/etc/app", "/opt/nginx")] == on_host_before
    env = await runtime.exec_sync(info.id, ["env"], DEADLINE)
    assert b"POD_IP=" + sb.ip.encode() in env.output.split()


async def test_own_pid_namespace(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    sb = await sandbox(runtime)
    info = await run(runtime, sb, config(busybox, "main", ["sh", "-c", "echo pid=$$; sleep 60"]))
    log = await wait_log(runtime, info.id, "pid=")
    assert int(log.split("pid=")[1].split()[0]) <= 3
    ps = await runtime.exec_sync(info.id, ["sh", "-c", "ls /proc | grep -c '^[0-9]'"], DEADLINE)
    assert int(ps.output.strip()) < 10  # only the container's processes
    hostname = await runtime.exec_sync(info.id, ["hostname"], DEADLINE)
    assert hostname.output.strip() == b"pod"


# -- stopping --------------------------------------------------------------------------------------


async def test_graceful_stop_runs_the_term_trap(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    sb = await sandbox(runtime)
    script = "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.2; done"
    info = await run(runtime, sb, config(busybox, "main", ["sh", "-c", script]))
    await wait_log(runtime, info.id, "ready")
    await runtime.stop_container(info.id, 30)
    done = await runtime.container_status(info.id)
    assert (done.state, done.exit_code, done.reason) == ("exited", 0, "Completed")
    assert (await wait_log(runtime, info.id, "bye")).endswith("bye\n")


async def test_sigterm_and_sigkill_exit_codes(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    sb = await sandbox(runtime)
    plain = await run(runtime, sb, config(busybox, "plain", ["sleep", "600"]))
    stubborn = await run(
        runtime,
        sb,
        config(busybox, "stubborn", ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.2; done"]),
    )
    await wait_log(runtime, stubborn.id, "ready")
    await runtime.stop_container(plain.id, 30)
    info = await runtime.container_status(plain.id)
    assert (info.exit_code, info.reason) == (143, "Error")
    await runtime.stop_container(stubborn.id, 0.5)
    info = await runtime.container_status(stubborn.id)
    assert (info.state, info.exit_code, info.reason) == ("exited", 137, "Error")
    assert info.pid is not None and not Path(f"/proc/{info.pid}").exists()
    # stopping again, or a container that is gone, is fine
    await runtime.stop_container(stubborn.id, 1)
    await runtime.remove_container(stubborn.id)
    await runtime.stop_container(stubborn.id, 1)


# -- servers on pod IPs ----------------------------------------------------------------------------


async def test_myapp_answers_on_its_pod_ip(runtime: ProcessRuntime, images: ImageStore) -> None:
    myapp = images.get("myapp:v1")
    assert myapp is not None
    sb = await sandbox(runtime, "myapp-pod")
    info = await run(runtime, sb, config(myapp, "app", env={"POD_IP": sb.ip, "POD_NAME": "myapp-pod"}))
    status, body = await http_eventually(f"http://{sb.ip}:80/")
    assert status == 200
    assert body == 'Hello MyApp | Version: v1 | <a href="hostname.html">Pod Name</a>\n'
    assert await asyncio.to_thread(http_get, f"http://{sb.ip}/hostname.html") == (200, "myapp-pod\n")
    await wait_log(runtime, info.id, '"GET /hostname.html HTTP/1.1" 200')
    await runtime.stop_container(info.id, 30)
    done = await runtime.container_status(info.id)
    assert (done.exit_code, done.reason) == (0, "Completed")


async def test_nginx_serves_index(runtime: ProcessRuntime, images: ImageStore) -> None:
    nginx = images.get("nginx")
    assert nginx is not None
    sb = await sandbox(runtime)
    info = await run(runtime, sb, config(nginx, "web", env={"POD_IP": sb.ip}))
    status, body = await http_eventually(f"http://{sb.ip}/")
    assert status == 200 and "<h1>Welcome to nginx!</h1>" in body
    await wait_log(runtime, info.id, '"GET / HTTP/1.1" 200')


# -- exec, attach ----------------------------------------------------------------------------------


async def test_exec_sync_timeout_and_exit_code(runtime: ProcessRuntime, images: ImageStore) -> None:
    pause = images.get("pause")
    assert pause is not None
    sb = await sandbox(runtime)
    info = await run(runtime, sb, config(pause, "pause"))
    result = await runtime.exec_sync(info.id, ["sh", "-c", "echo out; echo err >&2; exit 4"], DEADLINE)
    assert result.exit_code == 4 and result.output == b"out\nerr\n" and not result.timed_out
    slow = await runtime.exec_sync(info.id, ["sleep", "600"], 0.5)
    assert slow.timed_out

    async def no_sleep() -> bool:
        ps = await runtime.exec_sync(info.id, ["sh", "-c", "cat /proc/[0-9]*/comm"], DEADLINE)
        return b"sleep" not in ps.output

    await eventually(no_sleep, "the timed-out exec to be killed")
    await runtime.stop_container(info.id, 30)
    assert (await runtime.container_status(info.id)).exit_code == 0  # pause exits 0 on SIGTERM
    with pytest.raises(RuntimeFailure, match="not running"):
        await runtime.exec_sync(info.id, ["true"], DEADLINE)


async def test_exec_streams_stdin_and_output(runtime: ProcessRuntime, images: ImageStore) -> None:
    pause = images.get("pause")
    assert pause is not None
    sb = await sandbox(runtime)
    info = await run(runtime, sb, config(pause, "pause"))
    session = await runtime.exec(info.id, ["cat"], stdin=True, tty=False)
    await session.write_stdin(b"hello exec\n")
    assert b"hello exec\n" in await read_until(session, b"hello exec\n")
    await session.close_stdin()
    assert await session.wait() == 0
    split = await runtime.exec(info.id, ["sh", "-c", "echo o; echo e >&2"], stdin=False, tty=False)
    streams: dict[str, bytes] = {"stdout": b"", "stderr": b""}
    async for stream, chunk in split.output():
        streams[stream] += chunk
    assert streams == {"stdout": b"o\n", "stderr": b"e\n"}
    assert await split.wait() == 0


async def test_attach_to_stdin(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    sb = await sandbox(runtime)
    info = await run(runtime, sb, config(busybox, "cat", ["cat"], stdin=True))
    session = await runtime.attach(info.id)
    await session.write_stdin(b"ping\n")
    assert b"ping\n" in await read_until(session, b"ping\n")
    await session.close_stdin()
    await session.kill()  # detach: without stdin_once the container never sees EOF
    assert await session.wait() == 0
    await asyncio.sleep(0.2)
    assert (await runtime.container_status(info.id)).state == "running"
    again = await runtime.attach(info.id)
    await again.write_stdin(b"pong\n")
    assert b"pong\n" in await read_until(again, b"pong\n")
    await again.kill()
    # stdin_once: EOF once the first attach session closes stdin
    once = await run(
        runtime, sb, config(busybox, "once", ["sh", "-c", "cat; echo eof-seen"], stdin=True, stdin_once=True)
    )
    session = await runtime.attach(once.id)
    await session.write_stdin(b"only\n")
    await session.close_stdin()
    assert await session.wait() == 0
    assert (await wait_exited(runtime, once.id)).exit_code == 0
    assert (await wait_log(runtime, once.id, "eof-seen")) == "only\neof-seen\n"


# -- restarts --------------------------------------------------------------------------------------

KUBELET = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from kubelet.runtime import ContainerConfig, Mount, SandboxConfig
    from kubelet.runtime.process import ProcessRuntime

    async def main() -> None:
        rt = ProcessRuntime(Path(sys.argv[1]), sys.argv[2])
        sb = await rt.run_pod_sandbox(SandboxConfig(pod_uid="u1", namespace="default", name="survivor"))
        ids = {}
        for name, argv in (
            ("long", ["sh", "-c", "echo started; while true; do sleep 0.2; done"]),
            ("short", ["sh", "-c", "while [ ! -f /signal/go ]; do sleep 0.05; done; exit 7"]),
        ):
            cfg = ContainerConfig(name=name, attempt=0, image="busybox", image_id="sha256:x", image_root=None,
                                  argv=argv, mounts=[Mount(Path(sys.argv[3]), "/signal")])
            c = await rt.create_container(sb.id, cfg)
            await rt.start_container(c.id)
            ids[name] = c.id
        print(json.dumps({"sandbox": sb.id, "ip": sb.ip, **ids}), flush=True)

    asyncio.run(main())
    """
)


async def test_readoption_after_a_kubelet_restart(
    runtime: ProcessRuntime, root: Path, tmp_path: Path
) -> None:
    """Containers started by a kubelet process that then exits keep running; a new runtime on the
    same root lists them, execs into them, stops them, and reports the exit code of one that ended
    while no kubelet was running."""
    signal_dir = tmp_path / "signal"
    signal_dir.mkdir()
    cidr = str(runtime.ipam.cidr)
    await runtime.close()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KUBELET, str(root), cidr, str(signal_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    # "short" ends while no kubelet runs: its monitor records the exit code in the status file
    (signal_dir / "go").touch()
    status = root / "containers" / ids["short"] / "status.json"

    async def recorded() -> bool:
        return "exit-code" in status.read_text()

    await eventually(recorded, "the short container's exit code")

    rt = ProcessRuntime(root, cidr)
    [sb] = await rt.list_sandboxes()
    assert (sb.id, sb.ip, sb.name) == (ids["sandbox"], ids["ip"], "survivor")
    by_name = {c.name: c for c in await rt.list_containers(sb.id)}
    assert by_name["long"].state == "running"
    assert (by_name["short"].state, by_name["short"].exit_code, by_name["short"].reason) == (
        "exited",
        7,
        "Error",
    )
    assert by_name["short"].finished_at is not None
    await wait_log(rt, ids["long"], "started")
    result = await rt.exec_sync(ids["long"], ["sh", "-c", "echo inside"], DEADLINE)
    assert result.output == b"inside\n"
    # the adopted sandbox keeps its IP: a new sandbox gets another one
    other = await rt.run_pod_sandbox(SandboxConfig(pod_uid="u2", namespace="default", name="other"))
    assert other.ip != sb.ip
    await rt.stop_container(ids["long"], 30)
    info = await rt.container_status(ids["long"])
    assert info.state == "exited" and info.exit_code == 143
    await rt.remove_pod_sandbox(sb.id)
    assert await rt.list_containers(sb.id) == []
    assert not sb.directory.exists()
    again = await rt.run_pod_sandbox(SandboxConfig(pod_uid="u3", namespace="default", name="third"))
    assert again.ip not in (other.ip,)
    await rt.close()


async def test_sandbox_ips_and_removal(runtime: ProcessRuntime, images: ImageStore) -> None:
    busybox = images.get("busybox")
    assert busybox is not None
    a = await sandbox(runtime, "a")
    b = await sandbox(runtime, "b")
    assert a.ip != b.ip
    net = str(runtime.ipam.cidr.network_address)
    assert a.ip.rsplit(".", 1)[0] == net.rsplit(".", 1)[0]
    assert not a.ip.endswith((".0", ".1"))
    info = await run(runtime, a, config(busybox, "main", ["sleep", "600"]))
    await runtime.stop_pod_sandbox(a.id)
    assert (await runtime.container_status(info.id)).state == "exited"
    assert {s.id: s.state for s in await runtime.list_sandboxes()} == {a.id: "notready", b.id: "ready"}
    with pytest.raises(RuntimeFailure):
        await runtime.create_container(a.id, config(busybox, "late", ["true"]))
    await runtime.remove_pod_sandbox(a.id)
    assert [s.id for s in await runtime.list_sandboxes()] == [b.id]
    assert not a.directory.exists()
    await runtime.remove_pod_sandbox(a.id)  # again: fine
