"""Run the dbt project against a throw-away DuckDB file, for tests.

Each call is a separate `dbt` process (dbt reads REES46_EVENTS at parse time, so an
in-process runner would cache one glob across tests).
"""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"


def run_dbt(args: list[str], database: Path, events: str | Path,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `dbt <args>` on the `test` target writing to `database`, reading raw files `events`.

    Returns the completed process (stdout and stderr merged into stdout); never raises.
    """
    work = database.parent
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(REPO),
        "DBT_TARGET": "test",
        "DUCKDB_TEST_PATH": str(database),
        "REES46_EVENTS": str(events),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        **(extra_env or {}),
    }
    command = [str(DBT), *args, "--target-path", str(work / "dbt_target"),
               "--log-path", str(work / "dbt_logs")]
    return subprocess.run(command, cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def build_staging(database: Path, events: str | Path) -> subprocess.CompletedProcess:
    """`dbt build` of the staging layer and its tests only."""
    return run_dbt(["build", "--select", "models/staging"], database, events)


def query(database: Path, sql: str) -> list[tuple]:
    """Rows of `sql` against the warehouse file, opened read-only."""
    with duckdb.connect(str(database), read_only=True) as con:
        return con.sql(sql).fetchall()


def count_data_lines(path: Path) -> int:
    """Non-blank lines after the header, counted from the bytes, independently of DuckDB."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]
    return max(len(lines) - 1, 0)
