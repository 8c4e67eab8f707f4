"""Fits and evaluates both CLV variants and records one run each (ml/ltv.py)."""
import pandas as pd

from ml.ltv import train_ltv


def model(dbt, session):
    dbt.config(materialized="table")
    snapshots = dbt.ref("int_customer_features_snapshots").df()
    runs = train_ltv(snapshots, seed=int(dbt.config.get("ml_seed")))
    return pd.concat([run.to_frame() for run in runs], ignore_index=True)
