"""Launcher guards that need no etcd: no gRPC in the launcher, port conflicts, `down` with nothing up."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kplane.cli.kplane import cli
from kplane.cluster.components import ClusterOptions
from kplane.cluster.console import Console
from kplane.cluster.launcher import UpSettings, run_down, run_up


def test_launcher_does_not_import_grpc() -> None:
    """Importing the `kplane` CLI and the launcher loads no gRPC (it must fork children later)."""
    code = (
        "import sys, kplane.cli.kplane, kplane.cluster.launcher, kplane.cluster.supervisor; "
        "print([m for m in sys.modules if m == 'grpc' or m.startswith('grpc.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_up_refuses_a_taken_port(tmp_path: Path) -> None:
    """`kplane up` exits 1 before starting anything when its apiserver port is taken, naming the holder."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        out = io.StringIO()
        opts = ClusterOptions(data_dir=tmp_path / "data", etcd_servers=["http://127.0.0.1:1"], port=port)
        code = await run_up(opts, UpSettings(config_path=tmp_path / "config"), Console(out, fmt="console"))
    assert code == 1
    text = out.getvalue()
    assert f"port {port} on 127.0.0.1 is in use (pid {os.getpid()} " in text
    assert "use --port or `kplane down`" in text
    assert not (tmp_path / "data" / "cluster.json").exists()
    assert not (tmp_path / "config").exists()


def test_down_without_a_cluster(tmp_path: Path) -> None:
    """`kplane down` where no cluster ever ran says so and succeeds."""
    said: list[str] = []
    assert run_down(tmp_path, said.append) == 0
    assert "nothing to stop" in said[0]


def test_status_without_a_cluster_fails(tmp_path: Path) -> None:
    """`kplane status` exits non-zero when no cluster state exists there."""
    result = CliRunner().invoke(cli, ["status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no cluster state" in result.output


def test_up_help_lists_the_flags() -> None:
    """`kplane up --help` documents every launcher flag."""
    result = CliRunner().invoke(cli, ["up", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--data-dir",
        "--nodes",
        "--etcd-servers",
        "--etcd-port",
        "--etcd-peer-port",
        "--port",
        "--metrics-port-base",
        "--compaction-retention",
        "--config",
        "--log-format",
        "--restart-on-failure",
    ):
        assert flag in result.output
