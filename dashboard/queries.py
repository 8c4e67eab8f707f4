"""Every SQL statement of the dashboard, and the one function that runs them.

The dashboard reads only the serving copy (`python -m ml.publish` writes it; env
REES46_SERVING_DB, default warehouse/serving.duckdb), opened with
ml.serving_connection.connect_serving: read-only, with no access to other files and its
configuration locked. It reads marts and ML score tables, never raw events, so a page
costs an aggregate over at most day x category x brand rows, also on a 67.5M-event month.

Security: SQL text is constant. Filter values (dates, categories, brands, limits) are
passed as named parameters (`$start`, `$categories`, ...) to DuckDB, never formatted into
the SQL string; `run()` is the only place that executes SQL, and it only accepts the name
of a statement of `SQL`. tests/python/test_dashboard.py checks both.

Tables built in parallel to the dashboard (customer cluster profiles, revenue forecast
and scenarios) are optional: `OPTIONAL_TABLES` names them and the columns the pages use, in
one place, so a page shows a notice instead of failing while they are absent.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Mapping

import duckdb
import pandas as pd

from ml.serving_connection import connect_serving

SERVING_DB_ENV = "REES46_SERVING_DB"
DEFAULT_SERVING_DB = "warehouse/serving.duckdb"
# fct_funnel_daily spells a missing category or brand like this; fct_purchases and
# dim_products keep NULL, so queries coalesce to the same label.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Filters:
    """The sidebar filters: a closed date range, and category level 1 / brand lists
    (an empty list means all)."""
    start: date
    end: date
    categories: tuple[str, ...] = field(default_factory=tuple)
    brands: tuple[str, ...] = field(default_factory=tuple)

    def params(self) -> dict[str, Any]:
        """The named parameters every filtered statement takes."""
        return {"start": self.start, "end": self.end,
                "categories": list(self.categories), "brands": list(self.brands)}


# The filter predicates, written once. `$categories` and `$brands` are VARCHAR[]
# parameters; an empty list selects everything.
_CATEGORY = ("(len($categories::varchar[]) = 0 or list_contains("
             "$categories::varchar[], coalesce({col}, 'unknown')))")
_BRAND = ("(len($brands::varchar[]) = 0 or list_contains("
          "$brands::varchar[], coalesce({col}, 'unknown')))")


def _where(date_col: str | None, category_col: str | None = None,
           brand_col: str | None = None) -> str:
    """A WHERE clause over column names fixed in this module (never user input)."""
    parts = [f"{date_col} between $start and $end"] if date_col else []
    if category_col:
        parts.append(_CATEGORY.format(col=category_col))
    if brand_col:
        parts.append(_BRAND.format(col=brand_col))
    return " and ".join(parts)


SQL: Mapping[str, str] = {
    # --- meta -------------------------------------------------------------------------
    "tables": """
        select table_name from information_schema.tables
        where table_schema = 'main'
    """,
    "columns": """
        select column_name from information_schema.columns
        where table_schema = 'main' and table_name = $table
        order by ordinal_position
    """,
    "date_bounds": """
        select min(trend_date) as first_date, max(trend_date) as last_date
        from fct_daily_trends
    """,
    "category_options": """
        select distinct category_l1 from fct_funnel_daily order by 1
    """,
    "brand_options": """
        select brand from fct_funnel_daily
        group by 1 order by sum(views) desc, 1
    """,
    # --- KPIs -------------------------------------------------------------------------
    # Site-wide tiles (sessions belong to no single category): one row per day.
    "daily_trends": f"""
        select
            trend_date, revenue::double as revenue, purchases, orders, buyers,
            average_order_value::double as average_order_value, sessions,
            converted_sessions, session_conversion_rate, is_revenue_spike
        from fct_daily_trends
        where {_where('trend_date')}
        order by trend_date
    """,
    # The same measures for the filtered categories and brands, from purchase lines.
    "filtered_daily_revenue": f"""
        select
            purchase_date as trend_date,
            sum(price)::double as revenue,
            count(*) as purchases,
            count(distinct session_id) as orders,
            count(distinct user_id) as buyers
        from fct_purchases
        where {_where('purchase_date', 'category_l1', 'brand')}
        group by 1
        order by 1
    """,
    # --- funnel -----------------------------------------------------------------------
    "funnel_by_category": f"""
        select
            category_l1,
            sum(sessions_with_view)::bigint as sessions_with_view,
            sum(sessions_reaching_cart)::bigint as sessions_reaching_cart,
            sum(sessions_with_purchase)::bigint as sessions_with_purchase,
            sum(views)::bigint as views,
            sum(carts)::bigint as carts,
            sum(purchases)::bigint as purchases
        from fct_funnel_daily
        where {_where('event_date', 'category_l1', 'brand')}
        group by 1
        order by sessions_with_view desc
    """,
    "funnel_by_brand": f"""
        select
            brand,
            sum(sessions_with_view)::bigint as sessions_with_view,
            sum(sessions_reaching_cart)::bigint as sessions_reaching_cart,
            sum(sessions_with_purchase)::bigint as sessions_with_purchase,
            sum(views)::bigint as views,
            sum(carts)::bigint as carts,
            sum(purchases)::bigint as purchases
        from fct_funnel_daily
        where {_where('event_date', 'category_l1', 'brand')}
        group by 1
        order by sessions_with_view desc
        limit $limit
    """,
    # --- heatmap ----------------------------------------------------------------------
    "weekday_hour": f"""
        select
            isodow(hour_started_at) as iso_weekday,
            dayname(hour_started_at) as weekday_name,
            hour(hour_started_at) as hour_of_day,
            sum(revenue)::double as revenue,
            sum(orders)::bigint as orders,
            sum(sessions)::bigint as sessions,
            sum(converted_sessions)::bigint as converted_sessions
        from fct_hourly_trends
        where {_where('trend_date')}
        group by 1, 2, 3
        order by 1, 3
    """,
    # --- products and brands ----------------------------------------------------------
    # Aggregate product x day first (only products of the filtered slice), then join
    # the product attributes.
    "top_products": f"""
        with products as (
            select product_id, category_code, brand
            from dim_products
            where {_where(None, 'category_l1', 'brand')}
        ),
        funnel as (
            select
                product_id,
                sum(views)::bigint as views,
                sum(carts)::bigint as carts,
                sum(purchases)::bigint as purchases,
                sum(revenue)::double as revenue
            from fct_product_funnel
            where {_where('event_date')}
                and product_id in (select product_id from products)
            group by 1
        )
        select
            funnel.product_id,
            coalesce(products.category_code, 'unknown') as category_code,
            coalesce(products.brand, 'unknown') as brand,
            funnel.views, funnel.carts, funnel.purchases, funnel.revenue
        from funnel
        inner join products
            on funnel.product_id = products.product_id
        order by revenue desc, views desc, product_id
        limit $limit
    """,
    "top_brands": f"""
        with products as (
            select product_id, coalesce(brand, 'unknown') as brand
            from dim_products
            where {_where(None, 'category_l1', 'brand')}
        ),
        funnel as (
            select
                product_id,
                sum(views)::bigint as views,
                sum(purchases)::bigint as purchases,
                sum(revenue)::double as revenue
            from fct_product_funnel
            where {_where('event_date')}
                and product_id in (select product_id from products)
            group by 1
        )
        select
            products.brand,
            count(*) as products,
            sum(funnel.views)::bigint as views,
            sum(funnel.purchases)::bigint as purchases,
            sum(funnel.revenue) as revenue
        from funnel
        inner join products
            on funnel.product_id = products.product_id
        group by 1
        order by revenue desc, views desc, brand
        limit $limit
    """,
    # --- customers --------------------------------------------------------------------
    "rfm_segments": """
        select
            segment,
            count(*) as customers,
            avg(recency_days) as avg_recency_days,
            avg(frequency) as avg_orders,
            sum(monetary_value)::double as revenue
        from fct_customer_rfm
        group by 1
        order by customers desc
    """,
    "rfm_grid": """
        select recency_score, frequency_score, count(*) as customers
        from fct_customer_rfm
        group by 1, 2
    """,
    "cohort_retention": """
        select
            cohort_month, months_since_first_purchase, cohort_size,
            active_buyers, retention_rate,
            cumulative_revenue_per_customer
        from fct_cohort_retention
        order by 1, 2
    """,
    # --- churn and CLV ----------------------------------------------------------------
    "churn_bands": """
        select
            churn_risk_band,
            count(*) as customers,
            avg(churn_probability) as avg_probability
        from ml_churn_scores
        group by 1
        order by avg_probability desc
    """,
    "churn_histogram": """
        select
            least(floor(churn_probability * 20), 19) / 20 as bin_start,
            count(*) as customers
        from ml_churn_scores
        group by 1
        order by 1
    """,
    "churn_top_risk": """
        select
            user_id, churn_probability, churn_risk_band, top_reason_1,
            top_reason_2, top_reason_3, recency_days
        from ml_churn_scores
        order by churn_probability desc, user_id
        limit $limit
    """,
    "clv_histogram": """
        with bounds as (
            select quantile_cont(expected_spend, 0.99) as cap
            from ml_customer_ltv
        )
        select
            floor(least(ltv.expected_spend, bounds.cap)
                / greatest(bounds.cap / 20, 0.01)) as bin,
            greatest(bounds.cap / 20, 0.01) as bin_width,
            count(*) as customers,
            sum(ltv.expected_spend) as expected_spend
        from ml_customer_ltv as ltv
        cross join bounds
        group by all
        order by 1
    """,
    "clv_summary": """
        select
            count(*) as customers,
            sum(expected_spend) as expected_spend,
            sum(xgboost_expected_spend) as xgboost_expected_spend,
            avg(p_alive) as avg_p_alive,
            max(horizon_days) as horizon_days,
            max(as_of_date) as as_of_date
        from ml_customer_ltv
    """,
    "model_metrics": """
        select
            runs.model_name, metrics.metric, metrics.split, metrics.value,
            metrics.baseline, metrics.baseline_value, metrics.is_primary,
            metrics.beats_baseline, runs.train_end, runs.label_start,
            runs.label_end, runs.trained_at
        from ml_model_metrics as metrics
        inner join ml_model_runs as runs
            on metrics.run_id = runs.run_id
        where list_contains($models::varchar[], runs.model_name)
        order by runs.model_name, metrics.is_primary desc, metrics.metric,
            metrics.baseline
    """,
    # --- pricing ----------------------------------------------------------------------
    "elasticities": """
        select
            category_l1, elasticity, ci_low, ci_high, traffic_elasticity,
            conversion_elasticity, placebo_elasticity, n_products, purchases,
            has_enough_data
        from ml_price_elasticity
        where len($categories::varchar[]) = 0
            or list_contains($categories::varchar[], category_l1)
        order by elasticity
    """,
    "price_recommendations": """
        select
            product_id, category_l1, recommendation, current_price,
            recommended_price, price_change, elasticity, elasticity_ci_low,
            elasticity_ci_high, elasticity_source, expected_gain_per_day,
            gain_ci_low, gain_ci_high, is_optimum_at_band_edge
        from rpt_price_recommendations
        where is_recommended
            and (len($categories::varchar[]) = 0
                or list_contains($categories::varchar[], category_l1))
        order by expected_gain_per_day desc nulls last, product_id
        limit $limit
    """,
    # --- fraud ------------------------------------------------------------------------
    "fraud_queue": """
        select
            queue_position, user_id, fraud_score, rule_score, isolation_score,
            reason_codes, n_flags, sessions, events, purchases,
            revenue::double as revenue, first_seen_at, last_seen_at
        from rpt_fraud_review_queue
        where n_flags >= $min_flags
        order by queue_position
        limit $limit
    """,
    "fraud_reasons": """
        select reason, count(*) as users
        from (
            select unnest(string_split(reason_codes, ',')) as reason
            from rpt_fraud_review_queue
        )
        group by 1
        order by users desc
    """,
    # --- optional tables (see OPTIONAL_TABLES) ----------------------------------------
    "cluster_profiles": """
        select
            cluster_id, cluster_name, customers, customer_share,
            mean_recency_days, mean_orders, mean_monetary_total,
            revenue::double as revenue, revenue_share
        from ml_customer_cluster_profiles
        order by cluster_id
    """,
    "cluster_segments": """
        select cluster_name, rfm_segment, customers, share_of_cluster
        from rpt_customer_cluster_segments
    """,
    "forecast_series": """
        select distinct series_id, measure from ml_revenue_forecast order by 1, 2
    """,
    "forecast": """
        select
            forecast_date, series_id, measure, model, is_selected_model,
            point, lo80, hi80, lo95, hi95
        from ml_revenue_forecast
        where series_id = $series_id and measure = $measure
        order by forecast_date, model
    """,
    "scenarios": """
        select
            forecast_date, horizon, model, conservative, expected, optimistic,
            cumulative_conservative, cumulative_expected, cumulative_optimistic
        from rpt_revenue_scenarios
        where series_id = $series_id and measure = $measure
        order by horizon
    """,
}

# Tables the pages read that other work adds to the warehouse; the columns each
# statement above uses. A page checks `missing(table)` before querying.
OPTIONAL_TABLES: Mapping[str, tuple[str, ...]] = {
    "ml_customer_cluster_profiles": (
        "cluster_id", "cluster_name", "customers", "customer_share",
        "mean_recency_days", "mean_orders", "mean_monetary_total", "revenue",
        "revenue_share"),
    "rpt_customer_cluster_segments": (
        "cluster_name", "rfm_segment", "customers", "share_of_cluster"),
    "ml_revenue_forecast": (
        "forecast_date", "series_id", "measure", "model", "is_selected_model",
        "point", "lo80", "hi80", "lo95", "hi95"),
    "rpt_revenue_scenarios": (
        "series_id", "measure", "forecast_date", "horizon", "model", "conservative",
        "expected", "optimistic", "cumulative_conservative", "cumulative_expected",
        "cumulative_optimistic"),
}
# The forecast's training runs in the registry (ml_model_runs.model_name).
FORECAST_MODEL_NAME = "revenue_forecast"


_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")


def parameters(name: str) -> frozenset[str]:
    """The named parameters (`$name`) statement `SQL[name]` takes."""
    return frozenset(_PARAMETER.findall(SQL[name]))


def serving_path() -> Path:
    """The serving copy's path (env REES46_SERVING_DB)."""
    return Path(os.environ.get(SERVING_DB_ENV, DEFAULT_SERVING_DB))


class ServingDatabase:
    """A hardened read-only connection to the serving copy (connect_serving), re-opened
    when the file is replaced.

    The publisher swaps the file atomically (a new inode), so a (device, inode, mtime)
    change means a new copy: the old connection is dropped and a new one opened. Each
    query runs on its own cursor, so concurrent sessions never share one.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._identity: tuple[int, int, int] | None = None

    def identity(self) -> tuple[int, int, int]:
        """(device, inode, mtime in ns) of the file; FileNotFoundError if absent."""
        stat = self.path.stat()
        return (stat.st_dev, stat.st_ino, stat.st_mtime_ns)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        identity = self.identity()
        with self._lock:
            if self._connection is None or identity != self._identity:
                if self._connection is not None:
                    self._connection.close()
                self._connection = connect_serving(self.path)
                self._identity = identity
            return self._connection.cursor()

    def close(self) -> None:
        """Close the connection (the next query opens a new one)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
            self._connection = self._identity = None

    def run(self, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run the statement `SQL[name]` with named parameters; a DataFrame back.

        Of `params`, the statement gets those it names (a page passes all sidebar
        filters; a site-wide statement uses only the dates). A parameter it names but
        `params` lacks is an error."""
        if name not in SQL:
            raise KeyError(f"unknown dashboard query {name!r}")
        params = dict(params or {})
        needed = parameters(name)
        absent = needed - params.keys()
        if absent:
            raise KeyError(f"query {name!r} needs parameters {sorted(absent)}")
        cursor = self.cursor()
        try:
            return cursor.execute(SQL[name], {k: params[k] for k in needed}).df()
        finally:
            cursor.close()

    def tables(self) -> frozenset[str]:
        return frozenset(self.run("tables")["table_name"])

    def missing(self, table: str) -> list[str]:
        """What of an optional table is missing: [table] when absent, else the
        columns of OPTIONAL_TABLES[table] it lacks ([] when usable)."""
        if table not in self.tables():
            return [table]
        present = set(self.run("columns", {"table": table})["column_name"])
        return [c for c in OPTIONAL_TABLES.get(table, ()) if c not in present]
