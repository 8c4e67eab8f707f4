"""Benchmark runner: `make bench SIZE=1M|10M|67.5M|all`, or `python -m bench.run --size 1M`.

For each size it generates (or reuses) a 30-day parquet month from 2019-11-01, one file per
day, and measures in separate processes, each with wall time and the peak RSS of its whole
process tree (bench/proctree.py):

  generate           python -m ml.synth (skipped when --data-dir holds a matching manifest)
  raw_scan_cold/warm one DuckDB pass over every raw column (bench/raw_scan.py), run twice:
                     the second run, page cache warm, is the denominator of ratio (a)
  full_build         dbt build of all days into a fresh warehouse
  incremental_setup  the daily run (dbt build --selector daily) of all days but the last
                     into another fresh warehouse
  incremental_day    the last day's file added, the daily run again: ratio (b)
  marts_dbt          dbt run --select +fct_sessions +fct_funnel_daily, fresh warehouse
  marts_spark        the same two marts in pyspark local[*] (bench/spark_marts.py)

and prints the phase table, the ratios against their targets and a row-count cross-check
of the two marts. Results go to a JSON file under --results-dir and a dated section is
appended to --benchmarks (BENCHMARKS.md). See BENCHMARKS.md for the definitions.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench import results as R
from bench.proctree import run_measured

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START_DATE = "2019-11-01"
DAYS = 30
MARTS = ["fct_sessions", "fct_funnel_daily"]


class BenchError(RuntimeError):
    """A phase failed: the message names it and its log."""


def machine() -> dict:
    """Cores, RAM (from /proc/meminfo), CPU model, load average and software versions."""
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    import duckdb
    from importlib.metadata import version
    return {
        "cores": os.cpu_count(),
        "ram_gb": mem_kb * 1024 / 1e9,
        "cpu_model": model,
        "loadavg": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "software": (f"Python {platform.python_version()}, duckdb {duckdb.__version__}, "
                     f"dbt-core {version('dbt-core')}, dbt-duckdb {version('dbt-duckdb')}"),
    }


def commit() -> str:
    """HEAD's hash, with '-dirty' when tracked files differ from it (the benchmark's own
    outputs, BENCHMARKS.md and bench/results, aside: runs of several sizes append to them)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, text=True,
                          capture_output=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                            ".", ":!BENCHMARKS.md", ":!bench/results"],
                           cwd=REPO, text=True, capture_output=True).stdout.strip()
    return head + ("-dirty" if dirty else "")


def measured(name: str, command: list[str], work: Path, *, env: dict | None = None,
             check: bool = True, cpu_timeline: Path | None = None) -> dict:
    """Run one phase, log to work/logs/<name>.log, raise BenchError on a non-zero exit."""
    log = work / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"  {name}: {shlex.join(command)}", flush=True)
    phase = run_measured(command, env=env, cwd=REPO, log_path=log, cpu_timeline=cpu_timeline)
    phase["log"] = str(log)
    print(f"  {name}: {phase['wall_s']:.1f} s, {phase['cpu_s']:.1f} CPU s, peak RSS (tree) "
          f"{phase['peak_rss_tree_bytes'] / 1e9:.2f} GB", flush=True)
    if check and phase["returncode"] != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BenchError(f"{name} exited with {phase['returncode']}; log {log}:\n{tail}")
    return phase


def last_json_line(path: str) -> dict:
    """The last line of a log that parses as a JSON object."""
    for line in reversed(Path(path).read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise BenchError(f"no JSON result line in {path}")


# --- data -----------------------------------------------------------------------------

def ensure_data(data_dir: Path, events: int, seed: int, fmt: str, work: Path) -> dict | None:
    """Generate the month into data_dir unless its manifest already matches; the phase or None."""
    wanted = {"seed": seed, "events": events, "start": START_DATE, "days": DAYS,
              "format": fmt, "split": "day"}
    manifest_path = data_dir / "truth" / "manifest.json"
    if manifest_path.exists():
        created = json.loads(manifest_path.read_text()).get("created_with", {})
        if all(created.get(k) == v for k, v in wanted.items()) and event_files(data_dir, fmt):
            print(f"  generate: reusing {data_dir} (manifest matches)", flush=True)
            return None
        print(f"  generate: {data_dir} holds another dataset ({created}); regenerating")
    data_dir.mkdir(parents=True, exist_ok=True)
    return measured("generate", [
        str(BIN / "python"), "-m", "ml.synth", "--events", str(events), "--start", START_DATE,
        "--days", str(DAYS), "--seed", str(seed), "--format", fmt, "--split", "day",
        "--out", str(data_dir), "--quiet"], work, env=python_env())


def event_files(data_dir: Path, fmt: str) -> list[Path]:
    """The day files, in date order (their names are the dates)."""
    return sorted((data_dir / "events").glob(f"*.{fmt}"))


# --- dbt ------------------------------------------------------------------------------

def python_env(**extra: str) -> dict:
    """The environment of every child: this repository's ml/ first on the path."""
    return {**os.environ, "PYTHONPATH": str(REPO), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            **extra}


def dbt_phase(name: str, args: list[str], warehouse: Path, events_glob: str, work: Path,
              memory_limit: str, threads: int) -> dict:
    """One measured dbt invocation on the `test` target; adds the node-time summary."""
    target = work / "target"
    env = python_env(DBT_PROFILES_DIR=str(REPO), DBT_TARGET="test",
                     DUCKDB_TEST_PATH=str(warehouse), REES46_EVENTS=events_glob,
                     DUCKDB_MEMORY_LIMIT=memory_limit, DBT_THREADS=str(threads))
    phase = measured(name, [str(BIN / "dbt"), *args, "--project-dir", str(REPO),
                            "--target-path", str(target), "--log-path", str(work / "logs")],
                     work, env=env, cpu_timeline=work / f"cpu_{name}.txt")  # bench.build_profile
    run_results = json.loads((target / "run_results.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    shutil.copy(target / "run_results.json", work / f"run_results_{name}.json")
    shutil.copy(target / "manifest.json", work / f"manifest_{name}.json")  # bench.build_profile
    summary = R.summarize_build(R.node_intervals(run_results, manifest))
    if summary["failed"]:
        raise BenchError(f"{name}: failed nodes {summary['failed']}")
    phase.update(summary)
    phase["command"] = "dbt " + " ".join(args)
    return phase


def fresh(path: Path) -> Path:
    """Remove a warehouse file, its WAL and DuckDB's spill folder."""
    for candidate in (path, path.with_name(path.name + ".wal")):
        candidate.unlink(missing_ok=True)
    shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)
    return path


def done_with(path: Path, keep: bool) -> None:
    """Free a measured warehouse's disk (16 GB at 67.5M events) unless --keep-warehouses."""
    if not keep:
        fresh(path)


# Totals compared between the two engines: rows and an additive column or two per mart.
CHECKS = {
    "fct_sessions": "count(*), sum(events), sum(purchases), sum(revenue)",
    "fct_funnel_daily": "count(*), sum(sessions), sum(sessions_with_purchase), sum(views)",
}


def mart_totals(source: str, mart: str, database: Path | None = None) -> list:
    """CHECKS[mart] over `source` (a table, or a read_parquet call), as plain numbers."""
    import duckdb
    con = duckdb.connect(str(database), read_only=True) if database else duckdb.connect()
    with con:
        row = con.sql(f"select {CHECKS[mart]} from {source}").fetchall()[0]
    return [float(v) if not isinstance(v, int) else v for v in row]


# --- one size -------------------------------------------------------------------------

def run_size(events: int, args: argparse.Namespace) -> dict:
    """All phases of one size; returns the result dict stored as JSON."""
    label = R.size_label(events)
    work = (args.work_dir / label).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data_dir = (args.data_dir or work / "data").resolve()
    print(f"\n== {label}: {events:,} events, work dir {work}", flush=True)
    phases: dict[str, dict] = {}

    generated = ensure_data(data_dir, events, args.seed, args.format, work)
    if generated:
        phases["generate"] = generated
    files = event_files(data_dir, args.format)
    if len(files) != DAYS:
        raise BenchError(f"expected {DAYS} day files in {data_dir}/events, found {len(files)}")
    glob = str(data_dir / "events" / f"*.{args.format}")

    scan = [str(BIN / "python"), str(REPO / "bench" / "raw_scan.py"), glob,
            "--memory-limit", args.memory_limit]
    for name in ("raw_scan_cold", "raw_scan_warm"):
        phases[name] = measured(name, scan, work, env=python_env())
        phases[name].update(last_json_line(phases[name]["log"]))
    phases["raw_scan_cold"]["note"] = (
        "first run after generation: files may still be in the page cache")

    common = dict(work=work, memory_limit=args.memory_limit, threads=args.threads)
    # The production path (what a schedule runs); the rolling-origin evaluation is measured
    # apart (issue 24): at 67.5M its recommendations replay alone outgrew 24 GB.
    build_args = ["build", "--selector", "production", *args.dbt_args]
    phases["full_build"] = dbt_phase("full_build", build_args, fresh(work / "full.duckdb"),
                                     glob, **common)
    done_with(work / "full.duckdb", args.keep_warehouses)

    # Incremental: a folder of links to all days but the last, then the last is added.
    increments = work / "incremental_events"
    shutil.rmtree(increments, ignore_errors=True)
    increments.mkdir()
    for path in files[:-1]:
        (increments / path.name).symlink_to(path)
    inc_glob = str(increments / f"*.{args.format}")
    inc_db = fresh(work / "incremental.duckdb")
    # The daily run touches only the models of selectors.yml's `daily`, so building just
    # those for days 1-29 gives it the same starting point as a full build would.
    daily_args = ["build", "--selector", "daily", *args.dbt_args]
    phases["incremental_setup"] = dbt_phase("incremental_setup", daily_args, inc_db, inc_glob,
                                            **common)
    (increments / files[-1].name).symlink_to(files[-1])
    phases["incremental_day"] = dbt_phase("incremental_day", daily_args, inc_db, inc_glob,
                                          **common)
    phases["incremental_day"]["note"] = f"adds {files[-1].name} to a build of the other days"
    done_with(inc_db, args.keep_warehouses)

    marts_db = fresh(work / "marts.duckdb")
    select = ["run", "--select", *(f"+{m}" for m in MARTS), *args.dbt_args]
    phases["marts_dbt"] = dbt_phase("marts_dbt", select, marts_db, glob, **common)
    cross_check = {m: {"columns": CHECKS[m], "duckdb": mart_totals(m, m, marts_db)}
                   for m in MARTS}
    done_with(marts_db, args.keep_warehouses)

    spark_python = REPO / ".venv-bench" / "bin" / "python"
    java = shutil.which("java", path=os.environ.get("JAVA_HOME", "") + "/bin:"
                        + os.environ.get("PATH", ""))
    if spark_python.exists() and java and not args.skip_spark:
        out = work / "spark_out"
        shutil.rmtree(out, ignore_errors=True)
        phases["marts_spark"] = measured("marts_spark", [
            str(spark_python), str(REPO / "bench" / "spark_marts.py"), glob, "--out", str(out),
            "--driver-memory", args.spark_driver_memory], work, env=dict(os.environ))
        phases["marts_spark"].update(last_json_line(phases["marts_spark"]["log"]))
        for mart in MARTS:
            cross_check[mart]["spark"] = mart_totals(
                f"read_parquet('{out / mart}/*.parquet')", mart)
    else:
        reason = ("--skip-spark" if args.skip_spark else
                  "no .venv-bench: `make bench-env`" if not spark_python.exists() else
                  "no java on PATH or JAVA_HOME: pyspark needs Java 17+")
        print(f"  marts_spark: skipped ({reason}); ratio (d) stays empty", flush=True)

    for phase in phases.values():
        phase.pop("returncode", None)
    return {"size": label, "events": events, "format": args.format, "seed": args.seed,
            "data_dir": str(data_dir), "phases": phases, "cross_check": cross_check,
            "ratios": None}


# --- reporting ------------------------------------------------------------------------

def exponent_from(results: list[dict], results_dir: Path, head: str) -> tuple[float | None, str]:
    """Scaling exponent of the full build over this run's sizes, completed from stored
    results of the same (clean) commit when this run has fewer than three sizes."""
    by_size = {r["events"]: r for r in results}
    source = "this run"
    if len(by_size) < 3 and not head.endswith("-dirty") and results_dir.exists():
        for path in sorted(results_dir.glob("*.json")):
            stored = json.loads(path.read_text())
            if stored.get("commit") != head:
                continue
            for result in stored.get("results", []):
                if result["events"] not in by_size:
                    by_size[result["events"]] = result
                    source = f"this run and {results_dir} at the same commit"
    points = [(n, r["phases"]["full_build"]["node_span_s"]) for n, r in sorted(by_size.items())]
    if len(points) < 2:
        return None, "(needs two or more sizes: make bench SIZE=all)"
    pairs = ", ".join(f"{k} {v:.2f}" for k, v in R.pairwise_exponents(points))
    sizes = ", ".join(R.size_label(n) for n, _ in points)
    return R.scaling_exponent(points), f"(node span; {sizes}; {source}; pairwise {pairs})"


def report(run: dict) -> str:
    """The markdown section of one run (also printed)."""
    results = run["results"]
    lines = [
        f"## {run['date']} — commit {run['commit'][:12]}, {', '.join(r['size'] for r in results)}",
        "",
        f"Command: `{run['command']}`",
        "",
        f"Machine: {R.machine_line(run['machine'])}.",
    ]
    if run.get("notes"):
        lines += ["", f"**Note:** {run['notes']}"]
    spark = next((r["phases"]["marts_spark"] for r in results if "marts_spark" in r["phases"]),
                 None)
    if spark:
        lines += ["", (f"Spark {spark['spark_version']}, {spark['master']} "
                       f"({spark['default_parallelism']} cores), driver memory "
                       f"{spark['driver_memory']}, AQE {spark['adaptive']}.")]
    lines += ["", R.phase_table(results), ""]
    for result in results:
        floor = R.cpu_floor_line(result, run["machine"]["cores"])
        if floor:
            lines += [floor, ""]
    lines += [R.ratio_table(results, run["exponent"], run["exponent_note"]), "",
              R.check_table(results), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1M",
                        help="1M, 10M, 67.5M, or all (the three in one run)")
    parser.add_argument("--events", type=int, help="any other number of events")
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv.gz"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data-dir", type=Path,
                        help="dataset folder (reused when its manifest matches; one size only)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "bench" / "work",
                        help="warehouses, logs and Spark output, per size")
    parser.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--benchmarks", type=Path, default=REPO / "BENCHMARKS.md",
                        help="markdown file the dated section is appended to")
    parser.add_argument("--no-append", action="store_true",
                        help="print and store JSON only; leave --benchmarks alone")
    parser.add_argument("--notes", default="", help="a remark printed with the results")
    # 6GB leaves the Python models of the same process room under the 8 GB RSS target.
    parser.add_argument("--memory-limit", default="6GB", help="DuckDB memory_limit")
    # One dbt thread: every DuckDB query already uses all cores, and two heavy nodes at once
    # split memory_limit between them and spill (at 67.5M each took about twice as long).
    parser.add_argument("--threads", type=int, default=1, help="dbt threads")
    parser.add_argument("--spark-driver-memory", default="8g")
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--keep-warehouses", action="store_true",
                        help="leave each phase's DuckDB file in --work-dir (deleted by "
                             "default once measured: a 67.5M month's is 16 GB)")
    parser.add_argument("--ml-horizon-days", type=int, default=7,
                        help="vars ml_label_horizon_days and forecast_eval_days: churn "
                             "and CLV need about two horizons of history, the forecast's "
                             "backtest 21 days before it, so a 30-day month gets 7 "
                             "(defaults 30 and 28)")
    parser.add_argument("--dbt-args", default="",
                        help="extra arguments of the dbt builds, e.g. \"--exclude tag:ml+\"")
    args = parser.parse_args(argv)
    args.dbt_args = ["--vars", json.dumps({"ml_label_horizon_days": args.ml_horizon_days,
                                           "forecast_eval_days": args.ml_horizon_days}),
                     *shlex.split(args.dbt_args)]

    if args.events:
        sizes = [args.events]
    elif args.size == "all":
        sizes = list(R.SIZES.values())
    else:
        sizes = [R.parse_size(args.size)]
    if args.data_dir and len(sizes) > 1:
        parser.error("--data-dir holds one dataset: use it with one size")

    head = commit()
    command = shlex.join(["python", "-m", "bench.run",
                          *(argv if argv is not None else sys.argv[1:])])
    if os.environ.get("BENCH_MAKE_COMMAND"):
        command = f"{os.environ['BENCH_MAKE_COMMAND']}`, i.e. `{command}"
    run = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": head, "command": command, "notes": args.notes, "machine": machine()}
    try:
        run["results"] = [run_size(n, args) for n in sizes]
    except BenchError as error:
        print(f"\nbenchmark failed: {error}", file=sys.stderr)
        return 1
    for result in run["results"]:
        result["ratios"] = R.ratios(result)
    run["exponent"], run["exponent_note"] = exponent_from(run["results"], args.results_dir,
                                                           head)
    section = report(run)
    print("\n" + section)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    sizes_label = "-".join(r["size"] for r in run["results"])
    json_path = args.results_dir / f"{stamp}_{head[:12]}_{sizes_label}.json"
    json_path.write_text(json.dumps(run, indent=1) + "\n")
    print(f"results: {json_path}")
    if not args.no_append:
        with open(args.benchmarks, "a") as handle:
            handle.write("\n" + section)
        print(f"appended to {args.benchmarks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
