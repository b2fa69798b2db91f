"""`kplane chaos`: faults against the cluster `kplane up` runs, and scenarios with invariants.

    kplane chaos kill-node node-2            SIGKILL the kubelet, its pods' processes (and its proxy)
    kplane chaos freeze-node node-2          SIGSTOP the kubelet: heartbeats stop, pods keep running
    kplane chaos thaw-node node-2            SIGCONT
    kplane chaos restart-node node-2         start the kubelet again with its original arguments
    kplane chaos kill controller-manager --leader
    kplane chaos kill-etcd / restart apiserver
    kplane chaos run deploy/chaos/node-loss-deployment.yaml --report out/

Imported by `kplane` at start-up, which must not import gRPC: the client is imported in commands.
docs/chaos.md has the long version.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from kplane.cluster.launcher import DEFAULT_DATA_DIR

_data_dir = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DATA_DIR,
                         show_default="~/.kplane/data", help="The data dir of the `kplane up` to act on.")


def _fail(msg: str) -> None:
    click.echo(f"kplane chaos: {msg}", err=True)
    sys.exit(1)


def _fault(data_dir: Path, act: Callable[[Any], Coroutine[Any, Any, Any]]) -> None:
    from kplane.chaos.faults import ChaosError, Cluster

    try:
        cluster = Cluster(data_dir)
        rec = asyncio.run(act(cluster))
    except ChaosError as e:
        _fail(str(e))
        return
    rev = f"revision {rec.revision}" if rec.revision is not None else "revision unknown (apiserver unreachable)"
    click.echo(f"{rec.fault} {rec.target}: {rec.detail} [{rev}]")


@click.group("chaos")
def chaos() -> None:
    """Inject faults into the local cluster and run chaos scenarios (docs/chaos.md)."""


@chaos.command("kill-node")
@click.argument("node")
@_data_dir
def kill_node(node: str, data_dir: Path) -> None:
    """SIGKILL NODE's kubelet, every pod process it runs and its proxy: a crashed machine."""
    _fault(data_dir, lambda c: c.kill_node(node))


@chaos.command("freeze-node")
@click.argument("node")
@_data_dir
def freeze_node(node: str, data_dir: Path) -> None:
    """SIGSTOP NODE's kubelet: its heartbeats stop, its pods keep running (a hung node)."""
    _fault(data_dir, lambda c: c.freeze_node(node))


@chaos.command("thaw-node")
@click.argument("node")
@_data_dir
def thaw_node(node: str, data_dir: Path) -> None:
    """SIGCONT NODE's frozen kubelet."""
    _fault(data_dir, lambda c: c.thaw_node(node))


@chaos.command("restart-node")
@click.argument("node")
@_data_dir
def restart_node(node: str, data_dir: Path) -> None:
    """Start NODE's kubelet (and proxy) again with the original arguments (stopping it first if it runs)."""
    _fault(data_dir, lambda c: c.restart_node(node))


@chaos.command("kill")
@click.argument("component")
@click.option("--leader", is_flag=True, help="The replica holding the component's Lease in kube-system.")
@_data_dir
def kill(component: str, leader: bool, data_dir: Path) -> None:
    """SIGKILL COMPONENT: apiserver, scheduler, controller-manager, etcd (or a standby, e.g. scheduler-2)."""
    _fault(data_dir, lambda c: c.kill(component, leader=leader))


@chaos.command("kill-etcd")
@_data_dir
def kill_etcd(data_dir: Path) -> None:
    """SIGKILL etcd (the one `kplane up` started)."""
    _fault(data_dir, lambda c: c.kill("etcd"))


@chaos.command("restart")
@click.argument("component")
@_data_dir
def restart(component: str, data_dir: Path) -> None:
    """Restart COMPONENT (SIGTERM, then start it with its original arguments); start it if it is down."""
    _fault(data_dir, lambda c: c.restart(component))


@chaos.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.html, report.png, result.json and timeline.jsonl here.")
@click.option("--no-screenshot", is_flag=True, help="Skip the Chromium screenshot.")
@_data_dir
def run(scenario: Path, report_dir: Path | None, no_screenshot: bool, data_dir: Path) -> None:
    """Run SCENARIO against the cluster; exit 1 when a step fails or an invariant is violated."""
    from kplane.chaos.faults import ChaosError, Cluster
    from kplane.chaos.report import terminal_summary, write_report
    from kplane.chaos.runner import Runner
    from kplane.chaos.scenario import ScenarioError, load_scenario

    try:
        sc = load_scenario(scenario)
    except ScenarioError as e:
        _fail(str(e))
        return
    from kplane.logs import configure_logging

    configure_logging("kplane-chaos", level="error")  # reconnects during faults are expected
    try:
        cluster = Cluster(data_dir)
        result = asyncio.run(Runner(sc, cluster, say=lambda m: click.echo(m)).run())
    except ChaosError as e:
        _fail(str(e))
        return
    click.echo("")
    for line in terminal_summary(result):
        click.echo(line)
    if report_dir is not None:
        written = write_report(result, report_dir, png=not no_screenshot)
        click.echo(f"report: {written['html']}" + (f", {written['png']}" if "png" in written else ""))
        if "png_skipped" in written:
            click.echo(f"no screenshot: {written['png_skipped']}")
    sys.exit(0 if result.ok else 1)


@chaos.command("validate")
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def validate(scenarios: tuple[Path, ...]) -> None:
    """Check scenario files without running them (every problem, with its field path)."""
    from kplane.chaos.scenario import ScenarioError, load_scenario

    bad = 0
    for path in scenarios:
        try:
            sc = load_scenario(path)
            click.echo(f"{path}: ok ({len(sc.steps)} steps)")
        except ScenarioError as e:
            bad += 1
            click.echo(str(e), err=True)
    sys.exit(1 if bad else 0)


def register(cli: click.Group) -> None:
    cli.add_command(chaos)
