"""Where a build's time went: `python -m bench.build_profile <run_results.json> <manifest.json>`.

Prints node time summed per area of the project (bench.results.node_area) and the slowest
nodes, with the CPU each used when given the build's CPU samples. The benchmark keeps both
files and the samples of every dbt phase in its work folder (bench/work/<size>/
run_results_<phase>.json, manifest_<phase>.json, cpu_<phase>.txt); any dbt target/ works.
Node times of a build with 2 threads include the waits of two nodes sharing 2 cores.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import results as R


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_results", type=Path)
    parser.add_argument("manifest", type=Path, nargs="?",
                        help="the same build's manifest.json (for model folders)")
    parser.add_argument("--top", type=int, default=20, help="slowest nodes listed")
    parser.add_argument("--cpu-timeline", type=Path,
                        help="the same build's CPU samples (bench/work/<size>/cpu_<phase>.txt): "
                             "adds each node's CPU seconds and cores busy")
    args = parser.parse_args(argv)
    manifest = json.loads(args.manifest.read_text()) if args.manifest else None
    intervals = R.node_intervals(json.loads(args.run_results.read_text()), manifest)
    summary = R.summarize_build(intervals)
    print(f"{summary['nodes']} nodes, node span {summary['node_span_s']:.1f} s, "
          f"SQL part {summary['sql_wall_s']:.1f} s, Python part "
          f"{summary['python_wall_s']:.1f} s\n")
    print(R.profile_table(intervals, manifest))
    slowest = sorted(intervals, key=lambda n: -n["execution_time"])[:args.top]
    print()
    if args.cpu_timeline:
        samples = R.parse_cpu_timeline(args.cpu_timeline.read_text())
        cpu = R.cpu_between(samples, min(n["start"] for n in intervals),
                            max(n["end"] for n in intervals))
        print(f"CPU over the node span: {cpu:.1f} s, {cpu / summary['node_span_s']:.2f} "
              f"cores busy on average\n")
        print(R.markdown_table(["node", "language", "s", "CPU s", "cores busy"],
                               [[n["unique_id"], n["language"], n["execution_time"],
                                 n["cpu_s"], n["cores"]]
                                for n in R.node_cpu(slowest, samples)]))
    else:
        print(R.markdown_table(["node", "language", "s"],
                               [[n["unique_id"], n["language"], n["execution_time"]]
                                for n in slowest]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
