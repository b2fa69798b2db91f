"""A leader-election candidate process for tests/integration/test_leaderelection.py.

    python tests/integration/leader_candidate.py --server ADDR --lock NAME --namespace NS \
        --identity ID --lease 3 --renew 2 --retry 0.5 --log FILE

Appends flushed lines `<unix time> <identity> <what>` to FILE (opened for append, so several
candidates can share it): `started leading`, `stopped leading`, `exiting <code>`, and, while
leading, `write` about every 0.2 s. A write line is appended only if `is_leader()` returned True
just before it (guard before write); its time is read *before* the guard, so a write that passed
its guard before the process was frozen never carries a time after the freeze.

Exit codes: 0 after SIGTERM/SIGINT (run() cancelled, the lease released), 1 when leadership is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from typing import TextIO

from kplane.client.client import Client
from kplane.client.leaderelection import LeaderElectionConfig, LeaderElector
from kplane.logs import configure_logging

WRITE_INTERVAL = 0.2


def note(out: TextIO, identity: str, what: str, at: float | None = None) -> None:
    out.write(f"{time.time() if at is None else at:.6f} {identity} {what}\n")
    out.flush()


async def main(args: argparse.Namespace) -> int:
    out = open(args.log, "a", encoding="utf-8")
    config = LeaderElectionConfig(args.lock, args.namespace, identity=args.identity, lease_duration=args.lease,
                                  renew_deadline=args.renew, retry_period=args.retry, release_on_cancel=True)
    async with Client([args.server], identity=args.identity, timeout=5.0) as client:
        elector: LeaderElector

        async def lead() -> None:
            note(out, args.identity, "started leading")
            while True:
                at = time.time()
                if elector.is_leader():
                    note(out, args.identity, "write", at)
                await asyncio.sleep(WRITE_INTERVAL)

        async def stopped() -> None:
            note(out, args.identity, "stopped leading")

        elector = LeaderElector(client, config, on_started_leading=lead, on_stopped_leading=stopped)
        run = asyncio.create_task(elector.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, run.cancel)
        try:
            await run
            code = 1
        except asyncio.CancelledError:
            code = 0
    note(out, args.identity, f"exiting {code}")
    out.close()
    return code


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--lock", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--renew", type=float, default=2.0)
    parser.add_argument("--retry", type=float, default=0.5)
    parser.add_argument("--log", required=True)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    configure_logging("leader-candidate", fmt="json")
    sys.exit(asyncio.run(main(arguments)))
