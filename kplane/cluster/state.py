"""The state file ``<data-dir>/cluster.json``: what `kplane up` started, for `status` and `down`.

Format (version 1)::

    {
      "version": 1,
      "data_dir": "/root/.kplane/data",
      "log_dir": "/root/.kplane/data/logs",
      "config_path": "/root/.kplane/config",
      "etcd_servers": ["http://127.0.0.1:2379"],
      "apiserver": "127.0.0.1:6443",
      "nodes": 1,
      "started_at": "2026-11-21T22:01:40Z",
      "stopped_at": null,
      "launcher": {"pid": 4242, "create_time": 1790000000.12, "argv": ["/.../kplane", "up"]},
      "components": [
        {"name": "etcd", "pid": 4250, "create_time": 1790000000.5, "address": "http://127.0.0.1:2379",
         "argv": ["/usr/bin/etcd", "--name", "default", ...], "log": "/root/.kplane/data/logs/etcd.log",
         "health": {"kind": "etcd", "host": "127.0.0.1", "port": 2379, ...}, "external": false,
         "status": "running", "exit_code": null, "restarts": 0},
        ...
      ]
    }

``pid`` (and the launcher's) is null once the process has stopped. ``status`` is one of
``starting``, ``running``, ``exited``, ``stopped``, ``external``.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

STATE_FILE = "cluster.json"
STATE_VERSION = 1


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_FILE


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class StateError(Exception):
    """No readable state file."""


def read_state(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateError(f"no cluster state at {path}; start a cluster with `kplane up`") from None
    except OSError as e:
        raise StateError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise StateError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("components"), list):
        raise StateError(f"{path} is not a kplane cluster state file")
    return doc


@dataclass(frozen=True)
class ProcessRef:
    """A pid plus what identifies the process behind it (so a reused pid is never mistaken)."""

    pid: int
    argv: tuple[str, ...]
    create_time: float | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProcessRef | None:
        pid = d.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return None
        ct = d.get("create_time")
        return cls(pid, tuple(str(a) for a in d.get("argv") or ()), float(ct) if ct is not None else None)


def cmdline_matches(actual: list[str], expected: tuple[str, ...] | list[str]) -> bool:
    """Whether a live process's cmdline is the one we started.

    The program's directory may differ (a wrapper script that execs the real binary of the same
    name), its basename and every argument may not.
    """
    if not actual or not expected:
        return False
    if os.path.basename(actual[0]) != os.path.basename(expected[0]):
        return False
    return list(actual[1:]) == list(expected[1:])


def live_process(ref: ProcessRef) -> psutil.Process | None:
    """The running process ``ref`` names, or None if it is gone or the pid now belongs to another."""
    try:
        p = psutil.Process(ref.pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        if ref.create_time is not None and abs(p.create_time() - ref.create_time) > 1.0:
            return None
        if ref.argv and not cmdline_matches(p.cmdline(), ref.argv):
            return None
        return p
    except (psutil.Error, OSError):
        return None


def process_create_time(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error, OSError):
        return psutil.Process(pid).create_time()
    return None
