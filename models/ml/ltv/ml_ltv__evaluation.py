"""Replays both CLV procedures at the rolling test cutoffs (ml/ltv.py, evaluate_ltv)."""
import pandas as pd

from ml.evaluation import as_flag
from ml.ltv import evaluate_ltv, runs_or_skip


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    seed = int(dbt.config.get("ml_seed"))
    n_bootstrap = int(dbt.config.get("ml_bootstrap_samples"))
    step_days = int(dbt.config.get("ml_evaluation_step_days"))
    n_cutoffs = int(dbt.config.get("ml_evaluation_cutoffs"))
    strict = as_flag(dbt.config.get("ml_strict"))
    snapshots = dbt.ref("int_customer_features_evaluation_snapshots").df()
    runs = runs_or_skip(
        lambda: evaluate_ltv(snapshots, seed, step_days, n_cutoffs, n_bootstrap),
        strict=strict, run_kind="evaluation")
    return pd.concat([run.to_frame() for run in runs], ignore_index=True)
