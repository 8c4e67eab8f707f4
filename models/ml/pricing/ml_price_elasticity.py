"""Category price elasticities of the latest price-elasticity training run (no rows when
that run was skipped)."""
from ml.elasticity import category_elasticity_frame, empty_category_frame, with_run_columns
from ml.registry import is_trained, latest_record, load_model


def model(dbt, session):
    dbt.config(materialized="table")
    run = latest_record(dbt.ref("ml_price_elasticity__training").df())
    out = (category_elasticity_frame(load_model(run["model_artifact"]))
           if is_trained(run) else empty_category_frame())
    return with_run_columns(out, run)
