"""Customer, RFM, cohort and catalog marts, built by dbt on real and synthetic events.

Each dataset is built once (one `dbt build` of the customer and catalog marts with their
parents and tests) and then checked from the outside: RFM scores stay in 1..5, every buyer
lands in one segment, the accounting identities hold, and the retention triangle has the
shape a heatmap expects.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from dbt_project import REPO, query, run_dbt

pytestmark = pytest.mark.dbt

REAL_SLICE = REPO / "tests/fixtures/rees46/rees46_2019-Oct_first17434.csv"
SYNTH_EVENTS = 20_000  # two months, small enough for 2 cores
SEGMENTS = {"Champions", "Loyal", "Potential Loyalists", "New", "Promising",
            "Need Attention", "About to Sleep", "At Risk", "Can't Lose", "Hibernating"}
# The customer and catalog marts with their parent models, and only this suite's dbt tests
# (the parents' own tests belong to other suites): `empty` indirect selection stops dbt
# from pulling in every test of every selected parent.
BUILD_ARGS = [
    "--indirect-selection", "empty",
    # The marts' SQL files, not their folders: a folder also holds exposures, whose
    # parents include the ML models.
    "--select", "+path:models/marts/customers/*.sql", "+path:models/marts/catalog/*.sql",
    "path:seeds",
    "path:tests/dbt/assert_catalog_*", "path:tests/dbt/assert_customers_*",
    "path:tests/dbt/assert_rfm_*", "path:tests/dbt/assert_cohorts_*",
]


def _synthetic_events(out: Path) -> Path:
    """Generate a small two-month set with ml.synth, or skip when it is not available."""
    if importlib.util.find_spec("ml.synth") is None:
        pytest.skip("ml.synth is not importable yet: no synthetic dataset to build on")
    if importlib.util.find_spec("ml.synth.__main__") is None:
        pytest.skip("ml.synth has no command line (__main__) yet: no synthetic dataset")
    result = subprocess.run(
        [sys.executable, "-m", "ml.synth", "--events", str(SYNTH_EVENTS),
         "--start", "2019-10-01", "--days", "61", "--seed", "1", "--format", "csv.gz",
         "--split", "month", "--out", str(out)],
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert result.returncode == 0, result.stdout[-3000:]
    return out / "events" / "*.csv.gz"


@pytest.fixture(scope="module", params=["real_slice", "synthetic"])
def warehouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the customer and catalog marts built (and their dbt tests passed)."""
    work = tmp_path_factory.mktemp(request.param)
    events = REAL_SLICE if request.param == "real_slice" else _synthetic_events(work / "synth")
    database = work / "wh.duckdb"
    result = run_dbt(["build", *BUILD_ARGS], database, events)
    assert result.returncode == 0, result.stdout[-5000:]
    return database


def test_rfm_scores_are_within_1_to_5(warehouse: Path) -> None:
    [(low, high, buyers)] = query(warehouse, """
        select
            least(min(recency_score), min(frequency_score), min(monetary_score)),
            greatest(max(recency_score), max(frequency_score), max(monetary_score)),
            count(*)
        from fct_customer_rfm""")
    assert buyers > 0
    assert 1 <= low <= high <= 5
    # The best recency and the best monetary value always score 5.
    [(best_recency, best_money)] = query(warehouse, """
        select
            max(recency_score) filter (
                where recency_days = (select min(recency_days) from fct_customer_rfm)),
            max(monetary_score) filter (
                where monetary_value = (select max(monetary_value) from fct_customer_rfm))
        from fct_customer_rfm""")
    assert (best_recency, best_money) == (5, 5)


def test_equal_values_share_a_score(warehouse: Path) -> None:
    for value, score in [("recency_days", "recency_score"), ("frequency", "frequency_score"),
                         ("monetary_value", "monetary_score")]:
        split = query(warehouse, f"""
            select {value} from fct_customer_rfm
            group by 1 having count(distinct {score}) > 1""")
        assert split == [], f"{value} values split across {score}s: {split[:5]}"


def test_frequency_bins_are_fixed(warehouse: Path) -> None:
    expected = {1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 6: 5, 7: 5}
    for frequency, score in query(warehouse, """
            select distinct frequency, frequency_score from fct_customer_rfm"""):
        assert score == expected.get(frequency, 5), (frequency, score)


def test_segments_cover_all_buyers(warehouse: Path) -> None:
    [(buyers_to_date,)] = query(warehouse, """
        select count(distinct user_id) from fct_purchases
        where purchase_date <= (select max(as_of_date) from fct_customer_rfm)""")
    [(as_of,)] = query(warehouse, "select distinct as_of_date from fct_customer_rfm")
    [(last_event,)] = query(warehouse, "select max(event_date) from stg_rees46__events")
    assert as_of == last_event  # rfm_as_of_date defaults to null = the last event date
    segments = dict(query(warehouse, """
        select coalesce(segment, '(none)'), count(*) from fct_customer_rfm group by 1"""))
    assert sum(segments.values()) == buyers_to_date
    assert set(segments) <= SEGMENTS
    [(pairs, mapped_once)] = query(warehouse, """
        select count(*), count(*) filter (where n = 1) from (
            select recency_score, frequency_score, count(*) as n
            from rfm_segments group by 1, 2)""")
    assert pairs == mapped_once == 25


def test_customer_identities(warehouse: Path) -> None:
    [(users, buyers, revenue, lines)] = query(warehouse, """
        select count(*), count(*) filter (where is_buyer), sum(lifetime_revenue),
               sum(lifetime_purchases)
        from dim_customers""")
    [(event_users,)] = query(warehouse,
                             "select count(distinct user_id) from stg_rees46__events")
    [(purchase_users, purchase_revenue, purchase_lines)] = query(warehouse, """
        select count(distinct user_id), sum(price), count(*) from fct_purchases""")
    assert users == event_users
    assert buyers == purchase_users
    assert revenue == purchase_revenue
    assert lines == purchase_lines
    [(rfm_money,)] = query(warehouse, "select sum(monetary_value) from fct_customer_rfm")
    assert rfm_money == purchase_revenue  # as-of = last event date: every purchase counts


def test_catalog_identities(warehouse: Path) -> None:
    [(purchases, revenue)] = query(warehouse,
                                   "select count(*), sum(price) from fct_purchases")
    for model in ["fct_product_performance", "fct_category_performance"]:
        [(model_purchases, model_revenue, share)] = query(warehouse, f"""
            select sum(purchases), sum(revenue), sum(revenue_share) from {model}""")
        assert (model_purchases, model_revenue) == (purchases, revenue), model
        assert abs(share - 1) < 1e-9, model
    [(brand_revenue,)] = query(warehouse, "select sum(revenue) from fct_brand_performance")
    [(unbranded,)] = query(warehouse, """
        select coalesce(sum(revenue), 0) from fct_product_performance where brand is null""")
    assert brand_revenue + unbranded == revenue
    [(products, event_products)] = query(warehouse, """
        select (select count(*) from dim_products),
               (select count(distinct product_id) from stg_rees46__events)""")
    assert products == event_products


def _months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def test_cohort_triangle_shape(warehouse: Path) -> None:
    cells = query(warehouse, """
        select cohort_month, months_since_first_purchase, activity_month, cohort_size,
               active_buyers, retention_rate
        from fct_cohort_retention order by 1, 2""")
    [(last_month,)] = query(warehouse, "select max(activity_month) from fct_customer_cohorts")
    [(buyers,)] = query(warehouse, "select count(*) from dim_customers where is_buyer")
    cohorts: dict[date, list[tuple]] = {}
    for cell in cells:
        cohorts.setdefault(cell[0], []).append(cell)
    assert sum(rows[0][3] for rows in cohorts.values()) == buyers
    for cohort_month, rows in cohorts.items():
        # One cell per month from the cohort month to the last month: a triangle.
        assert [row[1] for row in rows] == list(
            range(_months_between(cohort_month, last_month) + 1))
        assert {row[3] for row in rows} == {rows[0][3]}  # size constant along a cohort
        assert rows[0][4] == rows[0][3] and rows[0][5] == 1.0  # month 0: everyone active
        assert all(0 <= row[5] <= 1 for row in rows)
        assert all(row[2].month == (cohort_month.month + row[1] - 1) % 12 + 1 for row in rows)
    # Running lifetime revenue in the last month equals each buyer's lifetime revenue.
    [(mismatches,)] = query(warehouse, """
        select count(*) from fct_customer_cohorts as c
        inner join dim_customers as d using (user_id)
        where c.activity_month = (select max(activity_month) from fct_customer_cohorts)
          and c.lifetime_revenue != d.lifetime_revenue""")
    assert mismatches == 0


def test_real_slice_known_figures(warehouse: Path, request: pytest.FixtureRequest) -> None:
    """Figures of the real 2019-10-01 00:00-02:50 slice, counted independently in Python."""
    if "real_slice" not in request.node.callspec.id:
        pytest.skip("known figures are for the real slice only")
    import csv
    with open(REAL_SLICE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    unique = {tuple(row.values()) for row in rows}
    purchases = [row for row in unique if row[1] == "purchase"]
    revenue = sum(Decimal(row[6]) for row in purchases)
    [(buyers, total)] = query(warehouse,
                              "select count(*), sum(monetary_value) from fct_customer_rfm")
    assert buyers == len({row[7] for row in purchases})
    assert total == revenue
    # One day of data: everyone bought on the as-of date, so recency is 0 and scores 5.
    assert query(warehouse, "select distinct recency_days, recency_score "
                            "from fct_customer_rfm") == [(0, 5)]
