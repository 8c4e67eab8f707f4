"""sqlfluff (dbt templater, duckdb dialect, .sqlfluff at the repo root) passes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sqlfluff_lint_passes() -> None:
    sqlfluff = Path(sys.executable).parent / "sqlfluff"
    result = subprocess.run(
        [str(sqlfluff), "lint", "models", "tests/dbt", "analyses"],
        cwd=REPO, env={**os.environ, "DBT_PROFILES_DIR": str(REPO)},
        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert result.returncode == 0, result.stdout[-5000:]
