"""Chooses, calibrates and trains the churn classifier; records the run (ml/churn.py)."""
from ml.churn import train_churn
from ml.evaluation import as_flag, train_or_skip


def model(dbt, session):
    dbt.config(materialized="table")
    seed = int(dbt.config.get("ml_seed"))
    n_bootstrap = int(dbt.config.get("ml_bootstrap_samples"))
    strict = as_flag(dbt.config.get("ml_strict"))
    snapshots = dbt.ref("int_customer_features_snapshots").df()
    run = train_or_skip(
        "churn", lambda: train_churn(snapshots, seed=seed, n_bootstrap=n_bootstrap),
        strict=strict)
    return run.to_frame()
