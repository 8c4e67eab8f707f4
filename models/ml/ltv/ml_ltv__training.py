"""Chooses, fits and records both CLV variants, one run each (ml/ltv.py, train_ltv)."""
import pandas as pd

from ml.evaluation import as_flag
from ml.ltv import runs_or_skip, train_ltv


def model(dbt, session):
    dbt.config(materialized="table")
    seed = int(dbt.config.get("ml_seed"))
    n_bootstrap = int(dbt.config.get("ml_bootstrap_samples"))
    strict = as_flag(dbt.config.get("ml_strict"))
    snapshots = dbt.ref("int_customer_features_snapshots").df()
    runs = runs_or_skip(lambda: train_ltv(snapshots, seed=seed, n_bootstrap=n_bootstrap),
                        strict=strict)
    return pd.concat([run.to_frame() for run in runs], ignore_index=True)
