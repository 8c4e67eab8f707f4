"""Checks on warehouse files shared by the reliability tests: per-table checksums, and
`dbt build` killed with SIGKILL at a chosen point."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb

from dbt_project import DBT, REPO, _TARGET, query, run_dbt

# Everything the behaviour and quality marts need: staging, sessions, marts (the catalog
# and customers marts are plain tables, rebuilt whole by every run).
BEHAVIOUR = ["--select", "+tag:behaviour", "+tag:quality", "--indirect-selection",
             "cautious"]
# Columns that identify a load or a training run rather than describe the data: they
# differ between any two builds by design, so checksums leave them out.
LOAD_METADATA = {"loaded_at", "run_id", "trained_at", "model_artifact"}


def checksums(database: Path, only: set[str] | None = None) -> dict[str, tuple[int, int]]:
    """{table: (rows, sum of row hashes)} for every table of the warehouse (or `only`).

    dbt's own leftovers (`__dbt_tmp`, `__dbt_backup`) are left out, so are the
    LOAD_METADATA columns (they differ between runs by design). Doubles are rounded to 9
    decimals: a parallel sum may differ in its last bits between two runs.
    """
    result = {}
    with duckdb.connect(str(database), read_only=True) as con:
        tables = [name for (name,) in con.sql(
            "select table_name from duckdb_tables() where schema_name = 'main'"
            " and not temporary order by 1").fetchall() if "__dbt_" not in name]
        for table in tables:
            if only is not None and table not in only:
                continue
            columns = [
                f"round({name}, 9)" if type_ in ("DOUBLE", "FLOAT") else f'"{name}"'
                for name, type_ in con.sql(
                    "select column_name, data_type from duckdb_columns()"
                    f" where schema_name = 'main' and table_name = '{table}'"
                    " order by column_index").fetchall()
                if name not in LOAD_METADATA]
            [(rows, digest)] = con.sql(
                f"select count(*), coalesce(sum(hash({', '.join(columns)})::hugeint), 0)"
                f" from main.{table}").fetchall()
            result[table] = (rows, int(digest))
    return result


def differing(left: dict, right: dict) -> dict[str, tuple]:
    """Tables whose checksum differs, or that exist on one side only."""
    return {name: (left.get(name), right.get(name))
            for name in sorted(set(left) | set(right)) if left.get(name) != right.get(name)}


def ok(result: subprocess.CompletedProcess, what: str) -> str:
    assert result.returncode == 0, f"{what}\n{result.stdout[-6000:]}"
    return result.stdout



# --- crash recovery ------------------------------------------------------------------

def build_until(marker: str, database: Path, events: Path, delay: float,
                args: list[str]) -> tuple[bool, str]:
    """Start `dbt build`, SIGKILL its process group `delay` seconds after a stdout line
    containing `marker`. Returns (killed before the build ended, stdout up to the kill)."""
    env = {**os.environ, "DBT_PROFILES_DIR": str(REPO), "DBT_TARGET": "test",
           "DUCKDB_TEST_PATH": database.name, "REES46_EVENTS": str(events),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PYTHONUNBUFFERED": "1"}
    command = [str(DBT), "build", *args, "--project-dir", str(REPO), "--target-path",
               str(_TARGET), "--log-path", str(database.parent / "dbt_logs")]
    process = subprocess.Popen(command, cwd=database.parent, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None and not any(marker in line for line in lines):
        time.sleep(0.01)
    if process.poll() is None:
        time.sleep(delay)
        seen = "".join(lines)
        os.killpg(process.pid, signal.SIGKILL)
    else:
        seen = "".join(lines)
    process.wait()
    reader.join(timeout=10)
    return process.returncode == -signal.SIGKILL, seen


def crash_and_recover(name: str, database: Path, events: Path, model: str,
                      expected: dict, delay: float, args: list[str],
                      results: dict) -> None:
    """Kill a build while `model` runs, check the file opens, re-run, compare."""
    killed, output = build_until(f"model main.{model} ", database, events, delay, args)
    assert killed, f"{name}: the build ended before it was killed\n{output[-3000:]}"
    # Where the kill landed: while the model ran, or (too late) after it finished.
    finished = any("OK created" in line and f"main.{model} " in line
                   for line in output.splitlines())
    name = f"{name} ({'after it finished' if finished else 'while it ran'})"
    query(database, "select count(*) from duckdb_tables()")  # the file opens
    ok(run_dbt(["build", *args], database, events), f"{name}: re-run")
    diff = differing(checksums(database), expected)
    results[name] = "equal" if not diff else diff
    print(f"crash point {name} (kill {delay}s after {model} started): "
          f"{'re-run equals the clean build' if not diff else diff}")
