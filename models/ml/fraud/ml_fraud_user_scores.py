"""Fraud scores per user from the latest fraud training run (no rows when it was
skipped).

Thin wrapper over ml.fraud.score_users (published_user_scores).
"""
from ml.fraud import published_user_scores
from ml.registry import is_trained, latest_record


def model(dbt, session):
    dbt.config(materialized="table")
    run = latest_record(dbt.ref("ml_fraud__training").df())
    features = dbt.ref("int_fraud_user_features").df() if is_trained(run) else None
    return published_user_scores(run, features)
