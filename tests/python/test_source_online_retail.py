"""The second source end to end: `dbt build` with the settings of `make demo
SOURCE=online_retail` on the real 10-country Online Retail II slice. The customer marts and
the purchase-only models build green from the purchase contract, the click-stream models
are not built, and customers' totals equal an independent computation of the documented
rules (test_staging_online_retail.reference)."""
from __future__ import annotations

import shlex
import subprocess
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from dbt_project import REPO, query, run_dbt
from test_staging_online_retail import FIXTURE, Reference, reference

pytestmark = pytest.mark.dbt

PURCHASE_ONLY_MODELS = {"churn", "clv_bgnbd", "clv_xgboost", "cross_sell", "revenue_forecast"}


def demo_dbt_args() -> list[str]:
    """The `dbt build` arguments `make build SOURCE=online_retail` runs (its --vars)."""
    lines = subprocess.run(
        ["make", "-s", "--no-print-directory", "-n", "build", "SOURCE=online_retail"],
        cwd=REPO, text=True, capture_output=True, check=True).stdout.splitlines()
    [command] = [line for line in lines if "dbt build" in line]
    args = shlex.split(command)
    return args[args.index("build"):]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Reference, str]:
    database = tmp_path_factory.mktemp("online_retail_build") / "wh.duckdb"
    result = run_dbt(demo_dbt_args(), database, FIXTURE,
                     extra_env={"ONLINE_RETAIL_INVOICES": str(FIXTURE.absolute())})
    assert result.returncode == 0, result.stdout[-6000:]
    frame = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)
    return database, reference({FIXTURE.name: frame}, {}), result.stdout


def test_demo_settings_select_the_invoice_source() -> None:
    args = demo_dbt_args()
    assert "source: online_retail" in args[args.index("--vars") + 1]


def test_customer_totals_match_an_independent_computation(built) -> None:
    """Per customer: purchase lines with units kept, their invoices, and their value less
    the refunds netted against them, as dim_customers reports them."""
    database, ref, _ = built
    marts = {user: (lines, orders, Decimal(revenue)) for user, lines, orders, revenue in
             query(database, """
                select user_id, lifetime_purchases, lifetime_orders, lifetime_revenue
                from dim_customers where is_buyer""")}
    assert len(ref.customers) > 200
    assert marts == ref.customers


def test_customers_without_purchases_stay_in_dim_customers(built) -> None:
    """A customer seen only on returns (of purchases before Dec 2009) is a customer, not a
    buyer; lines without a customer are in no customer table but count as revenue."""
    database, ref, _ = built
    [(customers, buyers)] = query(database, """
        select count(*), count(*) filter (where is_buyer) from dim_customers""")
    assert buyers == len(ref.customers) < customers
    [(without_customer, revenue, buyers_revenue)] = query(database, """
        select sum(amount) filter (where user_id is null), sum(amount),
               (select sum(lifetime_revenue) from dim_customers)
        from int_purchases""")
    assert without_customer > 0
    [(series_revenue,)] = query(database, """
        select sum(value) from int_revenue_daily_series
        where series_id = 'overall' and measure = 'revenue'""")
    assert round(series_revenue, 2) == float(revenue) > float(buyers_revenue)


def test_purchase_only_models_train_and_are_evaluated(built) -> None:
    """Churn, CLV, cross-sell and the forecast: a production and an evaluation run each,
    with three-state verdicts; no click-stream model is in the registry."""
    database, _, _ = built
    runs = query(database, "select model_name, run_kind, status from ml_model_runs")
    assert {name for name, _, _ in runs} == PURCHASE_ONLY_MODELS
    assert {(kind, status) for _, kind, status in runs} == {
        ("production", "trained"), ("evaluation", "trained")}
    verdicts = query(database, """
        select distinct model_name, verdict from ml_model_metrics
        where run_kind = 'evaluation' and is_primary and baseline is not null""")
    assert {name for name, _ in verdicts} == PURCHASE_ONLY_MODELS
    assert {verdict for _, verdict in verdicts} <= {"better", "worse", "inconclusive"}


def test_click_stream_models_are_not_built(built) -> None:
    database, _, stdout = built
    tables = {name for (name,) in query(database, "select table_name from duckdb_tables()")}
    assert {"dim_customers", "fct_customer_rfm", "fct_cohort_retention",
            "rpt_cross_sell_rules", "ml_churn_scores", "ml_customer_ltv",
            "ml_revenue_forecast"} <= tables
    assert not tables & {"stg_rees46__events", "fct_sessions", "fct_purchases",
                         "ml_purchase_propensity", "ml_fraud_user_scores",
                         "ml_recommendations", "ml_price_elasticity"}
    assert "ERROR=0" in stdout
    assert "source online_retail: transactions only" in stdout


def test_report_prints_the_invoice_headline(built) -> None:
    from ml.report import format_headline, headline

    database, ref, _ = built
    figures = headline(database)
    assert figures["source"] == "online_retail"
    assert figures["rows_read"] == 34_766 and figures["rows_duplicate"] == 441
    assert figures["buyers"] == len(ref.customers)
    text = format_headline(database, figures)
    assert "invoices, no click-stream" in text
    assert {line.split()[0] for line in text.splitlines()[-len(figures["models"]):]} == \
        PURCHASE_ONLY_MODELS
