"""Replays the churn procedure at the rolling test cutoffs (ml/churn.py, evaluate_churn)."""
from ml.churn import evaluate_churn
from ml.evaluation import as_flag, train_or_skip


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    seed = int(dbt.config.get("ml_seed"))
    n_bootstrap = int(dbt.config.get("ml_bootstrap_samples"))
    step_days = int(dbt.config.get("ml_evaluation_step_days"))
    n_cutoffs = int(dbt.config.get("ml_evaluation_cutoffs"))
    strict = as_flag(dbt.config.get("ml_strict"))
    snapshots = dbt.ref("int_customer_features_evaluation_snapshots").df()
    run = train_or_skip(
        "churn", lambda: evaluate_churn(snapshots, seed, step_days, n_cutoffs, n_bootstrap),
        strict=strict, run_kind="evaluation")
    return run.to_frame()
