"""The process runtime: every container is a real OS process under bubblewrap.

A container is ``bwrap`` (the *monitor*, in its own session) whose child is the PID namespace's
init (bubblewrap's reaper, pid 1 inside), whose child is the user's command. The container has its
own mount, PID and UTS namespaces but the host's network: each pod listens on its own loopback IP
(``127.244.0.x``), so every pod can have its own port 80. Its filesystem view is planned by
:mod:`kubelet.runtime.mountplan` (host files read-only, image files and volumes at their paths,
private ``/tmp``).

Why these choices:

- **Surviving a kubelet restart.** Nothing ties a container to the kubelet: no
  ``--die-with-parent``, no pipes (stdout and stderr go straight to the log file, stdin is
  ``/dev/null`` or a FIFO), a new session. Containers are started with ``posix_spawn`` rather than
  asyncio subprocess transports, because a transport that is garbage-collected kills its process.
  Everything needed to find a container again is JSON under ``root``:
  ``containers/<id>/{config,state}.json`` (pids plus their start times from ``/proc/<pid>/stat``,
  so a reused pid is not mistaken for the container) and ``sandboxes/<id>.json`` (with the pod IP).
- **Exit codes after a restart.** The monitor writes ``--json-status-fd`` into
  ``containers/<id>/status.json``: first the init's host pid, then ``{"exit-code": N}`` when the
  container ends (``128+signal`` when killed, as Kubernetes reports it: 137 for SIGKILL, 143 for
  SIGTERM). The file's mtime is the finish time. Should the monitor itself be killed, the
  container keeps running under its init; its exit code is then unknown (reported as 137 when the
  runtime killed it, otherwise 255 with a message saying so).
- **Stopping.** SIGTERM goes to every process in the container's PID namespace except its init
  (the reaper ignores it anyway), so a shell's ``trap ... TERM`` runs at once and no orphaned
  child keeps the container alive; after the grace period the init gets SIGKILL, which the kernel
  turns into SIGKILL for the whole namespace. The monitor is never signalled: it must live to
  record the exit code.
- **Start errors.** Before spawning, the command is looked up the way ``execvp`` would inside the
  container's view; a missing one is a ``StartError`` (exit code 128) with containerd's wording.
- **Logs.** stdout and stderr of attempt N go (``O_APPEND``) to
  ``pods/<sandbox>/<container>/<N>.log``, so ``--previous`` is the previous attempt's file. Both
  streams share one file: attach reports everything as ``stdout``.
- **stdin.** With ``stdin``, fd 0 is a FIFO in the container's directory. Without ``stdin_once``
  the container holds it open read-write, so it never sees EOF; with ``stdin_once`` the runtime
  holds a writer until the first attach session closes stdin, then the container sees EOF. That
  writer lives in the kubelet: a restarted kubelet cannot hold it, so such a container sees EOF
  when the kubelet that started it exits.
- **exec** is ``nsenter -t <init> -m -p -u -r -W <workdir>`` with the container's environment.
  There is no pseudo-terminal: ``tty=True`` behaves like ``tty=False`` (output arrives as written
  by the program, stdout and stderr kept apart).

Requires root (bubblewrap without a user namespace, nsenter) and Linux.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import itertools
import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kplane.logs import get_logger
from kubelet.runtime import (
    ContainerConfig,
    ContainerInfo,
    ExecProcess,
    ExecResult,
    Mount,
    NotFound,
    Runtime,
    RuntimeFailure,
    SandboxConfig,
    SandboxInfo,
    StartError,
)
from kubelet.runtime.ipam import PodIPAllocator
from kubelet.runtime.mountplan import HostFS, PlanError, find_executable, plan_mounts

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_START_TIMEOUT = 30.0  # bubblewrap sets a container up in milliseconds; this is a safety net
_STOP_TIMEOUT = 30.0  # after SIGKILL, the namespace is gone in well under this


class _NotRunning(RuntimeFailure):
    def __init__(self, container_id: str) -> None:
        super().__init__("ContainerNotRunning", f"container {container_id} is not running")


# -- /proc helpers ---------------------------------------------------------------------------------


def _proc_start_time(pid: int | None) -> int | None:
    """The process's start time (clock ticks since boot) or None when it is gone or a zombie."""
    if pid is None or pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


def _alive(pid: int | None, start_time: int | None) -> bool:
    now = _proc_start_time(pid)
    return now is not None and (start_time is None or now == start_time)


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _children_supported() -> bool:
    """Whether the kernel has ``/proc/<pid>/task/<tid>/children`` (CONFIG_PROC_CHILDREN)."""
    me = os.getpid()
    return os.path.exists(f"/proc/{me}/task/{me}/children")


_CHILDREN = _children_supported()


def _children(pid: int) -> list[int] | None:
    """The children of ``pid`` (of every thread), or None when the kernel cannot tell cheaply.
    One small read per thread instead of a scan of every process: with a hundred containers on a
    node the scan made each container start cost milliseconds of the GIL per poll."""
    if not _CHILDREN:
        return None
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return out


def _pids_in_namespace(ns: str) -> list[int]:
    out: list[int] = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _pid_namespace(int(name)) == ns:
            out.append(int(name))
    return out


def _has_child(pid: int) -> bool:
    """Whether ``pid`` has a child process: its children files when the kernel has them
    (CONFIG_PROC_CHILDREN), else a scan of /proc."""
    children = _children(pid)
    if children is not None:
        return bool(children)
    ppid = str(pid).encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split(b" ", 2)  # state, ppid, ...
        if len(fields) > 1 and fields[1] == ppid:
            return True
    return False


def _read_status(path: Path) -> dict[str, Any]:
    """bubblewrap's --json-status-fd output: JSON documents, one per line, merged."""
    merged: dict[str, Any] = {}
    try:
        text = path.read_text()
    except OSError:
        return merged
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # a document being written right now
        if isinstance(doc, dict):
            merged.update(doc)
    return merged


class _LibcSpawn:
    """glibc's posix_spawn through ctypes, which releases the GIL for the call.

    ``os.posix_spawn`` holds the GIL until the child has exec'd (it is a vfork): while a hundred
    containers are being set up that took 14-36 ms per spawn, during which nothing else in the
    kubelet ran — not the pod watch, not the other pod workers. Called from a worker thread
    through ctypes, only that thread waits. Same function, same file actions, same session flag;
    unavailable (another libc, an unknown flag value): ``os.posix_spawn`` is used instead."""

    SETSID = 0x80  # glibc's POSIX_SPAWN_SETSID (since 2.26)

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        self.ctypes = ctypes
        libc_version = os.confstr("CS_GNU_LIBC_VERSION") or ""
        major, _, minor = libc_version.removeprefix("glibc ").partition(".")
        if not libc_version.startswith("glibc ") or (int(major), int(minor.split(".")[0])) < (2, 26):
            raise OSError(f"not glibc >= 2.26: {libc_version!r}")
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        for name in ("posix_spawn", "posix_spawn_file_actions_init", "posix_spawn_file_actions_addopen",
                     "posix_spawn_file_actions_adddup2", "posix_spawn_file_actions_destroy",
                     "posix_spawnattr_init", "posix_spawnattr_setflags", "posix_spawnattr_destroy"):
            getattr(self.libc, name).restype = ctypes.c_int

    def spawn(self, path: str, argv: list[str], env: dict[str, str], actions: list[tuple[Any, ...]]) -> int:
        c = self.ctypes
        fa = c.create_string_buffer(1024)  # posix_spawn_file_actions_t is 80 bytes on glibc x86-64
        attr = c.create_string_buffer(1024)  # posix_spawnattr_t, 336
        self.libc.posix_spawn_file_actions_init(fa)
        self.libc.posix_spawnattr_init(attr)
        try:
            for action in actions:
                if action[0] == os.POSIX_SPAWN_OPEN:
                    _, fd, file, flags, mode = action
                    err = self.libc.posix_spawn_file_actions_addopen(fa, fd, os.fsencode(file), flags, mode)
                elif action[0] == os.POSIX_SPAWN_DUP2:
                    err = self.libc.posix_spawn_file_actions_adddup2(fa, action[1], action[2])
                else:
                    raise ValueError(f"unsupported file action {action!r}")
                if err:
                    raise OSError(err, os.strerror(err))
            err = self.libc.posix_spawnattr_setflags(attr, c.c_short(self.SETSID))
            if err:
                raise OSError(err, os.strerror(err))
            args = [os.fsencode(a) for a in argv]
            envs = [os.fsencode(f"{k}={v}") for k, v in env.items()]
            c_argv = (c.c_char_p * (len(args) + 1))(*args, None)
            c_env = (c.c_char_p * (len(envs) + 1))(*envs, None)
            pid = c.c_int(0)
            err = self.libc.posix_spawn(c.byref(pid), os.fsencode(path), fa, attr, c_argv, c_env)
            if err:
                raise OSError(err, f"{os.strerror(err)}: {path!r}")
            return pid.value
        finally:
            self.libc.posix_spawn_file_actions_destroy(fa)
            self.libc.posix_spawnattr_destroy(attr)


try:
    _LIBC_SPAWN: _LibcSpawn | None = _LibcSpawn()
except (OSError, ValueError, AttributeError):
    _LIBC_SPAWN = None


async def _spawn(argv: list[str], env: dict[str, str], actions: list[tuple[Any, ...]]) -> int:
    """posix_spawn ``argv`` in a new session; off the event loop and without the GIL where glibc allows."""
    if _LIBC_SPAWN is not None:
        return await asyncio.to_thread(_LIBC_SPAWN.spawn, argv[0], argv, env, actions)
    return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _signal_exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _start_error_message(argv0: str) -> str:
    if "/" not in argv0:
        return f'exec: "{argv0}": executable file not found in $PATH'
    return f'exec: "{argv0}": stat {argv0}: no such file or directory'


# -- records ---------------------------------------------------------------------------------------


@dataclass
class _Sandbox:
    id: str
    config: SandboxConfig
    ip: str
    created_at: float
    directory: Path
    state: str = "ready"

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "id": self.id,
            "pod_uid": c.pod_uid,
            "namespace": c.namespace,
            "name": c.name,
            "attempt": c.attempt,
            "hostname": c.hostname,
            "labels": c.labels,
            "ip": self.ip,
            "created_at": self.created_at,
            "directory": str(self.directory),
            "state": self.state,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _Sandbox:
        config = SandboxConfig(
            pod_uid=d["pod_uid"],
            namespace=d["namespace"],
            name=d["name"],
            attempt=int(d.get("attempt", 0)),
            hostname=d.get("hostname", ""),
            labels=dict(d.get("labels", {})),
        )
        return cls(
            id=d["id"],
            config=config,
            ip=d["ip"],
            created_at=float(d["created_at"]),
            directory=Path(d["directory"]),
            state=d.get("state", "ready"),
        )

    def info(self) -> SandboxInfo:
        c = self.config
        return SandboxInfo(
            id=self.id,
            pod_uid=c.pod_uid,
            namespace=c.namespace,
            name=c.name,
            attempt=c.attempt,
            state="ready" if self.state == "ready" else "notready",
            ip=self.ip,
            created_at=self.created_at,
            directory=self.directory,
            labels=dict(c.labels),
        )


def _config_to_json(c: ContainerConfig) -> dict[str, Any]:
    return {
        "name": c.name,
        "attempt": c.attempt,
        "image": c.image,
        "image_id": c.image_id,
        "image_root": None if c.image_root is None else str(c.image_root),
        "argv": list(c.argv),
        "env": dict(c.env),
        "working_dir": c.working_dir,
        "mounts": [
            {"host_path": str(m.host_path), "container_path": m.container_path, "read_only": m.read_only}
            for m in c.mounts
        ],
        "stdin": c.stdin,
        "stdin_once": c.stdin_once,
        "tty": c.tty,
        "labels": dict(c.labels),
    }


def _config_from_json(d: dict[str, Any]) -> ContainerConfig:
    return ContainerConfig(
        name=d["name"],
        attempt=int(d["attempt"]),
        image=d["image"],
        image_id=d["image_id"],
        image_root=None if d.get("image_root") is None else Path(d["image_root"]),
        argv=list(d["argv"]),
        env=dict(d.get("env", {})),
        working_dir=d.get("working_dir", ""),
        mounts=[
            Mount(Path(m["host_path"]), m["container_path"], bool(m.get("read_only", False)))
            for m in d.get("mounts", [])
        ],
        stdin=bool(d.get("stdin", False)),
        stdin_once=bool(d.get("stdin_once", False)),
        tty=bool(d.get("tty", False)),
        labels=dict(d.get("labels", {})),
    )


@dataclass
class _Container:
    id: str
    sandbox_id: str
    config: ContainerConfig
    created_at: float
    directory: Path  # containers/<id>/
    log_path: Path
    # state.json
    started_at: float | None = None
    pid: int | None = None  # the monitor (outer bwrap)
    pid_start: int | None = None
    init_pid: int | None = None  # the namespace's pid 1 (host pid)
    init_start: int | None = None
    start_error: str = ""
    finished_at: float | None = None  # for start errors and lost exit codes
    kill_sent: bool = False
    # not persisted: the state once the container has exited (it never changes after that)
    final: ContainerInfo | None = field(default=None, repr=False, compare=False)
    # state.json writes may happen on worker threads: numbered when taken, never older over newer
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False, compare=False)
    _written: int = field(default=0, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def status_path(self) -> Path:
        return self.directory / "status.json"

    @property
    def fifo_path(self) -> Path:
        return self.directory / "stdin"

    def state_json(self) -> dict[str, Any]:
        return {
            "sandbox_id": self.sandbox_id,
            "created_at": self.created_at,
            "log_path": str(self.log_path),
            "started_at": self.started_at,
            "pid": self.pid,
            "pid_start": self.pid_start,
            "init_pid": self.init_pid,
            "init_start": self.init_start,
            "start_error": self.start_error,
            "finished_at": self.finished_at,
            "kill_sent": self.kill_sent,
        }

    def snapshot(self, **override: Any) -> tuple[int, dict[str, Any]]:
        """The state to write, numbered (take it on the event loop, write it anywhere)."""
        return next(self._seq), {**self.state_json(), **override}

    def write(self, seq: int, state: dict[str, Any]) -> None:
        """Write a snapshot unless a newer one is on disk already (any thread)."""
        with self._lock:
            if seq < self._written:
                return
            _write_json(self.directory / "state.json", state)
            self._written = seq

    def save(self) -> None:
        """Write the current state now, on this thread (rare paths: errors, discoveries)."""
        self.write(*self.snapshot())

    async def save_async(self) -> None:
        """Write the current state from a worker thread: creating and renaming files waits for
        the filesystem's journal, which on a busy disk takes milliseconds the event loop (every
        pod worker, the pod watch) should not spend."""
        seq, state = self.snapshot()
        await asyncio.to_thread(self.write, seq, state)

    @classmethod
    def load(cls, directory: Path) -> _Container:
        config = _config_from_json(json.loads((directory / "config.json").read_text()))
        s = json.loads((directory / "state.json").read_text())
        return cls(
            id=directory.name,
            sandbox_id=s["sandbox_id"],
            config=config,
            created_at=float(s["created_at"]),
            directory=directory,
            log_path=Path(s["log_path"]),
            started_at=s.get("started_at"),
            pid=s.get("pid"),
            pid_start=s.get("pid_start"),
            init_pid=s.get("init_pid"),
            init_start=s.get("init_start"),
            start_error=s.get("start_error", ""),
            finished_at=s.get("finished_at"),
            kill_sent=bool(s.get("kill_sent", False)),
        )


# -- streaming sessions ----------------------------------------------------------------------------


class _ExecSession:
    """An ``exec`` into a container: an nsenter child with pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._readers = [
            asyncio.create_task(self._pump("stdout", proc.stdout)),
            asyncio.create_task(self._pump("stderr", proc.stderr)),
        ]

    async def _pump(self, name: str, stream: asyncio.StreamReader | None) -> None:
        try:
            if stream is None:
                return
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    return
                await self._queue.put((name, chunk))
        finally:
            await self._queue.put(None)

    async def write_stdin(self, data: bytes) -> None:
        if self._proc.stdin is None:
            raise RuntimeFailure("StdinNotEnabled", "exec was started without stdin")
        self._proc.stdin.write(data)
        await self._proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self._proc.stdin.wait_closed()

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        """Yields until both streams are closed. Consume it once."""
        open_streams = len(self._readers)
        while open_streams:
            item = await self._queue.get()
            if item is None:
                open_streams -= 1
                continue
            yield item

    async def wait(self) -> int:
        code = await self._proc.wait()
        return _signal_exit_code(code)

    async def kill(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        await self._proc.wait()


class _AttachSession:
    """``attach``: the container's live output (tailing its log file) and its stdin FIFO.

    ``kill()`` detaches: the container keeps running; ``wait()`` then returns 0. Otherwise
    ``wait()`` returns the container's exit code once it exits."""

    _POLL = 0.05

    def __init__(self, runtime: ProcessRuntime, container: _Container, log_offset: int) -> None:
        self._rt = runtime
        self._c = container
        self._offset = log_offset
        self._stdin_fd: int | None = None
        self._detached = asyncio.Event()
        self._stdin_lock = asyncio.Lock()

    def _open_stdin(self) -> int:
        if not self._c.config.stdin:
            raise RuntimeFailure(
                "StdinNotEnabled", f"container {self._c.config.name} was not created with stdin"
            )
        if self._stdin_fd is None:
            try:
                fd = os.open(self._c.fifo_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no reader: the container is gone
                    raise _NotRunning(self._c.id) from None
                raise
            os.set_blocking(fd, True)
            self._stdin_fd = fd
        return self._stdin_fd

    async def write_stdin(self, data: bytes) -> None:
        async with self._stdin_lock:
            fd = self._open_stdin()
            view = memoryview(data)
            while view:
                n = await asyncio.to_thread(os.write, fd, view)
                view = view[n:]

    async def close_stdin(self) -> None:
        async with self._stdin_lock:
            if self._stdin_fd is not None:
                os.close(self._stdin_fd)
                self._stdin_fd = None
            if self._c.config.stdin_once:
                self._rt._drop_keeper(self._c.id)

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        try:
            f = open(self._c.log_path, "rb")
        except OSError:
            return
        try:
            f.seek(self._offset)
            while True:
                running = self._rt._info(self._c).state == "running"
                while chunk := f.read(65536):
                    yield ("stdout", chunk)
                if not running or self._detached.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._detached.wait(), self._POLL)
        finally:
            f.close()

    async def wait(self) -> int:
        while not self._detached.is_set():
            info = self._rt._info(self._c)
            if info.state == "exited":
                return info.exit_code if info.exit_code is not None else 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._detached.wait(), self._POLL)
        return 0

    async def kill(self) -> None:
        self._detached.set()
        async with self._stdin_lock:
            if self._stdin_fd is not None:
                os.close(self._stdin_fd)
                self._stdin_fd = None


# -- the runtime -----------------------------------------------------------------------------------


@dataclass
class _Spawn:
    argv: list[str]
    env: dict[str, str]
    file_actions: list[tuple[Any, ...]] = field(default_factory=list)
    started_at: float = 0.0  # as already written to state.json


class ProcessRuntime:
    """Containers as bubblewrap processes; state under ``root`` (see the module docstring)."""

    name = "process"

    def __init__(
        self,
        root: Path,
        pod_cidr: str = "127.244.0.0/24",
        *,
        bwrap: str = "bwrap",
        nsenter: str = "nsenter",
    ) -> None:
        self.root = Path(root).resolve()
        self.ipam = PodIPAllocator(pod_cidr)
        if not self.ipam.cidr.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"pod CIDR {pod_cidr} must be inside 127.0.0.0/8: pods listen on loopback IPs")
        found_bwrap = shutil.which(bwrap)
        found_nsenter = shutil.which(nsenter)
        if found_bwrap is None:
            raise RuntimeError(f"bubblewrap ({bwrap}) not found: install it (deploy/ensure-bwrap.sh)")
        if found_nsenter is None:
            raise RuntimeError(f"{nsenter} not found: install util-linux")
        self._bwrap = found_bwrap
        self._nsenter_bin = found_nsenter
        self.log = get_logger(component="kubelet", runtime="process")
        self._host = HostFS()
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._children: set[int] = set()  # monitors this instance spawned (to reap)
        self._keepers: dict[str, int] = {}  # stdin_once writer fds, by container id
        self._starting: set[str] = set()
        for sub in ("sandboxes", "containers", "pods"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._load()

    # -- persistence ------------------------------------------------------------------------------

    def _load(self) -> None:
        for path in sorted((self.root / "sandboxes").glob("*.json")):
            try:
                sb = _Sandbox.from_json(json.loads(path.read_text()))
                self.ipam.reserve(sb.ip)
            except (OSError, ValueError, KeyError) as exc:
                self.log.warning("skipping unreadable sandbox record", path=str(path), error=str(exc))
                continue
            self._sandboxes[sb.id] = sb
        for directory in sorted((self.root / "containers").iterdir()):
            if not directory.is_dir():
                continue
            try:
                c = _Container.load(directory)
            except (OSError, ValueError, KeyError) as exc:
                self.log.warning("skipping unreadable container record", path=str(directory), error=str(exc))
                continue
            self._containers[c.id] = c

    def _sandbox(self, sandbox_id: str) -> _Sandbox:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            raise NotFound(f"sandbox {sandbox_id}")
        return sb

    def _container(self, container_id: str) -> _Container:
        c = self._containers.get(container_id)
        if c is None:
            raise NotFound(f"container {container_id}")
        return c

    # -- sandboxes --------------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: SandboxConfig) -> SandboxInfo:
        sid = uuid.uuid4().hex
        ip = self.ipam.allocate()
        directory = self.root / "pods" / sid
        sb = _Sandbox(id=sid, config=config, ip=ip, created_at=time.time(), directory=directory)

        def write() -> None:
            directory.mkdir(parents=True, exist_ok=True)
            _write_json(self.root / "sandboxes" / f"{sid}.json", sb.to_json())

        try:
            # file creation waits for the filesystem's journal: never on the event loop, where a
            # busy disk would stall every pod worker and the pod watch of this node
            await asyncio.to_thread(write)
        except OSError:
            self.ipam.release(ip)
            raise
        self._sandboxes[sid] = sb
        self.log.info("sandbox created", sandbox=sid, pod=f"{config.namespace}/{config.name}", ip=ip)
        return sb.info()

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return
        for c in [c for c in self._containers.values() if c.sandbox_id == sandbox_id]:
            await self.stop_container(c.id, 0)
        if sb.state != "notready":
            sb.state = "notready"
            await asyncio.to_thread(_write_json, self.root / "sandboxes" / f"{sandbox_id}.json", sb.to_json())

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return
        for c in [c for c in self._containers.values() if c.sandbox_id == sandbox_id]:
            await self.remove_container(c.id)
        record = self.root / "sandboxes" / f"{sandbox_id}.json"

        def remove() -> None:
            shutil.rmtree(sb.directory, True)
            with contextlib.suppress(FileNotFoundError):
                record.unlink()

        await asyncio.to_thread(remove)
        self._sandboxes.pop(sandbox_id, None)
        self.ipam.release(sb.ip)
        self.log.info("sandbox removed", sandbox=sandbox_id, ip=sb.ip)

    async def list_sandboxes(self) -> list[SandboxInfo]:
        return [sb.info() for sb in sorted(self._sandboxes.values(), key=lambda s: s.created_at)]

    # -- containers -------------------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerInfo:
        sb = self._sandbox(sandbox_id)
        if sb.state != "ready":
            raise RuntimeFailure("SandboxNotReady", f"sandbox {sandbox_id} is not ready")
        if not config.name or "/" in config.name or config.name in (".", ".."):
            raise RuntimeFailure("InvalidArgument", f"invalid container name {config.name!r}")
        cid = uuid.uuid4().hex
        directory = self.root / "containers" / cid
        log_path = sb.directory / config.name / f"{config.attempt}.log"
        c = _Container(
            id=cid,
            sandbox_id=sandbox_id,
            config=config,
            created_at=time.time(),
            directory=directory,
            log_path=log_path,
        )

        def write() -> None:
            directory.mkdir(parents=True)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            _write_json(directory / "config.json", _config_to_json(config))
            c.save()

        await asyncio.to_thread(write)  # off the event loop, as in run_pod_sandbox
        if self._sandboxes.get(sandbox_id) is not sb or sb.state != "ready":  # stopped meanwhile
            await asyncio.to_thread(shutil.rmtree, directory, True)
            raise RuntimeFailure("SandboxNotReady", f"sandbox {sandbox_id} is not ready")
        self._containers[cid] = c
        return self._info(c)

    def _record_start_error(self, c: _Container, message: str) -> StartError:
        c.start_error = message
        c.finished_at = time.time()
        c.save()
        with contextlib.suppress(OSError), open(c.log_path, "ab") as f:
            f.write(message.encode() + b"\n")
        self.log.info("container start error", container=c.id, name=c.config.name, error=message)
        return StartError(message)

    def _env(self, c: _Container) -> dict[str, str]:
        env = dict(c.config.env)
        env.setdefault("PATH", DEFAULT_PATH)
        return env

    def _prepare(self, c: _Container, sb: _Sandbox) -> _Spawn:
        """Blocking part of a start: plan the view, resolve the command, write the arg file."""
        cfg = c.config
        workdir = cfg.working_dir or "/"
        env = self._env(c)
        if not cfg.argv:
            raise self._record_start_error(c, "no command specified")
        try:
            plan = plan_mounts(
                self._host,
                None if cfg.image_root is None else str(cfg.image_root),
                cfg.mounts,
                workdir,
                writable_roots=[str(self.root)],
            )
            found = find_executable(plan, cfg.argv[0], env["PATH"], workdir)
        except PlanError as exc:
            raise self._record_start_error(c, str(exc)) from None
        if found is None:
            raise self._record_start_error(c, _start_error_message(cfg.argv[0]))
        args_path = c.directory / "bwrap.args"
        args_path.write_bytes(b"".join(a.encode() + b"\0" for a in plan.args))
        # Recorded before spawning: a kubelet killed right after the spawn finds the container
        # again through bubblewrap's status file (the init's pid) instead of leaking it. Written
        # here, off the event loop; the caller sets ``started_at`` in memory when it spawns.
        started_at = time.time()
        c.write(*c.snapshot(started_at=started_at))
        hostname = (sb.config.hostname or sb.config.name)[:63] or "pod"
        argv = [
            self._bwrap,
            "--args",
            "4",
            "--unshare-pid",
            "--unshare-uts",
            "--hostname",
            hostname,
            "--chdir",
            workdir,
            "--json-status-fd",
            "3",
            "--",
            *cfg.argv,
        ]
        if cfg.stdin:
            with contextlib.suppress(FileNotFoundError):
                c.fifo_path.unlink()
            os.mkfifo(c.fifo_path, 0o600)
            if cfg.stdin_once:
                # Our writer keeps the container from seeing EOF until the first attach closes.
                self._keepers[c.id] = os.open(c.fifo_path, os.O_RDWR | os.O_CLOEXEC)
                stdin_action = (os.POSIX_SPAWN_OPEN, 0, str(c.fifo_path), os.O_RDONLY, 0)
            else:
                stdin_action = (os.POSIX_SPAWN_OPEN, 0, str(c.fifo_path), os.O_RDWR, 0)
        else:
            stdin_action = (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
        # Created here, on a worker thread: the spawn's child then only opens existing files. Its
        # parent waits while it runs its file actions (posix_spawn is a vfork; os.posix_spawn, the
        # fallback, even holds the GIL), and creating a file can wait for a busy filesystem journal.
        with open(c.log_path, "ab"):
            pass
        with open(c.status_path, "wb"):
            pass
        actions: list[tuple[Any, ...]] = [
            stdin_action,
            (os.POSIX_SPAWN_OPEN, 1, str(c.log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
            (os.POSIX_SPAWN_OPEN, 3, str(c.status_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            (os.POSIX_SPAWN_OPEN, 4, str(args_path), os.O_RDONLY, 0),
        ]
        return _Spawn(argv=argv, env=env, file_actions=actions, started_at=started_at)

    async def start_container(self, container_id: str) -> ContainerInfo:
        c = self._container(container_id)
        if c.started_at is not None or c.start_error or container_id in self._starting:
            raise RuntimeFailure("AlreadyStarted", f"container {container_id} was already started")
        sb = self._sandbox(c.sandbox_id)
        if sb.state != "ready":
            raise RuntimeFailure("SandboxNotReady", f"sandbox {sb.id} is not ready")
        self._starting.add(container_id)
        try:
            return await self._start(c, sb)
        finally:
            self._starting.discard(container_id)

    async def _start(self, c: _Container, sb: _Sandbox) -> ContainerInfo:
        spawn = await asyncio.to_thread(self._prepare, c, sb)
        try:
            pid = await _spawn(spawn.argv, spawn.env, spawn.file_actions)
        except OSError as exc:
            self._drop_keeper(c.id)
            raise self._record_start_error(c, f"starting bubblewrap: {exc}") from None
        # In memory only now (state.json says so already, see _prepare): until the pid is known,
        # a relist must see the container as created, not as one that ended.
        c.started_at = spawn.started_at
        self._children.add(pid)
        c.pid = pid
        c.pid_start = _proc_start_time(pid)
        # saved with the init's pid in a moment (_await_init), or with the start error
        await self._await_init(c)
        info = self._info(c)
        self.log.info(
            "container started", container=c.id, name=c.config.name, pid=c.init_pid, state=info.state
        )
        return info

    async def _await_init(self, c: _Container) -> None:
        """Wait until the container's view is complete. bubblewrap reports the init's pid right
        after cloning it, before the mounts are made; the init forks the command only once
        everything is set up, so "the init has a child" is the signal (exec must not enter a
        half-built mount namespace). A command that already ended counts too, unless bubblewrap
        itself complained: that is a start error (a mount that failed, an exec that failed)."""
        delay = 0.005  # bubblewrap needs a few milliseconds for the namespaces and mounts anyway
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if c.init_pid is None:
                status = _read_status(c.status_path)
                if "child-pid" in status:
                    c.init_pid = int(status["child-pid"])
                    c.init_start = _proc_start_time(c.init_pid)
                    await c.save_async()
            if c.init_pid is not None:
                # two tiny /proc reads with children files: cheaper inline than a thread hop
                found = _has_child(c.init_pid) if _CHILDREN else await asyncio.to_thread(_has_child, c.init_pid)
                if found:
                    return
            # status.json only changes again when the monitor ends (the exit code): while it
            # lives, one /proc read per poll says enough
            if not _alive(c.pid, c.pid_start):
                self._reap(c)
                status = _read_status(c.status_path)
                complaint = self._bwrap_complaint(c)
                if complaint is None and "child-pid" in status:
                    return  # the command ran and is done already
                c.started_at = None
                raise self._record_start_error(c, complaint or "bubblewrap failed to set up the container")
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.pid or 0, signal.SIGKILL)
                c.started_at = None
                raise self._record_start_error(c, "timed out waiting for bubblewrap to start the container")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    @staticmethod
    def _bwrap_complaint(c: _Container) -> str | None:
        """bubblewrap's own error (``bwrap: ...``) when it is the log's last line."""
        try:
            with open(c.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
                tail = f.read().decode(errors="replace")
        except OSError:
            return None
        lines = [ln for ln in tail.splitlines() if ln.strip()]
        if lines and lines[-1].startswith("bwrap: "):
            return lines[-1]
        return None

    def _reap(self, c: _Container) -> None:
        if c.pid is not None and c.pid in self._children:
            try:
                done, _status = os.waitpid(c.pid, os.WNOHANG)
            except ChildProcessError:
                done = c.pid
            if done:
                self._children.discard(c.pid)

    def _info(self, c: _Container) -> ContainerInfo:
        cfg = c.config
        info = ContainerInfo(
            id=c.id,
            sandbox_id=c.sandbox_id,
            name=cfg.name,
            attempt=cfg.attempt,
            state="created",
            image=cfg.image,
            image_id=cfg.image_id,
            created_at=c.created_at,
            log_path=c.log_path,
            labels=dict(cfg.labels),
        )
        if c.start_error:
            info.state = "exited"
            info.exit_code = 128
            info.reason = "StartError"
            info.message = c.start_error
            info.finished_at = c.finished_at
            return info
        if c.started_at is None:
            return info
        if c.final is not None:
            return replace(c.final, labels=dict(c.final.labels))
        info.started_at = c.started_at
        alive = _alive(c.pid, c.pid_start) or (c.init_pid is not None and _alive(c.init_pid, c.init_start))
        if alive and c.init_pid is not None:
            # Running while the monitor or the init lives (the monitor records the exit code as it
            # exits): one /proc read for each running container on each relist, no status.json
            # (a live monitor is no zombie: nothing to reap either).
            info.pid = c.init_pid
            info.state = "running"
            return info
        self._reap(c)  # (a zombie counts as not alive above)
        status = _read_status(c.status_path)
        if c.init_pid is None and "child-pid" in status:
            c.init_pid = int(status["child-pid"])
            c.init_start = _proc_start_time(c.init_pid)
            c.save()
            alive = alive or _alive(c.init_pid, c.init_start)
        info.pid = c.init_pid
        code = status.get("exit-code")
        if code is None and alive:
            info.state = "running"
            return info
        info.state = "exited"
        if code is not None:
            info.exit_code = int(code)
            with contextlib.suppress(OSError):
                info.finished_at = c.status_path.stat().st_mtime
        else:
            if c.finished_at is None:
                c.finished_at = time.time()
                c.save()
            info.finished_at = c.finished_at
            info.exit_code = 137 if c.kill_sent else 255
            info.message = "the container's monitor process was killed; its exit status is unknown"
        info.reason = "Completed" if info.exit_code == 0 else "Error"
        c.final = replace(info, labels=dict(info.labels))
        return info

    def _is_running(self, c: _Container) -> bool:
        return self._info(c).state == "running"

    def _signal_namespace(self, c: _Container, sig: int) -> int:
        """Send ``sig`` to every process of the container except its init; returns how many."""
        if c.init_pid is None or not _alive(c.init_pid, c.init_start):
            return 0
        ns = _pid_namespace(c.init_pid)
        if ns is None:
            return 0
        sent = 0
        for pid in _pids_in_namespace(ns):
            if pid == c.init_pid:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                sent += 1
        return sent

    async def _wait_stopped(self, c: _Container, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while self._is_running(c):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.1)
        return True

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        c = self._containers.get(container_id)
        if c is None or not self._is_running(c):
            return
        self.log.info("stopping container", container=c.id, name=c.config.name, grace=grace_period)
        if grace_period > 0:
            await asyncio.to_thread(self._signal_namespace, c, signal.SIGTERM)
            if await self._wait_stopped(c, grace_period):
                return
        c.kill_sent = True
        await c.save_async()
        if c.init_pid is not None and _alive(c.init_pid, c.init_start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(c.init_pid, signal.SIGKILL)
        elif c.pid is not None and _alive(c.pid, c.pid_start):
            # the monitor is alive but its namespace is not set up yet, or already gone
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.pid, signal.SIGKILL)
        if not await self._wait_stopped(c, _STOP_TIMEOUT):
            raise RuntimeFailure("StopFailed", f"container {container_id} did not stop after SIGKILL")

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.get(container_id)
        if c is None:
            return
        await self.stop_container(container_id, 0)
        self._drop_keeper(container_id)
        # forgotten before its files go: a relist meanwhile must not try to save its state there
        self._containers.pop(container_id, None)

        def remove() -> None:
            shutil.rmtree(c.directory, True)
            with contextlib.suppress(OSError):
                c.log_path.unlink()

        await asyncio.to_thread(remove)

    async def container_status(self, container_id: str) -> ContainerInfo:
        return self._info(self._container(container_id))

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerInfo]:
        cs = [c for c in self._containers.values() if sandbox_id is None or c.sandbox_id == sandbox_id]
        return [self._info(c) for c in sorted(cs, key=lambda c: c.created_at)]

    def _drop_keeper(self, container_id: str) -> None:
        fd = self._keepers.pop(container_id, None)
        if fd is not None:
            os.close(fd)

    # -- exec / attach / logs ---------------------------------------------------------------------

    def _running(self, container_id: str) -> _Container:
        c = self._container(container_id)
        if not self._is_running(c) or c.init_pid is None:
            raise _NotRunning(container_id)
        return c

    async def _nsenter(
        self, c: _Container, argv: list[str], stdin: bool, merge_stderr: bool = False
    ) -> asyncio.subprocess.Process:
        if not argv:
            raise RuntimeFailure("InvalidArgument", "exec needs a command")
        cmd = [
            self._nsenter_bin,
            "-t",
            str(c.init_pid),
            "-m",
            "-p",
            "-u",
            "-r",
            "-W",
            c.config.working_dir or "/",
            "--",
            *argv,
        ]
        return await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
            env=self._env(c),
            start_new_session=True,  # so a timeout can kill nsenter and its child together
        )

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        c = self._running(container_id)
        cmd_proc = await self._nsenter(c, argv, stdin=False, merge_stderr=True)
        session = _ExecSession(cmd_proc)
        chunks: list[bytes] = []

        async def collect() -> int:
            async for _stream, chunk in session.output():
                chunks.append(chunk)
            return await session.wait()

        try:
            code = await asyncio.wait_for(collect(), timeout)
        except TimeoutError:
            await session.kill()
            return ExecResult(exit_code=137, output=b"".join(chunks), timed_out=True)
        return ExecResult(exit_code=code, output=b"".join(chunks))

    async def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool) -> _ExecSession:
        c = self._running(container_id)
        return _ExecSession(await self._nsenter(c, argv, stdin=stdin))

    async def attach(self, container_id: str) -> _AttachSession:
        c = self._running(container_id)
        try:
            offset = c.log_path.stat().st_size
        except OSError:
            offset = 0
        return _AttachSession(self, c, offset)

    def log_path(self, container_id: str) -> Path | None:
        return self._container(container_id).log_path

    async def close(self) -> None:
        """Forget in-process resources; containers keep running. stdin_once writers are closed,
        so those containers see EOF (see the module docstring)."""
        for cid in list(self._keepers):
            self._drop_keeper(cid)
        for pid in list(self._children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


if TYPE_CHECKING:  # the implementations satisfy the protocols
    _runtime: Runtime = ProcessRuntime(Path("/"))
    _exec: ExecProcess = _ExecSession(None)  # type: ignore[arg-type]
    _attach: ExecProcess = _AttachSession(None, None, 0)  # type: ignore[arg-type]
