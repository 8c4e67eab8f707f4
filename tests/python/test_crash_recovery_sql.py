"""Crash recovery in SQL models: `dbt build` killed with SIGKILL during staging and during
incremental merges, then re-run, equals a clean build of the same input."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from dbt_project import DBT, REPO, run_dbt
from warehouse_checks import BEHAVIOUR, checksums, crash_and_recover, ok

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


def test_killed_builds_recover_to_a_clean_build(tmp_path: Path, big_input: Path) -> None:
    """SIGKILL during: the first load of base_rees46__events (create); an incremental
    append of base_rees46__events (new day file, with its csv-rejects post-hook); the
    delete+insert of stg_rees46__events; the delete+insert of int_events_sessionized.
    After each, the file opens and a re-run of `dbt build` equals a clean build of the
    same input, model by model."""
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    glob = raw_dir / "*.csv"
    day_files = sorted(big_input.glob("*.csv"))
    for path in day_files[:2]:
        shutil.copy(path, raw_dir / path.name)

    clean = tmp_path / "clean" / "wh.duckdb"
    clean.parent.mkdir()
    ok(run_dbt(["build", *BEHAVIOUR], clean, glob), "clean build, two days")
    clean_two_days = checksums(clean)
    (raw_dir / day_files[2].name).unlink(missing_ok=True)
    shutil.copy(day_files[2], raw_dir / day_files[2].name)
    ok(run_dbt(["build", *BEHAVIOUR], clean, glob), "clean build, third day")
    clean_three_days = checksums(clean)
    (raw_dir / day_files[2].name).unlink()

    results: dict[str, object] = {}
    first = tmp_path / "first" / "wh.duckdb"
    first.parent.mkdir()
    crash_and_recover("first load, base_rees46__events", first, glob,
                      "base_rees46__events", clean_two_days, 0.3, BEHAVIOUR, results)

    shutil.copy(day_files[2], raw_dir / day_files[2].name)
    for name, model in [("append, base_rees46__events", "base_rees46__events"),
                        ("merge, stg_rees46__events", "stg_rees46__events"),
                        ("merge, int_events_sessionized", "int_events_sessionized")]:
        database = tmp_path / model / "wh.duckdb"
        database.parent.mkdir()
        shutil.copy(first, database)
        crash_and_recover(name, database, glob, model, clean_three_days, 0.3,
                          BEHAVIOUR, results)
    assert all(result == "equal" for result in results.values()), results
