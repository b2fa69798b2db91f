"""`python -m bench [NAME ...] [--quick]`: run benchmarks, print one JSON object per line.

Each benchmark reports figures with their unit in the key (`creates_per_s`, `p99_ms`) and, where
there is a same-run baseline, `baseline_<figure>` and `ratio` (kplane / baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys

BENCHMARKS = ("api_write", "watch_fanout", "informer_recovery", "scheduler_throughput", "scheduler_decision",
              "history", "deployment_rollout", "pod_startup", "service_proxy", "node_recovery")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ns = parser.parse_args(argv)
    from kplane.logs import configure_logging

    configure_logging("bench", "json", "warning")  # stdout carries only the JSON results
    names = ns.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        for result in asyncio.run(module.run(quick=ns.quick)):
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
