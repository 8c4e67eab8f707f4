"""ml.forecast: metrics, the seasonal naive, the sale-day handling and the rolling-origin
training run on simulated daily series with a planted level, noise and sale spike; the
revenue forecast on the shared generated warehouse against its baseline."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dbt_project import query
from ml.forecast import (BASELINE, MODELS, forecast_ets, forecast_metrics,
                         forecast_revenue, forecast_sarimax, forecast_seasonal_naive,
                         mase_scale, train_revenue_forecast)
from ml.registry import load_model

# --------------------------------------------------------------------------- small frames

DAYS = 84
SALE_DAY = 47          # a Sunday-like day index with a planted spike
SALE_UPLIFT = 5.0


def simulate_series(level: float, days: int = DAYS, seed: int = 0, drift: float = 0.0,
                    sale_day: int | None = SALE_DAY) -> tuple[np.ndarray, np.ndarray]:
    """A daily series like the generator's: a slowly drifting level with Poisson-like
    noise, no weekly pattern, and a sale day at SALE_UPLIFT times the level."""
    rng = np.random.default_rng(seed)
    mean = level * (1 + drift * np.arange(days) / days)
    y = rng.normal(mean, 0.12 * mean)
    sale = np.zeros(days, dtype=bool)
    if sale_day is not None:
        sale[sale_day] = True
        y[sale_day] = SALE_UPLIFT * mean[sale_day]
    return np.maximum(y, 0.0), sale


def daily_frame(seed: int = 0) -> pd.DataFrame:
    """int_revenue_daily_series-shaped rows: overall and two categories, both measures."""
    dates = pd.date_range("2019-10-01", periods=DAYS, freq="D")
    rows = []
    series = (("overall", "overall", None, 50_000.0, 200.0),
              ("category_l1=electronics", "category_l1", "electronics", 30_000.0, 80.0),
              ("category_l1=kids", "category_l1", "kids", 2_000.0, 15.0))
    for k, (series_id, level, category, revenue, orders) in enumerate(series):
        for measure, size in (("revenue", revenue), ("orders", orders)):
            y, sale = simulate_series(size, seed=seed + 10 * k + len(measure), drift=0.1)
            rows.append(pd.DataFrame({
                "series_id": series_id, "series_level": level, "category_l1": category,
                "measure": measure, "series_date": dates.date, "value": y,
                "is_sale_day": sale}))
    return pd.concat(rows, ignore_index=True)


def test_mase_scale_leaves_out_pairs_touching_a_sale_day() -> None:
    y = np.array([1.0, 2, 3, 4, 5, 6, 7, 3, 4, 5, 100, 7, 8, 9])
    sale = np.zeros(14, dtype=bool)
    assert mase_scale(y, sale) == pytest.approx(np.mean(np.abs(y[7:] - y[:-7])))
    sale[10] = True  # the pair (3, 10) goes; the others are |2|,|2|,|2|,|2|,|2|,|2|
    assert mase_scale(y, sale) == pytest.approx(2.0)
    assert np.isnan(mase_scale(y[:7], sale[:7]))


def test_seasonal_naive_repeats_the_last_week_with_symmetric_intervals() -> None:
    y = np.arange(1.0, 22.0)  # 21 days, weekly differences all 7
    frame = forecast_seasonal_naive(y, np.zeros(21, bool), np.zeros(10, bool), 10)
    assert frame["point"].tolist() == [15.0, 16, 17, 18, 19, 20, 21, 15, 16, 17]
    # sd of the weekly differences is 7; two seasons back widens by sqrt(2)
    width = (frame["hi80"] - frame["point"]).to_numpy()
    assert width[0] == pytest.approx(1.2815515655 * 7)
    assert width[8] == pytest.approx(1.2815515655 * 7 * np.sqrt(2))
    assert (frame["lo95"] <= frame["lo80"]).all() and (frame["hi80"] <= frame["hi95"]).all()


def test_forecast_metrics_of_a_perfect_and_a_biased_forecast() -> None:
    actual = np.array([10.0, 20, 0, 40])
    backtest = pd.DataFrame({"actual": actual, "point": actual, "lo80": actual - 1,
                             "hi80": actual + 1, "lo95": actual - 2, "hi95": actual + 2,
                             "scale": 5.0})
    perfect = forecast_metrics(backtest)
    assert perfect["mase"] == 0 and perfect["smape"] == 0
    assert perfect["coverage_80"] == perfect["coverage_95"] == 1.0
    assert perfect["coverage_80_error"] == pytest.approx(0.2)
    biased = forecast_metrics(backtest.assign(point=actual + 5, lo80=actual + 2,
                                              hi80=actual + 8))
    assert biased["mase"] == pytest.approx(1.0)
    assert biased["coverage_80"] == 0.0
    # sMAPE: 200 * 5 / (2a + 5) per row, and 200 * 5 / 5 = 200 for the zero actual
    expected = np.mean([200 * 5 / (2 * a + 5) for a in actual])
    assert biased["smape"] == pytest.approx(expected)


@pytest.mark.parametrize("forecaster", [forecast_ets, forecast_sarimax])
def test_a_known_future_sale_day_is_forecast_with_the_planted_uplift(forecaster) -> None:
    """Planted truth: the sale day is SALE_UPLIFT times an ordinary day; a coming sale
    day in the seed must be forecast near that, the ordinary days near the level."""
    y, sale = simulate_series(1000.0, seed=3)
    future_sale = np.array([False, False, True, False, False, False, False])
    frame = forecaster(y, sale, future_sale, 7)
    ordinary = frame["point"].to_numpy()[~future_sale]
    assert np.all(np.abs(ordinary - 1000) < 150), ordinary
    assert frame["point"].iloc[2] == pytest.approx(SALE_UPLIFT * 1000, rel=0.25)
    # the spike in the history does not inflate the ordinary days' intervals much
    assert (frame["hi95"] - frame["lo95"]).to_numpy()[0] < 1000


def test_training_run_beats_the_seasonal_naive_and_records_every_split() -> None:
    daily = daily_frame()
    run = train_revenue_forecast(daily, horizon=7, eval_days=21, step_days=7,
                                 eval_top_categories=1)
    assert run.model_name == "revenue_forecast"
    params = run.params
    assert params["selected_model"] in MODELS
    assert params["evaluated_series"] == [
        "overall:revenue", "overall:orders", "category_l1=electronics:revenue"]
    assert params["origins"] == ["2019-12-03", "2019-12-10", "2019-12-17"]
    assert len({(m.metric, m.split) for m in run.metrics}) == len(run.metrics)
    (primary,) = run.primary_metrics()
    assert (primary.metric, primary.split, primary.baseline) == (
        "mase", "rolling_origin", BASELINE)
    # no weekly pattern: last week's value is a noisy forecast, a smoothed level is not
    assert primary.value < 0.9 * primary.baseline_value, primary
    assert primary.value < 1.0
    assert not run.is_below_baseline()
    by_split = {(m.metric, m.split): m for m in run.metrics}
    for model in MODELS:
        assert by_split[("mase", f"rolling_origin_{model}")].value == pytest.approx(
            params["pooled_mase"][model])
    assert params["pooled_mase"][params["selected_model"]] == min(
        params["pooled_mase"].values())
    for h in range(1, 8):
        assert ("mase", f"rolling_origin_h{h}") in by_split
    # 3 series x 3 origins x 7 horizons of the selected model
    assert run.n_test == 63
    assert json.loads(run.to_frame().loc[0, "params_json"])["horizon_days"] == 7


def test_forecasts_cover_every_series_with_ordered_intervals() -> None:
    daily = daily_frame(seed=1)
    choice = {"model": "ets", "horizon": 7, "season": 7}
    sale_dates = [pd.Timestamp("2019-12-26").date()]  # the second day after the data
    out = forecast_revenue(daily, sale_dates, choice)
    assert len(out) == 3 * 2 * 7 * 2  # series x measures x days x (model, baseline)
    assert set(out["model"]) == {"ets", BASELINE}
    assert out["is_selected_model"].sum() == len(out) / 2
    assert out["forecast_date"].min() == pd.Timestamp("2019-12-24").date()
    ordered = ((0 <= out["lo95"]) & (out["lo95"] <= out["lo80"])
               & (out["lo80"] <= out["point"]) & (out["point"] <= out["hi80"])
               & (out["hi80"] <= out["hi95"]))
    assert ordered.all()
    sale_rows = out[out["is_sale_day"] & (out["model"] == "ets")]
    assert len(sale_rows) == 6 and (sale_rows["horizon"] == 3).all()
    ets = out[(out["model"] == "ets") & (out["series_id"] == "overall")
              & (out["measure"] == "revenue")].set_index("horizon")["point"]
    assert ets[3] > 3 * ets[2]  # the known sale day is forecast as one


def test_a_gap_in_a_series_is_an_error_not_a_silent_fill() -> None:
    daily = daily_frame()
    gap = daily.drop(daily.index[(daily["series_id"] == "overall")
                                 & (daily["measure"] == "orders")][10])
    with pytest.raises(ValueError, match="not one row per day"):
        train_revenue_forecast(gap)


# --------------------------------------------------------------------------- warehouse

def test_revenue_forecast_beats_the_seasonal_naive_on_mase(synth_warehouse) -> None:
    rows = query(synth_warehouse.database, """
        select split, metric, value, baseline, baseline_value, beats_baseline
        from ml_model_metrics
        where model_name = 'revenue_forecast' and metric in ('mase', 'smape')
          and split in ('rolling_origin', 'rolling_origin_ets', 'rolling_origin_sarimax')""")
    assert len(rows) == 6
    for split, metric, value, baseline, baseline_value, beats in rows:
        assert baseline == BASELINE
        assert beats and value < baseline_value, (split, metric, value, baseline_value)
    (primary,) = query(synth_warehouse.database, """
        select value, baseline_value from ml_model_metrics
        where model_name = 'revenue_forecast' and is_primary""")
    assert primary[0] < 1.0, primary
    coverage = dict(query(synth_warehouse.database, """
        select metric, value from ml_model_metrics
        where model_name = 'revenue_forecast' and split = 'rolling_origin'
          and metric like 'coverage___'"""))
    # 140 backtest days: the 95% interval covers most of them, the 80% fewer
    assert coverage["coverage_95"] >= 0.8 and coverage["coverage_80"] <= coverage[
        "coverage_95"]


def test_forecast_tables_match_the_selected_model(synth_warehouse) -> None:
    (params,) = query(synth_warehouse.database, """
        select params_json from ml_model_runs where model_name = 'revenue_forecast'
        order by trained_at desc limit 1""")[0]
    selected = json.loads(params)["selected_model"]
    models = dict(query(synth_warehouse.database, """
        select model, count(*) from ml_revenue_forecast group by 1"""))
    series = query(synth_warehouse.database, """
        select count(distinct series_id || measure) from int_revenue_daily_series""")[0][0]
    assert models == {selected: series * 7, BASELINE: series * 7}
    scenarios = query(synth_warehouse.database, """
        select count(*), count(distinct model),
               sum(cumulative_expected) filter (where horizon = 7)
               - sum(expected) filter (where true)
        from rpt_revenue_scenarios""")[0]
    assert scenarios[0] == series * 7 and scenarios[1] == 1
    assert abs(scenarios[2]) < 1.0  # the week totals are the sums of the days
    # the overall series is the sum of the category series, day by day (revenue)
    mismatch = query(synth_warehouse.database, """
        select count(*) from (
            select series_date,
                   sum(value) filter (where series_level = 'overall') as overall,
                   sum(value) filter (where series_level = 'category_l1') as categories
            from int_revenue_daily_series where measure = 'revenue' group by 1)
        where abs(overall - categories) > 0.01""")[0][0]
    assert mismatch == 0
    artifact = query(synth_warehouse.database, """
        select model_artifact from ml_revenue_forecast__training""")[0][0]
    assert load_model(artifact)["model"] == selected
