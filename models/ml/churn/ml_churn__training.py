"""Trains the churn classifier and records the run (ml/churn.py, train_churn)."""
from ml.churn import train_churn


def model(dbt, session):
    dbt.config(materialized="table")
    snapshots = (dbt.ref("int_customer_features_snapshots")
                 .filter("snapshot_role in ('train', 'test')").df())
    return train_churn(snapshots, seed=int(dbt.config.get("ml_seed"))).to_frame()
