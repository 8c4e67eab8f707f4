"""Pure parts of the benchmark: run_results parsing, ratios, scaling, formatting.

No I/O beyond what the caller passes in, so everything here is unit-tested without dbt
or Spark (tests/python/test_bench.py). Units: seconds and bytes unless a name says GB.
"""
from __future__ import annotations

import bisect
import math
from datetime import datetime
from typing import Iterable, Sequence

# The targets of the issue "Performance at full scale" (2 cores / 24 GB, 67.5M events).
TARGETS = {
    "full_build_s": 600.0,          # full build incl. ML <= 10 min (67.5M month)
    "peak_rss_gb": 8.0,             # peak RSS of the build's process tree <= 8 GB
    "a_sql_over_raw_scan": 25.0,
    "b_incremental_over_full": 0.10,
    "c_scaling_exponent": 1.1,
    "d_dbt_marts_over_spark": 0.2,
}

SIZES = {"1M": 1_000_000, "10M": 10_000_000, "67.5M": 67_500_000}


def parse_size(text: str) -> int:
    """Events for a size label: '1M' -> 1_000_000, '67.5M' -> 67_500_000, '250k', '12345'."""
    label = text.strip()
    if label in SIZES:
        return SIZES[label]
    scale = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}.get(label[-1:], 1)
    number = label[:-1] if scale != 1 else label
    try:
        value = float(number) * scale
    except ValueError as error:
        raise ValueError(f"not a size: {text!r} (e.g. 1M, 10M, 67.5M, 250k)") from error
    if value < 1 or value != int(value):
        raise ValueError(f"not a whole positive number of events: {text!r}")
    return int(value)


def size_label(events: int) -> str:
    """Inverse of parse_size for round sizes: 67_500_000 -> '67.5M'."""
    for label, value in SIZES.items():
        if value == events:
            return label
    if events % 1_000_000 == 0:
        return f"{events // 1_000_000}M"
    if events % 100_000 == 0:
        return f"{events / 1_000_000:g}M"
    return str(events)


def _seconds(timestamp: str) -> float:
    """POSIX seconds of a dbt run_results timestamp ('2026-11-23T17:00:01.123456Z')."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def node_intervals(run_results: dict, manifest: dict | None = None) -> list[dict]:
    """One dict per executed node: unique_id, resource_type, language, status, start, end.

    start/end are POSIX seconds of the node's `execute` timing (falling back to the span
    of all its timings). language is the manifest node's ('python' for dbt Python models),
    'sql' for nodes the manifest does not list (seeds, tests, or no manifest given).
    Nodes without timings (e.g. skipped) are left out.
    """
    nodes = (manifest or {}).get("nodes", {})
    intervals = []
    for result in run_results.get("results", []):
        timings = result.get("timing") or []
        execute = [t for t in timings if t.get("name") == "execute"]
        chosen = execute or timings
        if not chosen or not chosen[0].get("started_at") or not chosen[-1].get("completed_at"):
            continue
        unique_id = result["unique_id"]
        language = nodes.get(unique_id, {}).get("language", "sql")
        intervals.append({
            "unique_id": unique_id,
            "resource_type": unique_id.split(".", 1)[0],
            "language": language or "sql",
            "status": result.get("status"),
            "start": _seconds(chosen[0]["started_at"]),
            "end": _seconds(chosen[-1]["completed_at"]),
            "execution_time": float(result.get("execution_time") or 0.0),
        })
    return intervals


def union_length(spans: Iterable[tuple[float, float]]) -> float:
    """Total length covered by the union of [start, end] spans (overlaps counted once)."""
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(spans):
        if end < start:
            raise ValueError(f"span ends before it starts: {(start, end)}")
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def summarize_build(intervals: Sequence[dict]) -> dict:
    """Split a build's node time into its SQL and Python parts.

    - sql_wall_s: length of the union of the execution intervals of every non-Python node
      (SQL models, seeds, data tests): the time during which at least one SQL node ran.
      This is "the SQL part of the build" in ratio (a).
    - python_wall_s: the same for dbt Python models.
    - node_span_s: first node start to last node end (excludes dbt's start-up and parse).
    - sql_node_sum_s / python_node_sum_s: summed execution_time (counts parallel time twice).
    With 2 dbt threads a SQL node can run beside a Python node; that overlap is in both walls.
    """
    sql = [i for i in intervals if i["language"] != "python"]
    python = [i for i in intervals if i["language"] == "python"]
    span = (max(i["end"] for i in intervals) - min(i["start"] for i in intervals)
            if intervals else 0.0)
    return {
        "nodes": len(intervals),
        "python_nodes": len(python),
        "node_span_s": span,
        "sql_wall_s": union_length((i["start"], i["end"]) for i in sql),
        "python_wall_s": union_length((i["start"], i["end"]) for i in python),
        "sql_node_sum_s": sum(i["execution_time"] for i in sql),
        "python_node_sum_s": sum(i["execution_time"] for i in python),
        "failed": sorted(i["unique_id"] for i in intervals
                         if i["status"] in ("error", "fail", "runtime error")),
    }


def parse_cpu_timeline(text: str) -> list[tuple[float, float]]:
    """(POSIX seconds, tree CPU seconds so far) samples, as proctree.run_measured writes them."""
    return [(float(t), float(c)) for t, c in
            (line.split() for line in text.splitlines() if line.strip())]


def cpu_between(samples: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """CPU seconds the process tree used from start to end, interpolated between samples."""
    times = [t for t, _ in samples]

    def at(moment: float) -> float:
        i = min(max(bisect.bisect_left(times, moment), 1), len(samples) - 1)
        (t0, c0), (t1, c1) = samples[i - 1], samples[i]
        if moment <= t0:
            return c0
        if moment >= t1:
            return c1
        return c0 + (c1 - c0) * (moment - t0) / (t1 - t0)

    return at(end) - at(start) if len(samples) >= 2 else 0.0


def node_cpu(intervals: Sequence[dict], samples: Sequence[tuple[float, float]]) -> list[dict]:
    """The intervals with cpu_s (CPU used while the node ran) and cores (cpu_s per second).

    Exact per node only with one dbt thread: nodes running side by side share the CPU.
    """
    nodes = []
    for i in intervals:
        cpu = cpu_between(samples, i["start"], i["end"])
        wall = i["end"] - i["start"]
        nodes.append({**i, "cpu_s": cpu, "cores": cpu / wall if wall > 0 else None})
    return nodes


def node_area(unique_id: str, manifest: dict | None = None) -> str:
    """The part of the project a node belongs to, for the build profile: a model's folder
    under models/ (a model family's features and models together as 'ml/<family>'),
    'data tests', 'unit tests' or 'seeds'."""
    kind = unique_id.split(".", 1)[0]
    if kind in ("test", "unit_test", "seed"):
        return {"test": "data tests", "unit_test": "unit tests", "seed": "seeds"}[kind]
    path = ((manifest or {}).get("nodes", {}).get(unique_id, {})
            .get("original_file_path", ""))
    parts = path.split("/")[1:-1] if path.startswith("models/") else []
    if parts[:2] == ["intermediate", "ml"]:
        parts = ["ml", *parts[2:]]
    return "/".join(parts[:2]) or kind


def profile_by_area(intervals: Sequence[dict], manifest: dict | None = None) -> list[dict]:
    """Summed node execution time per area (node_area), largest first, with its nodes'
    count, share of all node time and slowest node."""
    areas: dict[str, dict] = {}
    for node in intervals:
        area = areas.setdefault(node_area(node["unique_id"], manifest),
                                {"seconds": 0.0, "nodes": 0, "slowest": None})
        area["seconds"] += node["execution_time"]
        area["nodes"] += 1
        if area["slowest"] is None or node["execution_time"] > area["slowest"][1]:
            area["slowest"] = (node["unique_id"].split(".")[-1], node["execution_time"])
    total = sum(a["seconds"] for a in areas.values()) or 1.0
    return sorted(({"area": name, **a, "share": a["seconds"] / total}
                   for name, a in areas.items()), key=lambda a: -a["seconds"])


def profile_table(intervals: Sequence[dict], manifest: dict | None = None) -> str:
    """profile_by_area as a markdown table."""
    rows = [[a["area"], a["nodes"], a["seconds"], f"{a['share']:.0%}",
             f"{a['slowest'][0]} ({a['slowest'][1]:.1f} s)"]
            for a in profile_by_area(intervals, manifest)]
    return markdown_table(["area", "nodes", "node s", "share", "slowest node"], rows)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def scaling_exponent(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(time) on log(events): time ~ events ** exponent.

    points: (events, seconds) pairs, at least two distinct sizes, all positive.
    1.0 is linear scaling; the target is <= 1.1. None with fewer than two sizes.
    """
    clean = [(float(n), float(t)) for n, t in points]
    if any(n <= 0 or t <= 0 for n, t in clean):
        raise ValueError(f"sizes and times must be positive: {points}")
    if len({n for n, _ in clean}) < 2:
        return None
    xs = [math.log(n) for n, _ in clean]
    ys = [math.log(t) for _, t in clean]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    return sxy / sxx


def pairwise_exponents(points: Sequence[tuple[float, float]]) -> list[tuple[str, float]]:
    """Exponent between consecutive sizes: [('1M->10M', 0.93), ...], sorted by size."""
    ordered = sorted(points)
    return [
        (f"{size_label(int(n0))}->{size_label(int(n1))}",
         math.log(t1 / t0) / math.log(n1 / n0))
        for (n0, t0), (n1, t1) in zip(ordered, ordered[1:]) if n1 != n0
    ]


def ratios(result: dict) -> dict:
    """Ratios (a), (b), (d) of one size's result dict (see bench.run for its shape)."""
    phases = result["phases"]

    def wall(name: str, key: str = "wall_s") -> float | None:
        return (phases.get(name) or {}).get(key)

    return {
        "a_sql_over_raw_scan": ratio(wall("full_build", "sql_wall_s"),
                                     wall("raw_scan_warm", "query_s")),
        "b_incremental_over_full": ratio(wall("incremental_day"), wall("full_build")),
        "d_dbt_marts_over_spark": ratio(wall("marts_dbt", "node_span_s"),
                                        wall("marts_spark", "compute_s")),
    }


def verdict(value: float | None, target: float) -> str:
    """'ok' / 'MISSED' against an upper-bound target, '-' when there is no value."""
    if value is None:
        return "-"
    return "ok" if value <= target else "MISSED"


def gb(value_bytes: float | None) -> float | None:
    """Bytes to GB (10**9), None stays None."""
    return None if value_bytes is None else value_bytes / 1e9


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; floats with 2 decimals, None as '-'."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(cell) for cell in row) + " |")
    return "\n".join(lines)


PHASE_ORDER = [
    ("generate", "generate the dataset"),
    ("raw_scan_cold", "DuckDB one pass over every raw column (first run)"),
    ("raw_scan_warm", "the same pass again (page cache warm)"),
    ("full_build", "dbt build --selector production, all days, fresh warehouse"),
    ("incremental_setup", "daily run (--selector daily), all days but the last, fresh warehouse"),
    ("incremental_day", "daily run after adding the last day's file"),
    ("marts_dbt", "dbt run of fct_sessions + fct_funnel_daily and parents"),
    ("marts_spark", "pyspark local[*]: the same two marts"),
]


# The in-engine time of each phase: what the ratios divide (see BENCHMARKS.md).
IN_ENGINE = {
    "raw_scan_cold": "query_s",
    "raw_scan_warm": "query_s",
    "full_build": "sql_wall_s",
    "incremental_setup": "sql_wall_s",
    "incremental_day": "sql_wall_s",
    "marts_dbt": "node_span_s",
    "marts_spark": "compute_s",
}


def phase_rows(result: dict) -> list[list]:
    """Rows (size, phase, wall s, in-engine s, CPU s, cores busy, peak RSS tree GB, note)
    of one size; cores busy = CPU s / wall s, the average number of cores the phase used."""
    rows = []
    for name, description in PHASE_ORDER:
        phase = result["phases"].get(name)
        if phase is None:
            continue
        inner = phase.get(IN_ENGINE.get(name, ""))
        cpu, wall = phase.get("cpu_s"), phase.get("wall_s")
        rows.append([result["size"], name, wall, inner, cpu,
                     cpu / wall if cpu is not None and wall else None,
                     gb(phase.get("peak_rss_tree_bytes")),
                     phase.get("note") or description])
    return rows


def cpu_floor_line(result: dict, cores: int) -> str | None:
    """The full build's CPU work and the shortest wall that work allows on `cores` cores."""
    build = result["phases"].get("full_build", {})
    if build.get("cpu_s") is None or not build.get("wall_s"):
        return None
    return (f"{result['size']} full build: {build['cpu_s']:.0f} CPU s in {build['wall_s']:.0f} s "
            f"wall, {build['cpu_s'] / build['wall_s']:.2f} of {cores} cores busy on average; "
            f"the same work can't take less than {build['cpu_s'] / cores:.0f} s on this machine.")


def phase_table(results: Sequence[dict]) -> str:
    """The phase table of one or more sizes."""
    header = ["size", "phase", "wall s", "in-engine s", "CPU s", "cores busy",
              "peak RSS GB (tree)", "what"]
    rows = [row for result in results for row in phase_rows(result)]
    return markdown_table(header, rows)


def ratio_table(results: Sequence[dict], exponent: float | None,
                exponent_note: str = "") -> str:
    """Ratios (a), (b), (d) per size, (c) once, and the absolute targets, with verdicts."""
    rows = []
    for result in results:
        values = ratios(result)
        for key, label in [
            ("a_sql_over_raw_scan", "(a) SQL part of full build / raw Parquet scan"),
            ("b_incremental_over_full", "(b) one-day incremental / full build"),
            ("d_dbt_marts_over_spark", "(d) dbt marts / pyspark marts"),
        ]:
            rows.append([result["size"], label, values[key], TARGETS[key],
                         verdict(values[key], TARGETS[key])])
        full = result["phases"].get("full_build") or {}
        rows.append([result["size"], "full build wall s (target at 67.5M)",
                     full.get("wall_s"), TARGETS["full_build_s"],
                     verdict(full.get("wall_s"), TARGETS["full_build_s"])
                     if result["events"] >= SIZES["67.5M"] else "-"])
        peak = gb(full.get("peak_rss_tree_bytes"))
        rows.append([result["size"], "full build peak RSS GB (tree)", peak,
                     TARGETS["peak_rss_gb"], verdict(peak, TARGETS["peak_rss_gb"])])
    rows.append(["all", "(c) scaling exponent of full build node span " + exponent_note,
                 exponent, TARGETS["c_scaling_exponent"],
                 verdict(exponent, TARGETS["c_scaling_exponent"])])
    return markdown_table(["size", "ratio", "value", "target (<=)", "verdict"], rows)


def check_table(results: Sequence[dict]) -> str:
    """Cross-check of the two marts, DuckDB vs Spark: rows and additive totals."""
    rows = []
    for result in results:
        check = result.get("cross_check") or {}
        for mart, totals in check.items():
            duck, spark = totals.get("duckdb"), totals.get("spark")
            if spark is None:
                same = "-"
            else:
                differ = [name.strip() for name, d, s in
                          zip(totals["columns"].split(","), duck, spark)
                          if not math.isclose(d, s, rel_tol=1e-9, abs_tol=0.005)]
                same = "equal" if not differ else "DIFFER: " + ", ".join(differ)
            rows.append([result["size"], mart, totals["columns"],
                         " / ".join(_fmt(v) for v in duck),
                         "-" if spark is None else " / ".join(_fmt(v) for v in spark), same])
    return markdown_table(["size", "mart", "totals", "dbt/DuckDB", "pyspark", "check"], rows)


def machine_line(machine: dict) -> str:
    """One line describing the machine and the software."""
    return (f"{machine['cores']} cores ({machine.get('cpu_model', '?')}), "
            f"{machine['ram_gb']:.1f} GB RAM, load average at start "
            f"{machine.get('loadavg', '?')}; {machine.get('software', '')}").rstrip("; ")
