"""Category price elasticities of the latest price-elasticity training run."""
from ml.elasticity import category_elasticity_frame
from ml.registry import latest_record, load_model


def model(dbt, session):
    dbt.config(materialized="table")
    run = latest_record(dbt.ref("ml_price_elasticity__training").df())
    out = category_elasticity_frame(load_model(run["model_artifact"]))
    out.insert(0, "run_id", run["run_id"])
    out["is_model_below_baseline"] = bool(run["is_below_baseline"])
    return out
