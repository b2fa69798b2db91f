"""`kplane`: run a cluster on this machine (`up`, `status`, `down`) and run single components.

This module must not import gRPC: `kplane up` spawns its components after it starts, and a
process must never fork after gRPC has started in it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from kplane.cli.chaos import register as register_chaos_commands
from kplane.cli.history import register as register_history_commands
from kplane.cluster.components import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_SERVICE_CIDR,
    ClusterOptions,
    check_cluster_cidr,
    check_service_cidr,
)
from kplane.cluster.console import Console
from kplane.cluster.launcher import DEFAULT_DATA_DIR, UpSettings, cluster_status, run_down, run_up
from kplane.cluster.spec import PROFILES
from kplane.cluster.state import StateError
from kplane.config import default_config_path
from kplane.logs import LOG_FORMATS, configure_logging

_DATA_DIR_HELP = "Directory of the cluster's state, etcd data and logs."


def _port(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if not 0 < value < 65536:
        raise click.BadParameter("must be a TCP port (1-65535)")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kplane")
def cli() -> None:
    """Run a kplane cluster: etcd, the apiserver and (as they arrive) the scheduler,
    controller-manager and kubelets, each a separate process on 127.0.0.1."""


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default="~/.kplane/data",
    help=_DATA_DIR_HELP,
)
@click.option(
    "--nodes",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Number of kubelets (node-1 ... node-N).",
)
@click.option(
    "--etcd-servers",
    default=None,
    metavar="URLS",
    help="Use this running etcd (http://HOST:PORT[,...]) instead of starting one.",
)
@click.option(
    "--etcd-port",
    type=int,
    default=2379,
    show_default=True,
    callback=_port,
    help="Client port of the etcd kplane starts.",
)
@click.option(
    "--etcd-peer-port",
    type=int,
    default=2380,
    show_default=True,
    callback=_port,
    help="Peer port of the etcd kplane starts.",
)
@click.option(
    "--port", type=int, default=6443, show_default=True, callback=_port, help="The apiserver's gRPC port."
)
@click.option(
    "--metrics-port-base",
    type=click.IntRange(0, 65000),
    default=0,
    show_default=True,
    help="First /metrics port (apiserver; +1 scheduler, +2 controller-manager, +2+i node-i); "
    "0 lets each component choose.",
)
@click.option(
    "--compaction-retention",
    default="1h",
    show_default=True,
    help="History the apiserver keeps before it compacts etcd (e.g. 1h, 30m).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Client config to write [default: $KPLANE_CONFIG or ~/.kplane/config].",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="auto",
    show_default=True,
    help="Console output: rendered lines on a terminal (auto), or JSON lines.",
)
@click.option(
    "--audit-level",
    type=click.Choice(["None", "Metadata", "Request", "RequestResponse"]),
    default="Metadata",
    show_default=True,
    help="The apiserver's audit log (DATA_DIR/logs/audit.log): who did what; None turns it off.",
)
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default="default",
    show_default=True,
    help="Timings: default (Kubernetes-like) or fast (node loss detected in 5s, pods evicted 5s later; "
    "for chaos runs). See docs/chaos.md.",
)
@click.option(
    "--cluster-cidr",
    default=DEFAULT_CLUSTER_CIDR,
    show_default=True,
    help="Pod IPs (inside 127.0.0.0/8): node i gets the i-th /24. Give side-by-side clusters disjoint ranges.",
)
@click.option(
    "--service-cluster-ip-range",
    default=DEFAULT_SERVICE_CIDR,
    show_default=True,
    help="Service ClusterIPs (inside 127.0.0.0/8; Kubernetes' default is 10.96.0.0/12). "
    "Give side-by-side clusters disjoint ranges.",
)
@click.option(
    "--service-node-port-range",
    default=DEFAULT_NODE_PORT_RANGE,
    show_default=True,
    help="Node ports of NodePort Services (FROM-TO).",
)
@click.option(
    "--control-plane-replicas",
    type=click.IntRange(1, 5),
    default=1,
    show_default=True,
    help="Scheduler and controller-manager processes each (one leads, the others stand by).",
)
@click.option(
    "--fake-nodes",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also run N simulated nodes (fake-0 ...) in one `kubelet --runtime fake` process.",
)
@click.option("--restart-on-failure", is_flag=True, help="Restart a component that dies (with back-off).")
@click.option(
    "--startup-timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds each component gets to become healthy.",
)
def up(
    data_dir: Path,
    nodes: int,
    etcd_servers: str | None,
    etcd_port: int,
    etcd_peer_port: int,
    port: int,
    metrics_port_base: int,
    compaction_retention: str,
    audit_level: str,
    config_path: Path | None,
    log_format: str,
    profile: str,
    cluster_cidr: str,
    service_cluster_ip_range: str,
    service_node_port_range: str,
    control_plane_replicas: int,
    fake_nodes: int,
    restart_on_failure: bool,
    startup_timeout: float,
) -> None:
    """Start a cluster and supervise it until Ctrl-C (or `kplane down`)."""
    cidr_error = check_cluster_cidr(cluster_cidr, nodes, fake_nodes) or \
        check_service_cidr(service_cluster_ip_range, cluster_cidr)
    if cidr_error:
        click.echo(f"kplane: {cidr_error}", err=True)
        sys.exit(1)
    configure_logging("kplane", fmt=log_format)
    data_dir = data_dir.expanduser().absolute()
    opts = ClusterOptions(
        data_dir=data_dir,
        nodes=nodes,
        etcd_servers=[etcd_servers] if etcd_servers else None,
        etcd_port=etcd_port,
        etcd_peer_port=etcd_peer_port,
        port=port,
        metrics_port_base=metrics_port_base,
        compaction_retention=compaction_retention,
        audit_level=audit_level,
        profile=profile,
        cluster_cidr=cluster_cidr,
        service_cluster_ip_range=service_cluster_ip_range,
        service_node_port_range=service_node_port_range,
        control_plane_replicas=control_plane_replicas,
        fake_nodes=fake_nodes,
    )
    settings = UpSettings(
        config_path=(config_path or default_config_path()).expanduser().absolute(),
        restart_on_failure=restart_on_failure,
        startup_timeout=startup_timeout,
    )
    console = Console(fmt=log_format)
    sys.exit(asyncio.run(run_up(opts, settings, console)))


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default="~/.kplane/data",
    help=_DATA_DIR_HELP,
)
def status(data_dir: Path) -> None:
    """Show each component's pid, address and health; exit 1 unless all are healthy."""
    from rich.console import Console as RichConsole
    from rich.table import Table

    data_dir = data_dir.expanduser().absolute()
    out = RichConsole()
    try:
        state, rows = asyncio.run(cluster_status(data_dir))
    except StateError as e:
        click.echo(f"kplane: {e}", err=True)
        sys.exit(1)
    table = Table(title=f"kplane cluster in {data_dir}", title_justify="left", box=None, pad_edge=False)
    for col in ("COMPONENT", "PID", "ADDRESS", "HEALTHY", "DETAIL"):
        table.add_column(col, overflow="fold")
    for r in rows:
        mark = "[green]yes[/green]" if r.healthy else "[bold red]no[/bold red]"
        table.add_row(r.component, r.pid, r.address, mark, r.detail)
    out.print(table)
    profile = PROFILES.get(str(state.get("profile") or "default"))
    if profile is not None:
        out.print(f"profile: {profile.name} — {profile.summary}", highlight=False, markup=False)
    _print_retention(out, rows)
    ok = all(r.healthy for r in rows)
    if not ok:
        out.print(f"[red]cluster is not healthy[/red]; logs are in {state.get('log_dir', data_dir / 'logs')}")
    sys.exit(0 if ok else 1)


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default="~/.kplane/data",
    help=_DATA_DIR_HELP,
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds each process gets after SIGTERM before SIGKILL.",
)
def down(data_dir: Path, timeout: float) -> None:
    """Stop the cluster started from --data-dir (by `kplane up` anywhere on this machine)."""
    data_dir = data_dir.expanduser().absolute()
    sys.exit(run_down(data_dir, lambda msg: click.echo(f"kplane: {msg}"), timeout=timeout))


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def apiserver(args: tuple[str, ...]) -> None:
    """Run the apiserver in this process: `python -m apiserver ARGS...` (try `--help`)."""
    argv = [sys.executable, "-m", "apiserver", *args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def proxy(args: tuple[str, ...]) -> None:
    """Run a node proxy in this process: `python -m proxy ARGS...` (try `--help`)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "proxy", *args])


def _print_retention(out: object, rows: Sequence[object]) -> None:
    """The history the apiserver still holds and its compaction policy (kplane/cli/history.py)."""
    from kplane.cli.history import retention_line

    api = next((r for r in rows if getattr(r, "component", "") == "apiserver" and getattr(r, "healthy", False)), None)
    line = retention_line(str(getattr(api, "address", ""))) if api is not None else None
    if line:
        out.print(line, highlight=False, markup=False, soft_wrap=True)  # type: ignore[attr-defined]


# history, events, timeline: the internals made visible (kplane/cli/history.py, timeline.py)
register_history_commands(cli)
# chaos: faults and scenarios against the running cluster (kplane/cli/chaos.py, kplane/chaos/)
register_chaos_commands(cli)


def main() -> None:
    cli(prog_name="kplane")


if __name__ == "__main__":
    main()
