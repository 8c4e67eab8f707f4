"""Forecasts every daily series from the day after the data ends, with the model and the
conformal quantiles the latest revenue_forecast run chose, and the seasonal naive
baseline; an empty table of the same columns when that run was skipped."""
from ml.forecast import forecast_scores
from ml.registry import run_of


def model(dbt, session):
    dbt.config(materialized="table")
    record = run_of(dbt.ref("ml_revenue_forecast__training").df(), "revenue_forecast")
    daily = dbt.ref("int_revenue_daily_series").df()
    sale_dates = dbt.ref("sale_days").df()["sale_date"]
    return forecast_scores(daily, sale_dates, record)
