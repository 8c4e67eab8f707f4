"""Crash recovery in a dbt Python model: `dbt build` killed with SIGKILL while a model
trains, then re-run, equals a clean build of the same input."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from dbt_project import DBT, REPO, run_dbt
from warehouse_checks import checksums, crash_and_recover, ok

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def big_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three daily files of ~100,000 events in all, so staging takes a moment."""
    out = tmp_path_factory.mktemp("synth")
    try:
        subprocess.run([str(DBT.parent / "python"), "-m", "ml.synth", "--events", "100000",
                        "--days", "3", "--start", "2019-11-01", "--seed", "3", "--format",
                        "csv", "--split", "day", "--out", str(out), "--quiet"],
                       cwd=REPO, check=True, capture_output=True)
    except subprocess.CalledProcessError:  # generator unavailable: repeat the real slice
        raw = REPO / "tests/fixtures/rees46/rees46_2019-Oct_first17434.csv"
        (out / "events").mkdir(exist_ok=True)
        with duckdb.connect() as con:
            for day in range(3):
                con.execute(f"""
                    copy (
                        select strftime(event_time + interval {31 + day} day,
                                        '%Y-%m-%d %H:%M:%S UTC') as event_time,
                               * exclude (event_time, user_id, user_session),
                               user_id + copy * 1000000000 as user_id,
                               user_session || '-' || copy as user_session
                        from read_csv('{raw}', timestampformat =
                                      '%Y-%m-%d %H:%M:%S UTC'),
                             range(3) as copies(copy)
                    ) to '{out}/events/2019-11-0{day + 1}.csv' (header)""")
    return out / "events"


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
