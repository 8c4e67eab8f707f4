"""The benchmark's pure parts: sizes, run_results parsing, ratios, exponent, tables.

No dbt, no Spark: the runner itself is exercised by `make bench SIZE=1M`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import results as R
from bench.proctree import run_measured


def test_sizes_parse_and_print_back():
    assert R.parse_size("1M") == 1_000_000
    assert R.parse_size("67.5M") == 67_500_000
    assert R.parse_size("250k") == 250_000
    assert R.parse_size("12345") == 12_345
    assert R.size_label(67_500_000) == "67.5M"
    assert R.size_label(200_000) == "0.2M"
    assert R.size_label(12_345) == "12345"
    with pytest.raises(ValueError):
        R.parse_size("lots")
    with pytest.raises(ValueError):
        R.parse_size("0.5")


def _result(uid, start, end, status="success", execution_time=None):
    return {"unique_id": uid, "status": status,
            "execution_time": end - start if execution_time is None else execution_time,
            "timing": [
                {"name": "compile", "started_at": f"2026-11-23T10:00:{start:06.3f}Z",
                 "completed_at": f"2026-11-23T10:00:{start:06.3f}Z"},
                {"name": "execute", "started_at": f"2026-11-23T10:00:{start:06.3f}Z",
                 "completed_at": f"2026-11-23T10:00:{end:06.3f}Z"},
            ]}


RUN_RESULTS = {"results": [
    _result("model.rees46.stg_events", 0.0, 10.0),
    _result("model.rees46.fct_sessions", 10.0, 20.0),
    _result("model.rees46.ml_churn__training", 15.0, 40.0),   # beside fct_sessions
    _result("test.rees46.unique_fct_sessions_session_id", 20.0, 22.0),
    _result("model.rees46.fct_funnel_daily", 45.0, 50.0),
    {"unique_id": "model.rees46.skipped", "status": "skipped", "execution_time": 0,
     "timing": []},
]}
MANIFEST = {"nodes": {
    "model.rees46.stg_events": {"language": "sql"},
    "model.rees46.fct_sessions": {"language": "sql"},
    "model.rees46.ml_churn__training": {"language": "python"},
    "model.rees46.fct_funnel_daily": {"language": "sql"},
}}


def test_run_results_split_into_sql_and_python_walls():
    intervals = R.node_intervals(RUN_RESULTS, MANIFEST)
    assert [i["unique_id"] for i in intervals][-1] == "model.rees46.fct_funnel_daily"
    assert len(intervals) == 5                       # the skipped node has no timing
    summary = R.summarize_build(intervals)
    assert summary["node_span_s"] == pytest.approx(50.0)
    # SQL nodes cover 0-22 and 45-50; the Python node 15-40 overlaps them by 7 s.
    assert summary["sql_wall_s"] == pytest.approx(27.0)
    assert summary["python_wall_s"] == pytest.approx(25.0)
    assert summary["sql_node_sum_s"] == pytest.approx(27.0)
    assert summary["python_nodes"] == 1
    assert summary["failed"] == []


def test_failed_nodes_are_reported():
    failing = {"results": [_result("model.rees46.a", 0, 1, status="error"),
                           _result("test.rees46.t", 1, 2, status="fail")]}
    assert R.summarize_build(R.node_intervals(failing))["failed"] == [
        "model.rees46.a", "test.rees46.t"]


def test_union_length_counts_overlaps_once():
    assert R.union_length([]) == 0.0
    assert R.union_length([(0, 5), (3, 8), (10, 11)]) == pytest.approx(9.0)
    assert R.union_length([(0, 10), (2, 3)]) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        R.union_length([(5, 1)])


def test_scaling_exponent_recovers_a_power_law():
    sizes = [1e6, 1e7, 6.75e7]
    assert R.scaling_exponent([(n, 3e-5 * n) for n in sizes]) == pytest.approx(1.0)
    assert R.scaling_exponent([(n, 2e-7 * n ** 1.2) for n in sizes]) == pytest.approx(1.2)
    # A constant start-up cost flattens the curve below 1.
    assert R.scaling_exponent([(n, 20 + 1e-5 * n) for n in sizes]) < 0.9
    assert R.scaling_exponent([(1e6, 10.0)]) is None
    pairs = R.pairwise_exponents([(1e7, 100.0), (1e6, 10.0)])
    assert pairs == [("1M->10M", pytest.approx(1.0))]
    with pytest.raises(ValueError):
        R.scaling_exponent([(0, 1.0), (10, 2.0)])


def _size_result(events=1_000_000, **overrides):
    phases = {
        "raw_scan_warm": {"wall_s": 1.5, "query_s": 0.5, "peak_rss_tree_bytes": 1e8},
        "full_build": {"wall_s": 100.0, "sql_wall_s": 40.0, "node_span_s": 80.0,
                       "cpu_s": 150.0, "peak_rss_tree_bytes": 2.5e9},
        "incremental_day": {"wall_s": 20.0, "node_span_s": 12.0, "peak_rss_tree_bytes": 1e9},
        "marts_dbt": {"wall_s": 15.0, "node_span_s": 5.0, "peak_rss_tree_bytes": 5e8},
        "marts_spark": {"wall_s": 60.0, "compute_s": 50.0, "peak_rss_tree_bytes": 2e9},
    }
    phases.update(overrides)
    return {"size": R.size_label(events), "events": events, "phases": phases,
            "cross_check": {
                "fct_sessions": {"columns": "count(*), sum(revenue)",
                                 "duckdb": [10, 99.5], "spark": [10, 99.5]},
                "fct_funnel_daily": {"columns": "count(*), sum(sessions), sum(views)",
                                     "duckdb": [7, 30, 50], "spark": [8, 30, 51]}}}


def test_ratios_use_the_defined_parts():
    values = R.ratios(_size_result())
    assert values["a_sql_over_raw_scan"] == pytest.approx(80.0)    # 40 / 0.5
    assert values["b_incremental_over_full"] == pytest.approx(0.2)  # 20 / 100
    assert values["d_dbt_marts_over_spark"] == pytest.approx(0.1)   # 5 / 50
    missing = R.ratios(_size_result(marts_spark=None))
    assert missing["d_dbt_marts_over_spark"] is None
    assert R.ratio(1.0, 0.0) is None


def test_verdicts_against_upper_bounds():
    assert R.verdict(0.09, 0.10) == "ok"
    assert R.verdict(0.11, 0.10) == "MISSED"
    assert R.verdict(None, 0.10) == "-"


def test_tables_show_values_targets_and_checks():
    result = _size_result()
    ratio_md = R.ratio_table([result], 1.05, "(test)")
    assert "| 1M | (a) SQL part of full build / raw Parquet scan | 80.00 | 25.00 | MISSED |" \
        in ratio_md
    assert "| 1M | (d) dbt marts / pyspark marts | 0.10 | 0.20 | ok |" in ratio_md
    assert "| all | (c) scaling exponent of full build node span (test) | 1.05 | 1.10 | ok |" \
        in ratio_md
    # The 10-minute target applies to the 67.5M month only.
    assert "| 1M | full build wall s (target at 67.5M) | 100.00 | 600.00 | - |" in ratio_md
    phase_md = R.phase_table([result])
    assert phase_md.splitlines()[0].startswith("| size | phase | wall s")
    assert "| 1M | full_build | 100.00 | 40.00 | 150.00 | 1.50 | 2.50 |" in phase_md
    assert "| 1M | marts_dbt | 15.00 | 5.00 | - | - | 0.50 |" in phase_md  # no CPU measured
    check_md = R.check_table([result])
    assert "| 1M | fct_sessions | count(*), sum(revenue) | 10 / 99.50 | 10 / 99.50 | equal |" \
        in check_md
    assert "| DIFFER: count(*), sum(views) |" in check_md


def test_tree_rss_includes_children(tmp_path):
    # A parent that starts a child holding ~200 MB: the tree peak must see the child.
    child = "import time; b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    measured = run_measured([sys.executable, "-c", parent], log_path=tmp_path / "log")
    assert measured["returncode"] == 0
    assert measured["wall_s"] >= 1.5
    assert measured["peak_rss_tree_bytes"] > 200 * 1024 * 1024
    assert measured["max_rss_single_bytes"] > 200 * 1024 * 1024


def test_cpu_time_counts_children_and_is_sampled(tmp_path):
    # A parent that sleeps while its child spins for ~1 s of CPU: the tree's CPU is the
    # child's, and the timeline's last sample is close to the exact total.
    child = "import time; end = time.process_time() + 1.0\nwhile time.process_time() < end: pass"
    parent = f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', {child!r}]); time.sleep(0.3)"
    timeline = tmp_path / "cpu.txt"
    measured = run_measured([sys.executable, "-c", parent], log_path=tmp_path / "log",
                            cpu_timeline=timeline)
    assert measured["returncode"] == 0
    assert 1.0 <= measured["cpu_s"] < measured["wall_s"] + 0.5
    samples = R.parse_cpu_timeline(timeline.read_text())
    assert len(samples) > 5
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)
    assert samples[-1][1] == pytest.approx(measured["cpu_s"], abs=0.3)


def test_node_cpu_interpolates_between_samples():
    samples = [(100.0, 0.0), (101.0, 2.0), (103.0, 3.0), (104.0, 3.0)]
    assert R.cpu_between(samples, 100.5, 102.0) == pytest.approx(1.5)
    assert R.cpu_between(samples, 99.0, 110.0) == pytest.approx(3.0)  # clamped to the samples
    nodes = R.node_cpu([{"unique_id": "a", "start": 100.0, "end": 101.0},
                        {"unique_id": "b", "start": 103.0, "end": 104.0}], samples)
    assert [(n["cpu_s"], n["cores"]) for n in nodes] == [(2.0, 2.0), (0.0, 0.0)]
    assert R.parse_cpu_timeline("100.0 0.0\n101.0 2.5\n") == [(100.0, 0.0), (101.0, 2.5)]


def test_cpu_floor_is_the_build_cpu_over_the_cores():
    result = {"size": "67.5M", "phases": {"full_build": {"wall_s": 1000.0, "cpu_s": 1800.0}}}
    line = R.cpu_floor_line(result, cores=2)
    assert "1800 CPU s in 1000 s wall, 1.80 of 2 cores busy" in line
    assert "less than 900 s" in line
    assert R.cpu_floor_line({"size": "1M", "phases": {"full_build": {"wall_s": 1.0}}}, 2) is None


def test_exponent_completes_from_stored_results_of_the_same_commit(tmp_path):
    from bench.run import exponent_from

    def sized(events, span):
        return {"size": R.size_label(events), "events": events,
                "phases": {"full_build": {"node_span_s": span}}}

    (tmp_path / "a.json").write_text(json.dumps(
        {"commit": "abc", "results": [sized(10_000_000, 100.0)]}))
    (tmp_path / "b.json").write_text(json.dumps(
        {"commit": "other", "results": [sized(67_500_000, 1.0)]}))
    exponent, note = exponent_from([sized(1_000_000, 10.0)], tmp_path, "abc")
    assert exponent == pytest.approx(1.0)
    assert "1M, 10M" in note and "same commit" in note
    # A dirty tree never borrows stored figures.
    exponent, note = exponent_from([sized(1_000_000, 10.0)], tmp_path, "abc-dirty")
    assert exponent is None and "SIZE=all" in note


def test_profile_groups_node_time_by_project_area():
    manifest = {"nodes": {
        "model.rees46.stg_events": {"original_file_path": "models/staging/rees46/stg.sql"},
        "model.rees46.int_recs": {
            "original_file_path": "models/intermediate/ml/recommend/int_recs.sql"},
        "model.rees46.ml_recs": {"original_file_path": "models/ml/recommend/ml_recs.py"},
    }}
    intervals = [
        {"unique_id": "model.rees46.stg_events", "execution_time": 5.0},
        {"unique_id": "model.rees46.int_recs", "execution_time": 4.0},
        {"unique_id": "model.rees46.ml_recs", "execution_time": 7.0},
        {"unique_id": "test.rees46.unique_stg_events_event_id", "execution_time": 1.0},
        {"unique_id": "unit_test.rees46.stg_events.test_x", "execution_time": 0.5},
    ]
    areas = R.profile_by_area(intervals, manifest)
    assert [(a["area"], a["nodes"], a["seconds"]) for a in areas] == [
        ("ml/recommend", 2, 11.0), ("staging/rees46", 1, 5.0), ("data tests", 1, 1.0),
        ("unit tests", 1, 0.5)]
    assert areas[0]["slowest"] == ("ml_recs", 7.0)
    assert sum(a["share"] for a in areas) == pytest.approx(1.0)
    assert "| ml/recommend | 2 | 11.00 | 63% | ml_recs (7.0 s) |" in R.profile_table(
        intervals, manifest)


def test_no_bench_module_shadows_the_standard_library():
    # bench/spark_marts.py runs as a script, so bench/ comes first on its sys.path: a
    # bench/profile.py once replaced the stdlib module that pyspark imports through cProfile.
    bench_dir = Path(R.__file__).parent
    modules = {path.stem for path in bench_dir.glob("*.py")}
    assert "spark_marts" in modules
    assert not modules & set(sys.stdlib_module_names)
