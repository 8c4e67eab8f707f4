"""Replays the purchase-propensity procedure at the weekly test cutoffs; one evaluation
run per task (ml/propensity.py, docs/evaluation.md)."""
import pandas as pd

from ml.evaluation import as_flag
from ml.propensity import evaluate_propensity


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    runs = evaluate_propensity(
        {"cart": dbt.ref("int_cart_events_features"),
         "session": dbt.ref("int_session_prefix_features")},
        seed=int(dbt.config.get("ml_seed")),
        max_rows=int(dbt.config.get("max_rows_per_role")),
        horizon_days=int(dbt.config.get("horizon_days")),
        step_days=int(dbt.config.get("step_days")),
        n_cutoffs=int(dbt.config.get("n_cutoffs")),
        n_samples=int(dbt.config.get("ml_bootstrap_samples")),
        strict=as_flag(dbt.config.get("ml_strict")))
    return pd.concat([run.to_frame() for run in runs], ignore_index=True)
