"""Reliability: idempotence, late data, crash recovery and data-quality gates.

- Idempotence: a second `dbt build` on the same input changes no model, and a file
  delivered again (same name, or same content under a new name) adds nothing to a mart.
- Late events: an event older than var incremental_lookback_hours behind what was already
  processed is listed in fct_late_events, not silently lost; a full refresh takes it in.
- Crash recovery (test_crash_recovery_sql.py, test_crash_recovery_python.py): `dbt build`
  killed with SIGKILL at several points, then re-run, equals a clean build.
- Gates: the generic test volume_anomaly warns on a missing or low day and is quiet on
  normal data; source freshness (measured on load time) passes right after a load.
- Memory: the dbt Python models evict DuckDB's cache first, only when dbt runs one thread.

Models are compared by a per-model checksum: row count plus an order-independent sum of
row hashes, load and run metadata (`loaded_at`, a training run's id, time and pickled
model) excluded.
"""
from __future__ import annotations

import random
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dbt_project import REPO, query, run_dbt
from warehouse_checks import BEHAVIOUR, checksums, differing, ok

pytestmark = pytest.mark.dbt

HEADER = ("event_time,event_type,product_id,category_id,category_code,brand,price,"
          "user_id,user_session")
START = datetime(2019, 11, 1)


# --- data -----------------------------------------------------------------------------

def event_line(at: datetime, event_type: str, product: int, user: int, session: str,
               price: float | None = None) -> str:
    """One raw csv line in the REES46 layout."""
    price = price if price is not None else round(5 + (product * 7.31) % 400, 2)
    brand = ["apple", "samsung", ""][product % 3]
    code = ["electronics.smartphone", "appliances.kitchen.washer", ""][product % 3]
    return (f"{at:%Y-%m-%d %H:%M:%S} UTC,{event_type},{product},"
            f"{2053013555631882655 + product % 4},{code},{brand},{price:.2f},{user},"
            f"{session}")


def day_lines(day: int, sessions: int, seed: int) -> list[str]:
    """Seeded random sessions within the day START + day (none runs past midnight)."""
    rng = random.Random(seed * 1_000 + day)
    lines = []
    for n in range(sessions):
        user = 520_000_000 + rng.randrange(sessions)
        at = START + timedelta(days=day, seconds=rng.randrange(86_400 - 10_000))
        for _ in range(rng.choice([1, 2, 3, 5])):
            kind = rng.choices(["view", "cart", "purchase"], weights=[80, 12, 8])[0]
            lines.append(event_line(at, kind, 1_000_000 + rng.randrange(40), user,
                                    f"s{seed}-{day}-{n}"))
            at += timedelta(seconds=rng.choice([10, 120, 600, 2_400]))
    return lines


def write_csv(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def write_days(raw_dir: Path, days: int, sessions: int = 120, seed: int = 1) -> list[Path]:
    return [write_csv(raw_dir / f"{START + timedelta(days=day):%Y-%m-%d}.csv",
                      day_lines(day, sessions, seed)) for day in range(days)]


def mart_models() -> set[str]:
    """Names of the models under models/marts and models/intermediate (sql and python)."""
    return {path.stem for folder in ("marts", "intermediate")
            for path in (REPO / "models" / folder).rglob("*")
            if path.suffix in (".sql", ".py")}


# --- 1. idempotence -------------------------------------------------------------------

def test_build_twice_and_redelivered_files_change_nothing(tmp_path: Path) -> None:
    """(a) A second `dbt build` on the same input leaves every model's checksum as it
    was. (b) A file delivered again under its own name (not read again) or under a new
    name (every line a duplicate) adds nothing to any mart or intermediate model. Also:
    volume_anomaly is quiet on normal days and source freshness passes after a load."""
    raw_dir = tmp_path / "raw"
    files = write_days(raw_dir, days=4)
    database = tmp_path / "wh" / "wh.duckdb"
    database.parent.mkdir()
    glob = raw_dir / "*.csv"

    # The ML models (and what reads them) need more history than these four small days
    # (their own tests cover them; test_killed_python_model_recovers, their crashes).
    build = ["build", "--exclude", "tag:ml+"]
    first_output = ok(run_dbt(build, database, glob), "first build")
    first = checksums(database)
    assert "fct_sessions" in first and "fct_late_events" in first
    assert "WARN" not in "\n".join(
        line for line in first_output.splitlines() if "volume_anomaly" in line)
    ok(run_dbt(build, database, glob), "second build")
    assert differing(first, checksums(database)) == {}

    freshness = ok(run_dbt(["source", "freshness"], database, glob), "source freshness")
    assert "PASS freshness of rees46.events" in freshness

    # The same name again (rewritten, newer mtime), and the same bytes under a new name.
    files[1].write_bytes(files[1].read_bytes())
    shutil.copy(files[2], raw_dir / "redelivered-2019-11-03.csv")
    ok(run_dbt(build, database, glob), "build after re-delivery")
    after = checksums(database)
    marts = mart_models() & set(first)
    assert {"fct_sessions", "fct_purchases", "int_events_sessionized"} <= marts
    assert differing({m: first[m] for m in marts}, {m: after[m] for m in marts}) == {}
    [(kept, duplicates)] = query(database, """
        select rows_kept, rows_duplicate from stg_rees46__load_audit
        where source_file like '%redelivered-2019-11-03.csv'""")
    assert kept == 0 and duplicates > 0


# --- 2. late events -------------------------------------------------------------------

def test_late_events_are_listed_and_recovered_by_full_refresh(tmp_path: Path) -> None:
    """Day files one by one, then a file of late events: one beyond the lookback (listed
    in fct_late_events, absent from fct_sessions) and one within it (merged into
    fct_sessions). A --full-refresh includes both and empties fct_late_events."""
    staged = tmp_path / "days"
    files = write_days(staged, days=4, sessions=60, seed=2)
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    glob = raw_dir / "*.csv"
    database = tmp_path / "wh" / "wh.duckdb"
    database.parent.mkdir()
    for number, path in enumerate(files, start=1):
        shutil.copy(path, raw_dir / path.name)
        if number == 1:
            continue  # the first build loads days 1 and 2
        ok(run_dbt(["build" if number == 2 else "run", *BEHAVIOUR], database, glob),
           f"day {number}")
    [(high_water_mark,)] = query(database, "select max(event_at) from stg_rees46__events")

    far = START + timedelta(hours=5)  # ~3 days behind: beyond the 48 h lookback
    near = START + timedelta(days=3, hours=1)  # within it
    write_csv(raw_dir / "2019-11-05-late.csv", [
        event_line(far, "view", 1_000_001, 7, "late-far"),
        event_line(far + timedelta(minutes=2), "purchase", 1_000_001, 7, "late-far",
                   price=100.0),
        event_line(near, "purchase", 1_000_002, 8, "late-near", price=50.0),
    ])
    ok(run_dbt(["build", *BEHAVIOUR], database, glob), "late file")

    late = query(database, """
        select raw_session_id, event_type, lateness_hours, processed_until_at,
               lookback_hours
        from fct_late_events order by event_at, event_type desc""")
    assert [row[:2] for row in late] == [("late-far", "view"), ("late-far", "purchase")]
    expected_hours = (high_water_mark - far).total_seconds() / 3600
    assert late[0][3] == high_water_mark and late[0][4] == 48
    assert abs(float(late[0][2]) - expected_hours) < 0.01 and expected_hours > 48
    [(day, events, purchases, revenue, share)] = query(database, """
        select event_date, late_events, late_purchases, late_revenue, late_share
        from fct_late_events_daily""")
    assert (str(day), events, purchases, float(revenue)) == ("2019-11-01", 2, 1, 100.0)
    assert 0 < share < 1

    def sessions(raw_session_id: str) -> list[tuple]:
        return query(database, f"""select events, revenue from fct_sessions
                                  where raw_session_id = '{raw_session_id}'""")

    assert sessions("late-far") == []
    assert [(e, float(r)) for e, r in sessions("late-near")] == [(1, 50.0)]

    ok(run_dbt(["run", *BEHAVIOUR, "--full-refresh"], database, glob), "full refresh")
    assert [(e, float(r)) for e, r in sessions("late-far")] == [(2, 100.0)]
    assert [(e, float(r)) for e, r in sessions("late-near")] == [(1, 50.0)]
    assert query(database, "select count(*) from fct_late_events") == [(0,)]
    assert query(database, "select count(*) from fct_late_events_daily") == [(0,)]


# --- 3. data-quality gate: volume anomaly ---------------------------------------------

def test_volume_anomaly_warns_on_a_missing_and_a_low_day(tmp_path: Path) -> None:
    """Ten days, day 6 never delivered and day 9 at a fifth of the usual volume: the
    warn-level test fires on both days for staged events and for sessions, and the
    build still succeeds (warnings do not fail it)."""
    raw_dir = tmp_path / "raw"
    for day in range(10):
        if day == 5:
            continue
        sessions = 12 if day == 8 else 60
        write_csv(raw_dir / f"{START + timedelta(days=day):%Y-%m-%d}.csv",
                  day_lines(day, sessions, seed=3))
    database = tmp_path / "wh" / "wh.duckdb"
    database.parent.mkdir()
    output = ok(run_dbt(["build", "--select", "+fct_sessions", "--indirect-selection",
                         "cautious"], database, raw_dir / "*.csv"), "build")
    for test in ("volume_anomaly_stg_rees46__events_event_date",
                 "volume_anomaly_fct_sessions_session_date"):
        lines = output.splitlines()
        [at] = [n for n, line in enumerate(lines) if f"Warning in test {test}" in line]
        assert "Got 2 results, configured to warn" in lines[at + 1], lines[at:at + 2]


# --- 4. memory of the Python models ---------------------------------------------------

def test_python_models_release_duckdb_memory_only_when_single_threaded(
        synth_warehouse, tmp_path: Path) -> None:
    """The pre-hook of the dbt Python models (macros/ml/release_duckdb_memory.sql) lowers
    memory_limit to evict DuckDB's cache and restores the configured limit; with more
    than one thread it must do nothing, since another model's query may be running."""
    database = tmp_path / synth_warehouse.database.name
    shutil.copy2(synth_warehouse.database, database)
    statements = {}
    for threads in ("1", "2"):
        result = run_dbt(["run", "--select", "ml_similar_products"], database,
                         synth_warehouse.dataset.events_glob,
                         extra_env={"DBT_THREADS": threads, "DUCKDB_MEMORY_LIMIT": "3GB"})
        assert result.returncode == 0, result.stdout[-4000:]
        log = (tmp_path / "dbt_logs" / "dbt.log").read_text()
        statements[threads] = [line.strip() for line in log.split("Concurrency:")[-1]
                               .splitlines() if line.strip().startswith("set memory_limit")]
    assert statements["1"] == ["set memory_limit = '64MB';", "set memory_limit = '3GB'"]
    assert statements["2"] == []
