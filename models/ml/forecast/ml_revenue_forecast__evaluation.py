"""The revenue forecast's rolling-origin evaluation (selector `evaluate`): the production
procedure replayed at ml_evaluation_cutoffs test origins ml_evaluation_step_days apart,
scored once on each test window beside the baselines (ml/forecast.py,
evaluate_revenue_forecast)."""
from ml.evaluation import as_flag, train_or_skip
from ml.forecast import MODEL_NAME, evaluate_revenue_forecast


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    daily = dbt.ref("int_revenue_daily_series").df()
    options = dict(
        horizon=int(dbt.config.get("horizon_days")),
        validation_days=int(dbt.config.get("eval_days")),
        n_cutoffs=int(dbt.config.get("ml_evaluation_cutoffs")),
        step_days=int(dbt.config.get("ml_evaluation_step_days")),
        eval_top_categories=int(dbt.config.get("eval_top_categories")),
        n_bootstrap=int(dbt.config.get("ml_bootstrap_samples")),
        seed=int(dbt.config.get("seed")),
    )
    run = train_or_skip(MODEL_NAME, lambda: evaluate_revenue_forecast(daily, **options),
                        strict=as_flag(dbt.config.get("ml_strict")), run_kind="evaluation")
    return run.to_frame()
