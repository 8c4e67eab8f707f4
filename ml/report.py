"""Headline figures of a built warehouse: `python -m ml.report [--database PATH]`.

Opens the DuckDB file read-only, so it never holds the write lock a build needs. Ends with
where the serving copy and its Parquet exports are (`python -m ml.publish`) and how to
open the dashboard.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import duckdb

from ml.serving_connection import connect_serving

DEFAULT_DATABASE = "warehouse/ecommerce.duckdb"
DEFAULT_SERVING = "warehouse/serving.duckdb"
DEFAULT_EXPORTS = "warehouse/exports"

# What the last publish wrote (ml/publish.py writes this table into the serving copy).
SERVING_SQL = """
select
    any_value(publish_id) as publish_id,
    any_value(published_at) as published_at,
    any_value(storage_version) as storage_version,
    count(*) as tables,
    sum(row_count) as rows,
    sum(len(pseudonymised_columns)) as pseudonymised_columns
from serving_tables
"""

LOAD_SQL = """
select
    count(*) as files,
    sum(rows_read) as rows_read,
    sum(rows_kept) as events_kept,
    sum(rows_duplicate) as rows_duplicate,
    sum(rows_rejected) as rows_rejected
from stg_rees46__load_audit
"""

SALES_SQL = """
select
    min(session_started_at) as first_event_at,
    max(session_ended_at) as last_event_at,
    count(*) as sessions,
    count(distinct user_id) as visitors,
    avg(case when has_purchase then 1.0 else 0.0 end) as session_conversion_rate,
    avg(case when is_cart_abandoned then 1.0 else 0.0 end)
        filter (where has_cart) as cart_abandonment_rate,
    sum(purchases) as purchases,
    sum(revenue) as revenue
from fct_sessions
"""

CUSTOMERS_SQL = """
select
    count(*) filter (where is_buyer) as buyers,
    sum(lifetime_revenue) / nullif(sum(lifetime_orders), 0) as average_order_value
from dim_customers
"""

SPIKES_SQL = "select trend_date, revenue from fct_daily_trends where is_revenue_spike order by 1"

TOP_CATEGORY_SQL = """
select coalesce(category_l1, 'unknown') as category_l1, sum(revenue_share) as share
from fct_category_performance
group by 1
order by 2 desc
limit 1
"""

# Each model's status, and the primary metric of its latest evaluation at the last test
# cutoff beside each baseline, with the interval of the difference and the verdict.
MODELS_SQL = """
with latest as (
    select run_id, model_name, run_kind, status, status_reason
    from ml_model_runs
    qualify row_number() over (
        partition by model_name, run_kind order by trained_at desc) = 1
),
last_cutoff as (
    -- a model whose primary metric pools its cutoffs (the forecast) has cutoff NULL
    select run_id, max(cutoff) as cutoff
    from ml_model_metrics
    where is_primary and split = 'test'
    group by 1
)
select
    production.model_name,
    production.status as production_status,
    coalesce(production.status_reason, evaluation.status_reason) as status_reason,
    evaluation.status as evaluation_status,
    metrics.metric,
    metrics.cutoff,
    metrics.value,
    metrics.baseline,
    metrics.baseline_value,
    metrics.diff_ci_low,
    metrics.diff_ci_high,
    metrics.verdict
from latest as production
left join latest as evaluation
    on production.model_name = evaluation.model_name
    and evaluation.run_kind = 'evaluation'
left join last_cutoff on evaluation.run_id = last_cutoff.run_id
left join ml_model_metrics as metrics
    on evaluation.run_id = metrics.run_id
    and metrics.is_primary
    and metrics.split = 'test'
    and metrics.cutoff is not distinct from last_cutoff.cutoff
where production.run_kind = 'production'
order by 1, 4, 7
"""

# A transactions-only source (Online Retail II invoices): no events or sessions.
INVOICE_LOAD_SQL = """
select
    count(*) as files,
    sum(rows_read) as rows_read,
    sum(rows_kept) as lines_kept,
    sum(rows_duplicate) as rows_duplicate,
    sum(rows_rejected) as rows_rejected,
    sum(rows_without_customer) as lines_without_customer,
    sum(rows_return) as return_lines
from stg_online_retail__load_audit
"""

INVOICE_SALES_SQL = """
select
    min(purchased_at) as first_purchase_at,
    max(purchased_at) as last_purchase_at,
    count(distinct order_id) as invoices,
    count(*) as product_lines,
    sum(returned_quantity) as units_returned,
    sum(amount) as revenue,
    sum(amount) filter (where user_id is null) as revenue_without_customer
from int_purchases
"""

SEGMENTS_SQL = """
select segment, count(*) as customers
from fct_customer_rfm
group by 1
order by 2 desc
limit 3
"""


def source_of(con: duckdb.DuckDBPyConnection) -> str:
    """Which source the warehouse was built from: rees46 or online_retail."""
    tables = {name for (name,) in con.sql("select table_name from duckdb_tables()").fetchall()}
    return "online_retail" if "stg_online_retail__load_audit" in tables else "rees46"


def headline(database: Path) -> dict[str, object]:
    """The headline figures as a dict, read from the warehouse at `database`."""
    with duckdb.connect(str(database), read_only=True) as con:
        def one(sql: str) -> dict[str, object]:
            relation = con.sql(sql)
            return dict(zip(relation.columns, relation.fetchall()[0]))

        common = {
            **one(CUSTOMERS_SQL),
            "top_segments": con.sql(SEGMENTS_SQL).fetchall(),
            "models": con.sql(MODELS_SQL).fetchall(),
        }
        if source_of(con) == "online_retail":
            return {"source": "online_retail", **one(INVOICE_LOAD_SQL),
                    **one(INVOICE_SALES_SQL), **common}
        return {
            "source": "rees46", **one(LOAD_SQL), **one(SALES_SQL), **common,
            "spike_days": con.sql(SPIKES_SQL).fetchall(),
            "top_category": con.sql(TOP_CATEGORY_SQL).fetchall()[0],
        }


def format_headline(database: Path, figures: dict[str, object]) -> str:
    """Human-readable lines for the terminal."""
    if figures["source"] == "online_retail":
        return format_invoice_headline(database, figures)

    def n(key: str) -> str:
        return f"{figures[key]:,}"

    category, share = figures["top_category"]
    spikes = ", ".join(str(day) for day, _ in figures["spike_days"]) or "none"
    segments = ", ".join(f"{name} {count:,}" for name, count in figures["top_segments"])
    models = format_models(figures["models"])
    return "\n".join([
        f"Warehouse: {database.resolve()}",
        f"  raw lines read        {n('rows_read')} from {figures['files']} file(s)",
        f"  events kept           {n('events_kept')} "
        f"(duplicates {n('rows_duplicate')}, quarantined {n('rows_rejected')})",
        f"  period                {figures['first_event_at']} .. {figures['last_event_at']} UTC",
        f"  sessions / visitors   {n('sessions')} / {n('visitors')}",
        f"  session conversion    {figures['session_conversion_rate']:.2%} "
        f"(cart abandonment {figures['cart_abandonment_rate']:.1%})",
        f"  purchases / buyers    {n('purchases')} / {n('buyers')}",
        f"  revenue               ${figures['revenue']:,.2f} "
        f"(AOV ${figures['average_order_value']:,.2f})",
        f"  top category          {category} ({share:.1%} of revenue)",
        f"  sale-spike days       {spikes}",
        f"  largest RFM segments  {segments}",
        *MODELS_HEADER,
        *models,
    ])


MODELS_HEADER = [
    "  models (primary metric at the last test cutoff, vs each baseline, 95% interval "
    "of the difference; `make model-cards` for the rest):",
]


def format_invoice_headline(database: Path, figures: dict[str, object]) -> str:
    """The headline of a transactions-only warehouse (Online Retail II invoices)."""
    def n(key: str) -> str:
        return f"{figures[key]:,}"

    segments = ", ".join(f"{name} {count:,}" for name, count in figures["top_segments"])
    return "\n".join([
        f"Warehouse: {database.resolve()} (source online_retail: invoices, no click-stream)",
        f"  raw lines read        {n('rows_read')} from {figures['files']} file(s)",
        f"  invoice lines kept    {n('lines_kept')} "
        f"(sheet-overlap duplicates {n('rows_duplicate')}, quarantined {n('rows_rejected')}; "
        f"{n('return_lines')} return lines, {n('lines_without_customer')} without customer)",
        f"  period                {figures['first_purchase_at']} .. "
        f"{figures['last_purchase_at']} UTC",
        f"  invoices / lines      {n('invoices')} / {n('product_lines')} product sale lines "
        f"({n('units_returned')} units returned and netted)",
        f"  customers (buyers)    {n('buyers')}",
        f"  net revenue           £{figures['revenue']:,.2f} "
        f"(£{figures['revenue_without_customer'] or 0:,.2f} without customer; customers' "
        f"AOV £{figures['average_order_value']:,.2f})",
        f"  largest RFM segments  {segments}",
        "  click-stream models   not built (sessions, funnels, propensity, recommendations,",
        "                        fraud, pricing, clusters need events; docs/sources.md)",
        *MODELS_HEADER,
        *format_models(figures["models"]),
    ])


def format_models(rows: list[tuple]) -> list[str]:
    """One line per model and baseline: skipped models with their reason, the rest with
    value, baseline, the interval of the difference and the verdict."""
    if not rows:
        return ["    (no model trained)"]
    width = max(len(row[0]) for row in rows) + 1
    lines = []
    for (name, status, reason, evaluation, metric, cutoff, value, baseline, baseline_value,
         low, high, verdict) in rows:
        if status != "trained":
            lines.append(f"    {name:<{width}} SKIPPED ({status}): {reason}")
        elif evaluation not in (None, "trained"):
            lines.append(f"    {name:<{width}} trained; evaluation skipped: {reason}")
        elif metric is None:
            lines.append(f"    {name:<{width}} no evaluation yet (make evaluate)"
                         + (f": {reason}" if reason else ""))
        elif value is None or baseline_value is None:
            lines.append(f"    {name:<{width}} {metric} at {cutoff or 'all cutoffs'}: "
                         "undefined")
        else:
            interval = "" if low is None else f" [{low:+.3f}, {high:+.3f}]"
            lines.append(f"    {name:<{width}} {metric} at {cutoff or 'all cutoffs'}: "
                         f"{value:.3f} vs "
                         f"{baseline} {baseline_value:.3f}{interval} {verdict or ''}"
                         .rstrip())
    return lines


def serving_status(serving: Path) -> dict[str, object] | None:
    """What the last publish wrote into the serving copy at `serving`; None if absent."""
    if not serving.exists():
        return None
    with connect_serving(serving) as con:
        relation = con.sql(SERVING_SQL)
        return dict(zip(relation.columns, relation.fetchall()[0]))


def format_serving(serving: Path, exports: Path, status: dict[str, object] | None,
                   dashboard: bool = True) -> str:
    """Where analysts and BI tools read the data, and how to open the dashboard (which
    needs the click-stream marts)."""
    if status is None:
        return (f"Serving copy: not published at {serving} (run `make publish` after a "
                "successful build)")
    users = ("pseudonymised (REES46_USER_ID_SALT)" if status["pseudonymised_columns"]
             else "as in the warehouse (set REES46_USER_ID_SALT to pseudonymise)")
    return "\n".join([
        "Serving copy for analysts and BI tools (read-only; see README, For analysts):",
        f"  DuckDB file           {serving.resolve()}",
        f"                        {status['tables']} tables, {status['rows']:,} rows, "
        f"published {status['published_at']:%Y-%m-%d %H:%M} UTC, "
        f"DuckDB storage {status['storage_version']}",
        f"  Parquet               {(exports / 'current').absolute()}/<table>.parquet",
        f"  user ids              {users}",
        *([f"  dashboard             make dashboard   (Streamlit, reads "
           f"REES46_SERVING_DB={serving})"] if dashboard else []),
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", type=Path,
                        default=Path(os.environ.get("DUCKDB_PATH", DEFAULT_DATABASE)))
    parser.add_argument("--serving", type=Path,
                        default=Path(os.environ.get("REES46_SERVING_DB", DEFAULT_SERVING)))
    parser.add_argument("--exports", type=Path,
                        default=Path(os.environ.get("REES46_EXPORTS_DIR", DEFAULT_EXPORTS)))
    args = parser.parse_args(argv)
    figures = headline(args.database)
    print(format_headline(args.database, figures))
    print(format_serving(args.serving, args.exports, serving_status(args.serving),
                         dashboard=figures["source"] == "rees46"))


if __name__ == "__main__":
    main()
