"""Fraud training run: isolation forest on user behaviour, rules, evaluation.

Thin wrapper over ml.fraud.train_fraud; returns the one-row registry record (a skipped
run without any user, unless var ml_strict).
"""
from ml.evaluation import as_flag, train_or_skip
from ml.fraud import Budgets, train_fraud


def model(dbt, session):
    dbt.config(materialized="table")
    budgets = Budgets.from_config({
        "rule_quantile": dbt.config.get("rule_quantile"),
        "min_blind_share": dbt.config.get("min_blind_share"),
        "rule_blend": dbt.config.get("rule_blend"),
        "review_share": dbt.config.get("review_share"),
    })
    features = dbt.ref("int_fraud_user_features").df()
    actors = dbt.ref("int_fraud_planted_actors").df()
    options = dict(
        rules=budgets,
        seed=int(dbt.config.get("seed")),
        n_estimators=int(dbt.config.get("n_estimators")),
        max_fit_rows=int(dbt.config.get("max_fit_rows")),
        n_bootstrap=int(dbt.config.get("ml_bootstrap_samples")),
    )
    run = train_or_skip("fraud", lambda: train_fraud(features, actors, **options),
                        strict=as_flag(dbt.config.get("ml_strict")))
    return run.to_frame()
