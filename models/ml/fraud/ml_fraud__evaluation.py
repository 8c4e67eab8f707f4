"""Rolling-origin evaluation of the fraud scores (selector `evaluate`): the forest fitted
on the users' behaviour before each of ml_evaluation_cutoffs cutoffs, the users of the
next 7 days scored once (ml.fraud.evaluate_fraud)."""
from ml.evaluation import as_flag, train_or_skip
from ml.fraud import SESSION_FEATURE_COLUMNS, Thresholds, evaluate_fraud


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    thresholds = Thresholds.from_config({
        "max_views_per_minute": dbt.config.get("max_views_per_minute"),
        "max_events_per_hour": dbt.config.get("max_events_per_hour"),
        "min_blind_purchases": dbt.config.get("min_blind_purchases"),
        "min_blind_share": dbt.config.get("min_blind_share"),
        "price_ratio_limit": dbt.config.get("price_ratio_limit"),
        "min_burst_purchases": dbt.config.get("min_burst_purchases"),
        "rule_blend": dbt.config.get("rule_blend"),
    })
    sessions = (dbt.ref("int_fraud_session_features")
                .select(", ".join(SESSION_FEATURE_COLUMNS)).df())
    actors = dbt.ref("int_fraud_planted_actors").df()
    options = dict(
        thresholds=thresholds,
        seed=int(dbt.config.get("seed")),
        step_days=int(dbt.config.get("ml_evaluation_step_days")),
        n_cutoffs=int(dbt.config.get("ml_evaluation_cutoffs")),
        n_estimators=int(dbt.config.get("n_estimators")),
        max_fit_rows=int(dbt.config.get("max_fit_rows")),
        n_bootstrap=int(dbt.config.get("ml_bootstrap_samples")),
    )
    run = train_or_skip("fraud", lambda: evaluate_fraud(sessions, actors, **options),
                        strict=as_flag(dbt.config.get("ml_strict")), run_kind="evaluation")
    return run.to_frame()
