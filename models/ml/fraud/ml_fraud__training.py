"""Fraud training run: isolation forest on user behaviour, rules, evaluation.

Thin wrapper over ml.fraud.train_fraud; returns the one-row registry record (a skipped
run without any user, unless var ml_strict).
"""
from ml.evaluation import as_flag, train_or_skip
from ml.fraud import Thresholds, train_fraud


def model(dbt, session):
    dbt.config(materialized="table")
    thresholds = Thresholds.from_config({
        "max_views_per_minute": dbt.config.get("max_views_per_minute"),
        "max_events_per_hour": dbt.config.get("max_events_per_hour"),
        "min_blind_purchases": dbt.config.get("min_blind_purchases"),
        "min_blind_share": dbt.config.get("min_blind_share"),
        "price_ratio_limit": dbt.config.get("price_ratio_limit"),
        "min_burst_purchases": dbt.config.get("min_burst_purchases"),
        "rule_blend": dbt.config.get("rule_blend"),
    })
    features = dbt.ref("int_fraud_user_features").df()
    actors = dbt.ref("int_fraud_planted_actors").df()
    options = dict(
        thresholds=thresholds,
        seed=int(dbt.config.get("seed")),
        n_estimators=int(dbt.config.get("n_estimators")),
        max_fit_rows=int(dbt.config.get("max_fit_rows")),
        n_bootstrap=int(dbt.config.get("ml_bootstrap_samples")),
    )
    run = train_or_skip("fraud", lambda: train_fraud(features, actors, **options),
                        strict=as_flag(dbt.config.get("ml_strict")))
    return run.to_frame()
