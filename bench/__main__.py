"""Run the benchmarks: `python -m bench [NAME ...]` (all when no name is given)."""

from __future__ import annotations

import argparse
import importlib
import sys

from bench.harness import format_table, write_results

# Every benchmark module under bench/, in the order they run.
BENCHMARKS: list[str] = [
    "stack_up",
    "trainer_throughput",
    "dag_parse",
    "local_runtime",
    "sweep_scheduling",
    "real_airflow",
    "cluster_harness",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {BENCHMARKS})"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    everything = []
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        print(f">> bench {name}", flush=True)
        measurements = module.run()
        path = write_results(name, measurements)
        print(format_table(measurements))
        print(f"   results: {path}", flush=True)
        everything.extend(measurements)
    if everything:
        print("\n" + format_table(everything))
    return 0


if __name__ == "__main__":
    sys.exit(main())
