"""The revenue forecast's production run: the model and the conformal quantiles chosen on
the latest validation backtest, its validation metrics beside the baselines, and the
choice the forecasts use (ml/forecast.py, train_revenue_forecast). Too short a series
gives a skipped run (status skipped_insufficient_history) unless var ml_strict."""
from ml.evaluation import as_flag, train_or_skip
from ml.forecast import MODEL_NAME, train_revenue_forecast


def model(dbt, session):
    dbt.config(materialized="table")
    daily = dbt.ref("int_revenue_daily_series").df()
    options = dict(
        horizon=int(dbt.config.get("horizon_days")),
        validation_days=int(dbt.config.get("eval_days")),
        eval_top_categories=int(dbt.config.get("eval_top_categories")),
        n_bootstrap=int(dbt.config.get("ml_bootstrap_samples")),
        seed=int(dbt.config.get("seed")),
    )
    run = train_or_skip(MODEL_NAME, lambda: train_revenue_forecast(daily, **options),
                        strict=as_flag(dbt.config.get("ml_strict")))
    return run.to_frame()
