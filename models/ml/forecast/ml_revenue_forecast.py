"""Forecasts every daily series from the day after the data ends, with the model the
latest revenue_forecast run selected and the seasonal naive baseline."""
from ml.forecast import forecast_revenue
from ml.registry import load_model, run_of, with_run


def model(dbt, session):
    dbt.config(materialized="table")
    record = run_of(dbt.ref("ml_revenue_forecast__training").df(), "revenue_forecast")
    daily = dbt.ref("int_revenue_daily_series").df()
    sale_dates = dbt.ref("sale_days").df()["sale_date"]
    forecasts = forecast_revenue(daily, sale_dates, load_model(record["model_artifact"]))
    return with_run(forecasts, record)
