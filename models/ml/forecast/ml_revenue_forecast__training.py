"""Rolling-origin evaluation of the revenue and orders forecasters; records the run and
the model chosen (ml/forecast.py, train_revenue_forecast)."""
from ml.forecast import train_revenue_forecast


def model(dbt, session):
    dbt.config(materialized="table")
    daily = dbt.ref("int_revenue_daily_series").df()
    run = train_revenue_forecast(
        daily,
        horizon=int(dbt.config.get("horizon_days")),
        eval_days=int(dbt.config.get("eval_days")),
        step_days=int(dbt.config.get("step_days")),
        eval_top_categories=int(dbt.config.get("eval_top_categories")),
    )
    return run.to_frame()
