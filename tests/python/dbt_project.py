"""Run the dbt project against a throw-away DuckDB file, for tests.

Each call is a separate `dbt` process (dbt reads REES46_EVENTS at parse time, so an
in-process runner would cache one glob across tests).
"""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"
# One target dir for the whole test session, so dbt's partial parsing is reused between
# runs. The warehouse path is passed relative to the run's working directory for the same
# reason: a profile that renders differently forces a full re-parse.
_TARGET = Path(tempfile.mkdtemp(prefix="rees46-dbt-target-"))


def run_dbt(args: list[str], database: Path, events: str | Path,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `dbt <args>` on the `test` target writing to `database`, reading raw files `events`.

    `events` must be absolute (dbt runs in `database`'s folder). Returns the completed
    process (stdout and stderr merged into stdout); never raises.
    """
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(REPO),
        "DBT_TARGET": "test",
        "DUCKDB_TEST_PATH": database.name,
        "REES46_EVENTS": str(Path(events).absolute()),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        **(extra_env or {}),
    }
    command = [str(DBT), *args, "--project-dir", str(REPO), "--target-path", str(_TARGET),
               "--log-path", str(database.parent / "dbt_logs")]
    return subprocess.run(command, cwd=database.parent, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def build_staging(database: Path, events: str | Path) -> subprocess.CompletedProcess:
    """`dbt build` of the staging layer and the tests that read only staging."""
    return run_dbt(["build", "--select", "models/staging", "--indirect-selection", "cautious"],
                   database, events)


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
