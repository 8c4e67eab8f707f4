"""Price recommendations within a band, from the latest price-elasticity run."""
from ml.elasticity import price_recommendations
from ml.registry import latest_record, load_model


def _optional_float(value):
    return None if value in (None, "", "None", "none", "null") else float(value)


def model(dbt, session):
    dbt.config(materialized="table")
    run = latest_record(dbt.ref("ml_price_elasticity__training").df())
    current = dbt.ref("int_products_demand_summarized").df()
    out = price_recommendations(
        load_model(run["model_artifact"]),
        current,
        band=float(dbt.config.get("price_change_band")),
        cost_ratio=_optional_float(dbt.config.get("price_cost_ratio")),
    )
    out.insert(0, "run_id", run["run_id"])
    out["is_model_below_baseline"] = bool(run["is_below_baseline"])
    return out
