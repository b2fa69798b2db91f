"""`python -m scheduler`: the kplane scheduler (leader-elected; several may run, one schedules)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from pathlib import Path

import yaml

from kplane.durations import parse_duration
from kplane.logs import configure_logging, get_logger


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scheduler", description="kplane scheduler")
    parser.add_argument("--server", default="", help="apiserver address(es) HOST:PORT[,HOST:PORT] "
                                                    "(default: from the client config)")
    parser.add_argument("--config", default="", help="scheduler profiles (YAML; see scheduler/profile.py)")
    parser.add_argument("--metrics-port", type=int, default=0, help="Prometheus /metrics port (0: off)")
    parser.add_argument("--leader-elect", default="true", choices=["true", "false"])
    parser.add_argument("--leader-elect-lease-duration", default="15s")
    parser.add_argument("--leader-elect-renew-deadline", default="10s")
    parser.add_argument("--leader-elect-retry-period", default="2s")
    parser.add_argument("--identity", default="", help="leader election identity (default: host_pid)")
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    parser.add_argument("--log-level", default="info")
    ns = parser.parse_args(argv)
    configure_logging("scheduler", ns.log_format, ns.log_level)
    log = get_logger(component="scheduler")
    from scheduler.profile import ConfigError, load_profiles

    try:
        config = yaml.safe_load(Path(ns.config).read_text()) if ns.config else None
        profiles, _ = load_profiles(config)
    except (OSError, yaml.YAMLError, ConfigError) as exc:
        print(f"scheduler: invalid --config {ns.config}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from kplane.config import component_servers

    servers = component_servers("scheduler", ns.server)
    if ns.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(ns.metrics_port, addr="127.0.0.1")
    try:
        asyncio.run(_run(servers, profiles, ns))
    except KeyboardInterrupt:
        pass
    log.info("stopped")


async def _run(servers: list[str], profiles: list, ns: argparse.Namespace) -> None:  # type: ignore[type-arg]
    from kplane.client.client import Client
    from kplane.client.events import EventRecorder
    from kplane.client.leaderelection import LeaderElectionConfig, LeaderElector
    from scheduler.scheduler import Scheduler

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    identity = ns.identity or f"{socket.gethostname()}_{__import__('os').getpid()}"
    async with Client(servers, identity="kube-scheduler") as client:
        recorder = EventRecorder(client, component="default-scheduler", host=socket.gethostname())
        await recorder.start()

        electors: list[LeaderElector] = []

        async def lead() -> None:
            may_write = electors[-1].is_leader if electors else None
            await Scheduler(client, profiles, recorder=recorder, may_write=may_write).run()

        if ns.leader_elect == "true":
            config = LeaderElectionConfig(
                lock_name="kube-scheduler", identity=identity,
                lease_duration=parse_duration(ns.leader_elect_lease_duration),
                renew_deadline=parse_duration(ns.leader_elect_renew_deadline),
                retry_period=parse_duration(ns.leader_elect_retry_period))

            async def elect_forever() -> None:
                while True:  # lost leadership: stop scheduling, then campaign again
                    electors.append(LeaderElector(client, config, on_started_leading=lead))
                    await electors[-1].run()

            work = asyncio.create_task(elect_forever())
        else:
            work = asyncio.create_task(lead())
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await work
        stopper.cancel()
        await recorder.stop()
        for task in done:
            if task is work and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


if __name__ == "__main__":
    main()
