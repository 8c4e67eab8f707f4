"""Rolling-origin evaluation of the fraud scores (selector `evaluate`): the forest fitted
on the users' behaviour before each of ml_evaluation_cutoffs cutoffs, the users of the
next 7 days scored once (ml.fraud.evaluate_fraud)."""
from ml.evaluation import as_flag, train_or_skip
from ml.fraud import SESSION_FEATURE_COLUMNS, Budgets, evaluate_fraud


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    budgets = Budgets.from_config({
        "rule_quantile": dbt.config.get("rule_quantile"),
        "min_blind_share": dbt.config.get("min_blind_share"),
        "rule_blend": dbt.config.get("rule_blend"),
        "review_share": dbt.config.get("review_share"),
    })
    sessions = (dbt.ref("int_fraud_session_features")
                .select(", ".join(SESSION_FEATURE_COLUMNS)).df())
    actors = dbt.ref("int_fraud_planted_actors").df()
    options = dict(
        rules=budgets,
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
