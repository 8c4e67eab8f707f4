"""KPI alerts (models/marts/monitoring): planted breaches on generated data fire, ordinary
days do not, and a breach on the latest day warns in `dbt build` output."""
from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dbt_project import REPO, query, run_dbt

WARN_TEST = "assert_no_kpi_alerts_on_latest_day"
# Twenty days around the generator's default sale day (2019-11-17, day 15): a week of
# history before it, a few ordinary days after it, and a last day cut short at 05:00 UTC.
START = dt.date(2019, 11, 3)
DAYS = 20
LAST_DAY = START + dt.timedelta(days=DAYS - 1)
CUT_AT = f"{LAST_DAY} 05:00:00"


def warning_lines(build_log: str, test: str) -> list[str]:
    """The 'Warning in test' line of `test` and the line after it (the result count)."""
    lines = build_log.splitlines()
    hits = [n for n, line in enumerate(lines) if f"Warning in test {test}" in line]
    return [text for n in hits for text in lines[n:n + 2]]


def thresholds() -> dict[str, tuple[str, str, float]]:
    """alert_name -> (kpi, comparison, threshold) of the seed, read from the csv."""
    with open(REPO / "seeds/kpi_alert_thresholds.csv", newline="") as handle:
        return {row["alert_name"]: (row["kpi"], row["comparison"], float(row["threshold"]))
                for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def cut_short_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """A generated 20-day set with the sale day inside and its last day's file cut at
    05:00 UTC (as when a day's export stops early), built up to rpt_kpi_alerts."""
    out = tmp_path_factory.mktemp("kpi_synth")
    subprocess.run([sys.executable, "-m", "ml.synth", "--events", "80000", "--start",
                    str(START), "--days", str(DAYS), "--seed", "11", "--format", "csv",
                    "--split", "day", "--quiet", "--out", str(out)], cwd=REPO, check=True)
    manifest = json.loads((out / "truth" / "manifest.json").read_text())
    last_file = out / "events" / f"{LAST_DAY}.csv"
    lines = last_file.read_text().splitlines(keepends=True)
    kept = [lines[0]] + [line for line in lines[1:] if line[:19] < CUT_AT]
    assert 0 < len(kept) - 1 < (len(lines) - 1) / 2, "the cut should keep a small part"
    last_file.write_text("".join(kept))
    database = tmp_path_factory.mktemp("kpi_wh") / "wh.duckdb"
    # The mart, what it reads and the warn test; the models' own tests run in the shared
    # build (conftest.synth_warehouse).
    result = run_dbt(["build", "--select", "+rpt_kpi_alerts", WARN_TEST,
                      "--indirect-selection", "empty"], database, out / "events" / "*.csv")
    assert result.returncode == 0, result.stdout[-8000:]
    return database, result.stdout, manifest


def breaches(database: Path) -> set[tuple[dt.date, str]]:
    return set(query(database, "select kpi_date, alert_name from rpt_kpi_alerts "
                               "where is_breach"))


def test_cut_short_last_day_breaches_and_warns_in_the_build(cut_short_build) -> None:
    database, log, _ = cut_short_build
    last = {alert for day, alert in breaches(database) if day == LAST_DAY}
    assert {"sessions_drop", "revenue_drop"} <= last, last
    # The warn-level test lists exactly the latest day's breaches, and the build passes.
    [warning, count] = warning_lines(log, WARN_TEST)
    assert WARN_TEST in warning
    assert f"Got {len(last)} result" in count and "configured to warn" in count, count
    assert "Completed with" in log and "warning" in log


def test_planted_sale_day_breaches_revenue_spike_and_ordinary_days_do_not(
        cut_short_build) -> None:
    database, _, manifest = cut_short_build
    sale_days = {dt.date.fromisoformat(day)
                 for day in manifest["parameters"]["sale_days"]}
    [sale_day] = [day for day in sale_days if START <= day <= LAST_DAY]
    found = breaches(database)
    assert (sale_day, "revenue_spike") in found
    # Every breach is the sale day's or the cut day's: no ordinary day alerts.
    assert {day for day, _ in found} <= {sale_day, LAST_DAY}, sorted(found)


def test_every_day_and_alert_is_listed_with_the_seed_threshold(cut_short_build) -> None:
    database, _, _ = cut_short_build
    rows = query(database, """
        select alert_name, kpi, comparison, threshold, count(*) as days,
            count(kpi_value) as judged, count(*) filter (where is_latest_day) as latest
        from rpt_kpi_alerts group by all""")
    seed = thresholds()
    assert {row[0] for row in rows} == set(seed)
    for alert, kpi, comparison, threshold, days, judged, latest in rows:
        assert (kpi, comparison, threshold) == seed[alert]
        assert days == DAYS and latest == 1
        # Relative KPIs need var kpi_alert_min_history_days (7) earlier days.
        assert judged == (DAYS - 7 if kpi.endswith("_trailing_7d_median") else DAYS)
    # is_breach is the seed's comparison applied to the value, and NULL never breaches.
    [(wrong,)] = query(database, """
        select count(*) from rpt_kpi_alerts
        where is_breach != coalesce(case comparison
            when 'below' then kpi_value < threshold
            when 'above' then kpi_value > threshold end, false)""")
    assert wrong == 0


def test_the_shared_build_has_a_normal_latest_day_and_no_warning(synth_warehouse) -> None:
    """The shared 92-day build: its latest day (2019-12-31) is an ordinary full day, so the
    warn test passes; its sale day breaches revenue_spike."""
    database, log = synth_warehouse.database, synth_warehouse.build_log
    assert not warning_lines(log, WARN_TEST)
    assert any(WARN_TEST in line and "PASS" in line for line in log.splitlines())
    [(latest_breaches,)] = query(database, "select count(*) from rpt_kpi_alerts "
                                           "where is_latest_day and is_breach")
    assert latest_breaches == 0
    assert (dt.date(2019, 11, 17), "revenue_spike") in breaches(database)
