"""Crash recovery in SQL models: `dbt build` killed with SIGKILL during staging and during
incremental merges, then re-run, equals a clean build of the same input."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dbt_project import run_dbt
from warehouse_checks import BEHAVIOUR, checksums, crash_and_recover, ok

pytestmark = pytest.mark.dbt


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
