"""The MetricFlow semantic layer: `mf query` on the built warehouse equals SQL over the marts.

One `dbt parse` writes the semantic manifest of the shared `synth_warehouse` file; `mf`
reads it from `<project>/target`, so it is copied to a throw-away project folder whose
`dbt_project.yml` links to the repository's. `mf` queries through the `serving` target,
which attaches the file read-only under the warehouse's name, as it does the serving copy.
The done criterion, `mf query --metrics revenue --group-by metric_time__day`, runs as the
`mf` command itself; the other queries run through the same CLI (`query` of
dbt_metricflow's click group) in one Python process, to pay its start-up once.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

import dbt_project
from dbt_project import REPO, query, run_dbt

pytestmark = pytest.mark.dbt

BIN = Path(sys.executable).parent
REL = 1e-9

# Runs mf's click CLI once per argument list in one process, sharing its configuration
# (one dbt profile load and one connection), and prints each exit code and output.
_BATCH = """
import json, sys
from click.testing import CliRunner
from dbt_metricflow.cli.cli_configuration import CLIConfiguration
from dbt_metricflow.cli.main import cli
config = CLIConfiguration()
results = []
for args in json.loads(sys.argv[1]):
    outcome = CliRunner().invoke(cli, args, obj=config)
    results.append({"exit_code": outcome.exit_code, "output": outcome.output,
                    "exception": repr(outcome.exception)})
print(json.dumps(results))
"""


@dataclass(frozen=True)
class MfProject:
    """A project folder holding the semantic manifest of `database`, and mf's environment."""
    path: Path
    database: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def mf_project(synth_warehouse, tmp_path_factory: pytest.TempPathFactory) -> MfProject:
    # A `dbt parse` like every other dbt run of the suite (test target, shared target
    # folder, so partial parsing is reused); its semantic manifest names the tables of
    # the build's file, and is copied to where mf looks for it.
    parse = run_dbt(["parse"], synth_warehouse.database, synth_warehouse.dataset.events_glob)
    assert parse.returncode == 0, parse.stdout[-4000:]
    path = tmp_path_factory.mktemp("mf_project")
    (path / "dbt_project.yml").symlink_to(REPO / "dbt_project.yml")
    (path / "target").mkdir()
    shutil.copy(dbt_project._TARGET / "semantic_manifest.json", path / "target")
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(REPO),
        "DBT_PROJECT_DIR": str(path),
        "DBT_TARGET": "serving",
        # The serving target attaches REES46_SERVING_DB read-only under the name of the
        # DUCKDB_PATH file, which is the name the manifest gives the tables.
        "DUCKDB_PATH": str(synth_warehouse.database),
        "REES46_SERVING_DB": str(synth_warehouse.database),
        "REES46_EVENTS": str(synth_warehouse.dataset.events_glob),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return MfProject(path=path, database=synth_warehouse.database, env=env)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def day(value: str) -> date:
    """A metric_time value as written by mf's --csv (`2019-10-01 00:00:00`) as a date."""
    return date.fromisoformat(value[:10])


def as_float(value: str) -> float | None:
    return None if value in ("", "None") else float(value)


@pytest.fixture(scope="module")
def mf_results(mf_project: MfProject) -> dict[str, list[dict[str, str]]]:
    """Each named query's rows, from one batch of `mf query ... --csv` invocations."""
    queries = {
        "daily": ["--metrics", "revenue,orders,buyers,aov,sessions,session_conversion_rate",
                  "--group-by", "metric_time__day"],
        "monthly": ["--metrics", "cart_abandonment_rate,revenue_per_visitor,visitors,views",
                    "--group-by", "metric_time__month"],
        "rfm_segment": ["--metrics", "revenue,orders,aov,rfm_buyers",
                        "--group-by", "user__rfm_segment"],
        "brand": ["--metrics", "revenue", "--group-by", "purchase__brand"],
        "views_category": ["--metrics", "views", "--group-by", "funnel__category_l1"],
        "active_customers": ["--metrics", "active_customers",
                             "--group-by", "metric_time__day"],
        "customer_health": ["--saved-query", "customer_health"],
        "headline_tiles": ["--saved-query", "headline_tiles_daily"],
    }
    files = {name: mf_project.path / f"{name}.csv" for name in queries}
    batch = [["query", *args, "--csv", str(files[name]), "--quiet"]
             for name, args in queries.items()]
    run = subprocess.run([sys.executable, "-c", _BATCH, json.dumps(batch)],
                         cwd=mf_project.path, env=mf_project.env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert run.returncode == 0, run.stdout[-4000:]
    outcomes = json.loads(run.stdout.strip().splitlines()[-1])
    for name, outcome in zip(queries, outcomes):
        assert outcome["exit_code"] == 0, (name, outcome)
    return {name: read_csv(path) for name, path in files.items()}


def test_mf_query_revenue_by_day_equals_purchases(mf_project: MfProject) -> None:
    out = mf_project.path / "revenue_by_day.csv"
    run = subprocess.run(
        [str(BIN / "mf"), "query", "--metrics", "revenue", "--group-by", "metric_time__day",
         "--csv", str(out)],
        cwd=mf_project.path, env=mf_project.env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert run.returncode == 0 and "ERROR" not in run.stdout, run.stdout[-4000:]
    got = {day(row["metric_time__day"]): float(row["revenue"]) for row in read_csv(out)}
    expected = dict(query(mf_project.database, """
        select purchase_date, cast(sum(price) as double)
        from fct_purchases group by 1"""))
    assert len(got) == len(expected) == 92
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=REL), key
    trends = dict(query(mf_project.database,
                        "select trend_date, cast(revenue as double) from fct_daily_trends"))
    assert sum(got.values()) == pytest.approx(sum(trends.values()), rel=REL)


def test_daily_tiles_equal_fct_daily_trends(mf_project, mf_results) -> None:
    trends = {row[0]: row[1:] for row in query(mf_project.database, """
        select trend_date, cast(revenue as double), orders, buyers,
               cast(revenue as double) / nullif(orders, 0), sessions,
               session_conversion_rate
        from fct_daily_trends""")}
    rows = mf_results["daily"]
    assert len(rows) == len(trends) == 92
    for row in rows:
        expected = trends[day(row["metric_time__day"])]
        revenue, orders, buyers, aov, sessions, conversion = expected
        assert float(row["revenue"]) == pytest.approx(revenue, rel=REL)
        assert int(row["orders"]) == orders
        assert int(row["buyers"]) == buyers
        assert float(row["aov"]) == pytest.approx(aov, rel=REL)
        assert int(row["sessions"]) == sessions
        assert float(row["session_conversion_rate"]) == pytest.approx(conversion, rel=REL)
    # The saved query behind the dashboard's tiles returns the same days and values.
    tiles = {day(row["metric_time__day"]): row for row in mf_results["headline_tiles"]}
    assert len(tiles) == 92
    for row in rows:
        tile = tiles[day(row["metric_time__day"])]
        assert float(tile["aov"]) == pytest.approx(float(row["aov"]), rel=REL)
        assert float(tile["session_conversion_rate"]) == pytest.approx(
            float(row["session_conversion_rate"]), rel=REL)


def test_monthly_rates_equal_sql_over_the_marts(mf_project, mf_results) -> None:
    expected = {row[0]: row[1:] for row in query(mf_project.database, """
        with sessions as (
            select date_trunc('month', session_date) as month,
                   count(*) filter (where is_cart_abandoned) as abandoned,
                   count(*) filter (where has_cart) as with_cart,
                   count(distinct user_id) as visitors
            from fct_sessions group by 1
        ),
        revenue as (
            select date_trunc('month', purchase_date) as month,
                   cast(sum(price) as double) as revenue
            from fct_purchases group by 1
        ),
        views as (
            select date_trunc('month', event_date) as month, sum(views) as views
            from fct_funnel_daily group by 1
        )
        select cast(month as date), abandoned / with_cart, revenue / visitors, visitors,
               views
        from sessions
        inner join revenue using (month)
        inner join views using (month)""")}
    rows = mf_results["monthly"]
    assert len(rows) == len(expected) == 3
    for row in rows:
        abandonment, per_visitor, visitors, views = expected[day(row["metric_time__month"])]
        assert 0 < abandonment < 1
        assert float(row["cart_abandonment_rate"]) == pytest.approx(abandonment, rel=REL)
        assert float(row["revenue_per_visitor"]) == pytest.approx(per_visitor, rel=REL)
        assert int(row["visitors"]) == visitors
        assert int(row["views"]) == views


def test_revenue_by_rfm_segment_brand_and_category(mf_project, mf_results) -> None:
    by_segment = {row[0]: row[1:] for row in query(mf_project.database, """
        select coalesce(rfm.segment, 'None'), cast(sum(purchases.price) as double),
               count(distinct purchases.session_id)
        from fct_purchases as purchases
        left join fct_customer_rfm as rfm on purchases.user_id = rfm.user_id
        group by 1""")}
    segment_sizes = dict(query(mf_project.database,
                               "select segment, count(*) from fct_customer_rfm group by 1"))
    rows = mf_results["rfm_segment"]
    assert len(rows) == len(by_segment) >= 5
    for row in rows:
        revenue, orders = by_segment[row["user__rfm_segment"] or "None"]
        assert float(row["revenue"]) == pytest.approx(revenue, rel=REL)
        assert int(row["orders"]) == orders
        assert float(row["aov"]) == pytest.approx(revenue / orders, rel=REL)
        assert int(row["rfm_buyers"]) == segment_sizes[row["user__rfm_segment"]]

    by_brand = dict(query(mf_project.database, """
        select coalesce(brand, 'unknown'), cast(sum(price) as double)
        from fct_purchases group by 1"""))
    got = {row["purchase__brand"]: float(row["revenue"]) for row in mf_results["brand"]}
    assert got.keys() == by_brand.keys() and len(got) > 10
    assert all(got[key] == pytest.approx(value, rel=REL) for key, value in by_brand.items())

    views = dict(query(mf_project.database,
                       "select category_l1, sum(views) from fct_funnel_daily group by 1"))
    got = {row["funnel__category_l1"]: int(row["views"])
           for row in mf_results["views_category"]}
    assert got == views and len(got) > 3


def test_active_customers_are_buyers_of_the_trailing_30_days(mf_project, mf_results) -> None:
    got = {day(row["metric_time__day"]): int(row["active_customers"])
           for row in mf_results["active_customers"]}
    last = query(mf_project.database, "select max(purchase_date) from fct_purchases")[0][0]
    for checked in (date(2019, 10, 1), date(2019, 10, 30), date(2019, 11, 15), last):
        expected = query(mf_project.database, f"""
            select count(distinct user_id) from fct_purchases
            where purchase_date between date '{checked}' - 29 and date '{checked}'""")[0][0]
        assert got[checked] == expected > 0, checked
    # The window runs on past the data until its last buyer drops out, then stops.
    assert max(got) == last + timedelta(days=29)


def test_customer_health_equals_the_score_tables(mf_project, mf_results) -> None:
    (row,) = mf_results["customer_health"]
    high, scored = query(mf_project.database, """
        select count(*) filter (where churn_risk_band = 'high'), count(*)
        from ml_churn_scores""")[0]
    clv, clv_mean = query(mf_project.database, """
        select sum(expected_spend), avg(expected_spend) from ml_customer_ltv""")[0]
    assert int(row["churn_risk_customers"]) == high > 0
    assert int(row["churn_scored_customers"]) == scored
    assert float(row["predicted_clv"]) == pytest.approx(clv, rel=REL)
    assert float(row["predicted_clv_per_customer"]) == pytest.approx(clv_mean, rel=REL)
