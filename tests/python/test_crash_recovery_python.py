"""Crash recovery in a dbt Python model: `dbt build` killed with SIGKILL while a model
trains, then re-run, equals a clean build of the same input."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dbt_project import run_dbt
from warehouse_checks import checksums, crash_and_recover, ok

pytestmark = pytest.mark.dbt


def test_killed_python_model_recovers(tmp_path: Path, big_input: Path) -> None:
    """SIGKILL while a dbt Python model trains (the fraud model: it fits on three days,
    where the customer models need months), then re-run: the training record and the
    scores downstream of it equal a clean build's, run identity aside."""
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for path in sorted(big_input.glob("*.csv")):
        shutil.copy(path, raw_dir / path.name)
    glob = raw_dir / "*.csv"
    select = ["--select", "+ml_fraud_session_scores", "--indirect-selection", "cautious"]
    clean = tmp_path / "clean" / "wh.duckdb"
    clean.parent.mkdir()
    ok(run_dbt(["build", *select], clean, glob), "clean build of +ml_fraud_session_scores")
    expected = checksums(clean)
    assert expected["ml_fraud_session_scores"][0] > 0
    database = tmp_path / "crash" / "wh.duckdb"
    database.parent.mkdir()
    results: dict[str, object] = {}
    crash_and_recover("python model ml_fraud__training", database, glob,
                      "ml_fraud__training", expected, 1.0, select, results)
    assert all(result == "equal" for result in results.values()), results
