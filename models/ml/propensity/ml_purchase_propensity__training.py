"""Trains both purchase-propensity tasks and records one run each (ml/propensity.py)."""
import pandas as pd

from ml.propensity import read_sample, train_propensity


def model(dbt, session):
    dbt.config(materialized="table")
    seed = int(dbt.config.get("ml_seed"))
    cap = int(dbt.config.get("max_rows_per_role"))
    carts = dbt.ref("int_cart_events_features")
    sessions = dbt.ref("int_session_prefix_features")
    runs = train_propensity(
        {role: read_sample(carts, "cart_event_id", role, cap, seed)
         for role in ("train", "test")},
        {role: read_sample(sessions, "session_id", role, cap, seed)
         for role in ("train", "test")},
        seed=seed, extra_params={"max_rows_per_role": cap})
    return pd.concat([run.to_frame() for run in runs], ignore_index=True)
