"""Expected units, revenue and margin at several prices within a band, and the price to
act on ("keep" unless the gain's interval excludes 0), from the latest price-elasticity
run (no rows when that run was skipped)."""
from ml.elasticity import empty_recommendations, price_recommendations, with_run_columns
from ml.registry import is_trained, latest_record, load_model


def _optional_float(value):
    return None if value in (None, "", "None", "none", "null") else float(value)


def model(dbt, session):
    dbt.config(materialized="table")
    run = latest_record(dbt.ref("ml_price_elasticity__training").df())
    if not is_trained(run):
        return with_run_columns(empty_recommendations(), run)
    current = dbt.ref("int_products_demand_summarized").df()
    out = price_recommendations(
        load_model(run["model_artifact"]),
        current,
        band=float(dbt.config.get("price_change_band")),
        cost_ratio=_optional_float(dbt.config.get("price_cost_ratio")),
        n_points=int(dbt.config.get("price_points")),
    )
    return with_run_columns(out, run)
