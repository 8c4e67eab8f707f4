"""Tunes, calibrates and refits both purchase-propensity tasks; one run each
(ml/propensity.py)."""
import pandas as pd

from ml.evaluation import as_flag
from ml.propensity import train_propensity


def model(dbt, session):
    dbt.config(materialized="table")
    runs = train_propensity(
        {"cart": dbt.ref("int_cart_events_features"),
         "session": dbt.ref("int_session_prefix_features")},
        seed=int(dbt.config.get("ml_seed")),
        max_rows=int(dbt.config.get("max_rows_per_role")),
        n_samples=int(dbt.config.get("ml_bootstrap_samples")),
        strict=as_flag(dbt.config.get("ml_strict")))
    return pd.concat([run.to_frame() for run in runs], ignore_index=True)
