"""Fraud scores per user from the latest fraud training run.

Thin wrapper over ml.fraud.score_users.
"""
from ml.fraud import score_users
from ml.registry import latest_record, load_model


def model(dbt, session):
    dbt.config(materialized="table")
    run = latest_record(dbt.ref("ml_fraud__training").df())
    fraud_model = load_model(run["model_artifact"])
    features = dbt.ref("int_fraud_user_features").df()
    scores = score_users(fraud_model, features)
    scores.insert(1, "run_id", run["run_id"])
    scores["is_model_below_baseline"] = bool(run["is_below_baseline"])
    return scores
