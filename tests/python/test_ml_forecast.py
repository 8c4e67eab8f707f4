"""ml.forecast: metrics, the seasonal naive, the sale-day handling and the rolling-origin
training run on simulated daily series with a planted level, noise and sale spike; the
revenue forecast on the shared generated warehouse against its baseline."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from dbt_project import query
from ml.evaluation import InsufficientHistory, Resampler, train_or_skip
from ml.forecast import (BASELINE, BASELINES, MODELS, apply_conformal, conformal_quantile,
                         evaluate_revenue_forecast, forecast_ets, forecast_metrics,
                         forecast_naive, forecast_revenue, forecast_sarimax,
                         forecast_scores, forecast_seasonal_naive, forecast_trailing_mean,
                         mase_scale, train_revenue_forecast, window_metrics)
from ml.registry import SKIPPED_INSUFFICIENT_HISTORY, TrainingRun, Window, load_model

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


def test_naive_and_trailing_mean_baselines() -> None:
    y = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    naive = forecast_naive(y, np.zeros(10, bool), np.zeros(3, bool), 3)
    assert naive["point"].tolist() == [10.0, 10.0, 10.0]
    # a random walk's sd grows with sqrt(h): the in-sample differences are all 1
    assert naive["sd"].to_numpy() == pytest.approx(np.sqrt([1, 2, 3]))
    mean = forecast_trailing_mean(y, np.zeros(10, bool), np.zeros(3, bool), 3)
    assert mean["point"].tolist() == [7.0, 7.0, 7.0]  # mean of 4..10


def test_conformal_quantile_takes_the_finite_sample_rank() -> None:
    scores = np.arange(1.0, 20.0)  # 19 scores
    assert conformal_quantile(scores, 80) == 16.0  # ceil(20 x 0.8) = 16th
    assert conformal_quantile(scores, 95) == 19.0  # ceil(20 x 0.95) = 19th
    assert conformal_quantile(scores[:5], 95) == 5.0  # too few: the largest
    with pytest.raises(ValueError):
        conformal_quantile(np.array([np.nan]), 80)
    rows = pd.DataFrame({"point": [10.0, 1.0], "sd": [2.0, 1.0]})
    out = apply_conformal(rows, {"80": 1.5, "95": 3.0})
    assert out["lo80"].tolist() == [7.0, 0.0] and out["hi80"].tolist() == [13.0, 2.5]
    assert out["hi95"].tolist() == [16.0, 4.0]


def test_conformal_intervals_cover_as_promised_on_exchangeable_series() -> None:
    """Planted truth: i.i.d. noise around a level. The models' own intervals are
    whatever they are; the conformal ones, set on the validation windows, must cover
    about 80% and 95% of the next windows."""
    daily = daily_frame(seed=4)
    run = evaluate_revenue_forecast(daily, horizon=7, validation_days=21, n_cutoffs=3,
                                    step_days=7, eval_top_categories=2, n_bootstrap=50)
    pooled = {(m.metric, m.baseline): m for m in run.metrics if m.cutoff is None}
    assert abs(pooled[("coverage_80", None)].value - 0.8) <= 0.12
    assert pooled[("coverage_95", None)].value >= 0.85


def test_evaluation_replays_production_before_each_test_origin() -> None:
    daily = daily_frame()
    run = evaluate_revenue_forecast(daily, horizon=7, validation_days=21, n_cutoffs=3,
                                    step_days=7, eval_top_categories=1, n_bootstrap=50)
    assert run.run_kind == "evaluation" and run.model is None
    assert run.params["test_origins"] == ["2019-12-03", "2019-12-10", "2019-12-17"]
    # the last test window ends on the last date
    assert pd.Timestamp(run.params["test_origins"][-1]) + pd.Timedelta(days=6) == \
        pd.to_datetime(daily["series_date"]).max()
    for origin, choice in run.params["choices"].items():
        assert max(choice["validation_origins"]) < origin
        before = daily[pd.to_datetime(daily["series_date"]) < pd.Timestamp(origin)]
        production = train_revenue_forecast(before, horizon=7, validation_days=21,
                                            eval_top_categories=1, n_bootstrap=20)
        assert production.params["selected_model"] == choice["model"]
        assert production.params["conformal_quantiles"] == choice["conformal_quantiles"]
    keys = [(m.metric, m.split, m.cutoff, m.baseline) for m in run.metrics]
    assert len(keys) == len(set(keys))
    (primary, *_), = [[m for m in run.primary_metrics() if m.baseline == BASELINE]]
    assert (primary.metric, primary.split, primary.cutoff) == ("mase", "test", None)
    assert {m.baseline for m in run.primary_metrics()} == set(BASELINES)
    # no weekly pattern: last week's value is a noisy forecast, a smoothed level is not
    assert primary.verdict() == "better", primary
    assert primary.ci_low <= primary.value <= primary.ci_high
    cutoffs = {m.cutoff for m in run.metrics if m.metric == "mase"}
    assert cutoffs == {None, *(pd.Timestamp(o).date() for o in run.params["test_origins"])}
    assert not run.is_below_baseline()


def test_the_choice_ignores_the_test_windows() -> None:
    """Multiplying every value from the first test origin on changes the test figures but
    neither the first replay's choice nor its conformal quantiles."""
    daily = daily_frame()
    kwargs = dict(horizon=7, validation_days=21, n_cutoffs=3, step_days=7,
                  eval_top_categories=1, n_bootstrap=20)
    run = evaluate_revenue_forecast(daily, **kwargs)
    first = pd.Timestamp(run.params["test_origins"][0])
    changed = daily.copy()
    later = pd.to_datetime(changed["series_date"]) >= first
    changed.loc[later, "value"] *= 5
    other = evaluate_revenue_forecast(changed, **kwargs)
    key = str(first.date())
    assert other.params["choices"][key] == run.params["choices"][key]
    mase = {m.baseline: m.value for m in run.primary_metrics()}
    other_mase = {m.baseline: m.value for m in other.primary_metrics()}
    assert mase != other_mase


def test_production_run_records_validation_metrics_and_the_choice() -> None:
    daily = daily_frame()
    run = train_revenue_forecast(daily, horizon=7, validation_days=21,
                                 eval_top_categories=1, n_bootstrap=50)
    assert run.run_kind == "production" and run.model_name == "revenue_forecast"
    params = run.params
    assert params["selected_model"] in MODELS
    assert params["evaluated_series"] == [
        "overall:revenue", "overall:orders", "category_l1=electronics:revenue"]
    assert params["validation_origins"] == ["2019-12-03", "2019-12-10", "2019-12-17"]
    assert params["validation_mase"][params["selected_model"]] == min(
        params["validation_mase"].values())
    assert params["n_conformal_scores"] == 3 * 3 * 7
    assert {m.split for m in run.metrics} == {"validation"}
    assert {m.baseline for m in run.primary_metrics()} == set(BASELINES)
    assert run.model["conformal_quantiles"]["80"] < run.model["conformal_quantiles"]["95"]
    assert run.n_test == 63  # 3 series x 3 origins x 7 horizons
    assert json.loads(run.to_frame().loc[0, "params_json"])["horizon_days"] == 7


def test_too_short_a_series_is_a_skipped_run_and_an_empty_forecast() -> None:
    daily = daily_frame()
    short = daily[pd.to_datetime(daily["series_date"]) < pd.Timestamp("2019-10-31")]
    with pytest.raises(InsufficientHistory, match="needs 42 days of history, has 30"):
        train_revenue_forecast(short, validation_days=21)
    with pytest.raises(InsufficientHistory, match="needs 63 days of history, has 30"):
        evaluate_revenue_forecast(short, validation_days=21)
    # a month with one validation week still trains (21 days of history + 7)
    month = train_revenue_forecast(short, validation_days=7, eval_top_categories=1,
                                   n_bootstrap=10)
    assert month.params["validation_origins"] == ["2019-10-24"]
    run = train_or_skip("revenue_forecast", lambda: train_revenue_forecast(short))
    assert run.status == SKIPPED_INSUFFICIENT_HISTORY and "has 30" in run.status_reason
    record = run.to_frame().iloc[0]
    empty = forecast_scores(short, [], record)
    full = forecast_scores(daily, [], train_revenue_forecast(
        daily, validation_days=21, eval_top_categories=1, n_bootstrap=20
    ).to_frame().iloc[0])
    assert empty.empty and len(full) > 0
    assert list(empty.columns) == list(full.columns)
    assert (empty.dtypes == full.dtypes).all()
    con = duckdb.connect()
    con.register("empty_scores", empty)
    described = {row[0]: row[1]
                 for row in con.sql("describe select * from empty_scores").fetchall()}
    assert described["forecast_date"] == "DATE" and described["series_id"] == "VARCHAR"
    assert described["run_id"] == "VARCHAR"


def test_an_undefined_mase_is_null_with_a_reason_not_a_failure() -> None:
    """A series constant over its history has a zero MASE scale: MASE is undefined."""
    days = pd.date_range("2019-12-01", periods=7, freq="D")
    rows = []
    for model in ("ets", *BASELINES):
        rows.append(pd.DataFrame({
            "series_id": "overall", "measure": "orders", "origin_date": days[0],
            "forecast_date": days, "horizon": np.arange(1, 8), "model": model,
            "point": 5.0, "sd": 1.0, "lo80": 4.0, "hi80": 6.0, "lo95": 3.0, "hi95": 7.0,
            "actual": 6.0, "scale": 0.0}))
    frame = pd.concat(rows, ignore_index=True)
    for level in (80, 95):
        frame[f"model_lo{level}"] = frame[f"lo{level}"]
        frame[f"model_hi{level}"] = frame[f"hi{level}"]
    metrics = window_metrics(frame, "ets", Resampler(7, n_samples=20, seed=0), "test",
                             None, primary=True, conformal=True)
    mase = [m for m in metrics if m.metric == "mase"]
    assert len(mase) == 3 and all(m.value is None for m in mase)
    assert all("scale is 0" in m.undefined_reason for m in mase)
    assert all(m.verdict() is None for m in mase)
    smape = [m for m in metrics if m.metric == "smape"]
    assert all(m.value is not None for m in smape)
    run = TrainingRun("revenue_forecast", Window(None, None), Window(None, None), 0, 0, {},
                      metrics=metrics, run_kind="evaluation")
    assert not run.is_below_baseline()


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

def test_revenue_forecast_evaluation_on_the_warehouse(synth_warehouse) -> None:
    """The latest evaluation run: pooled test MASE beside the three baselines with
    intervals, not worse than the seasonal naive, and conformal coverage reported beside
    the models' own intervals on the three test windows."""
    rows = query(synth_warehouse.database, """
        select metric, baseline, cutoff, value, ci_low, ci_high, baseline_value,
               diff_ci_low, diff_ci_high, verdict, is_primary
        from ml_model_metrics
        where model_name = 'revenue_forecast' and run_kind = 'evaluation'
          and split = 'test'""")
    pooled = {(r[0], r[1]): r for r in rows if r[2] is None}
    for baseline in BASELINES:
        metric, _, _, value, low, high, base, dlow, dhigh, verdict, primary = pooled[
            ("mase", baseline)]
        assert primary and low <= value <= high and dlow <= value - base <= dhigh
        assert verdict in ("better", "inconclusive", "worse")
    assert pooled[("mase", BASELINE)][9] != "worse"
    cutoffs = {r[2] for r in rows if r[0] == "mase" and r[2] is not None}
    assert len(cutoffs) == 3
    assert not any(r[10] for r in rows if r[2] is not None)  # per cutoff: secondary
    for level in (80, 95):
        conformal = pooled[(f"coverage_{level}", None)][3]
        assert abs(conformal - level / 100) <= 0.15, (level, conformal)
        assert (f"coverage_{level}_model_intervals", None) in pooled
    (status,) = query(synth_warehouse.database, """
        select status from ml_model_runs
        where model_name = 'revenue_forecast' and run_kind = 'evaluation'""")[0]
    assert status == "trained"


def test_revenue_forecast_production_run_on_the_warehouse(synth_warehouse) -> None:
    rows = query(synth_warehouse.database, """
        select split, metric, baseline, value, ci_low, ci_high, verdict
        from ml_model_metrics
        where model_name = 'revenue_forecast' and run_kind = 'production'
          and is_primary""")
    assert {r[2] for r in rows} == set(BASELINES)
    assert all(r[0] == "validation" and r[1] == "mase" for r in rows)
    assert all(r[4] <= r[3] <= r[5] for r in rows)
    assert {r[6] for r in rows if r[2] == BASELINE} != {"worse"}


def test_forecast_tables_match_the_selected_model(synth_warehouse) -> None:
    (params,) = query(synth_warehouse.database, """
        select params_json from ml_model_runs where model_name = 'revenue_forecast'
          and run_kind = 'production' order by trained_at desc limit 1""")[0]
    selected = json.loads(params)["selected_model"]
    models = dict(query(synth_warehouse.database, """
        select model, count(*) from ml_revenue_forecast group by 1"""))
    series = query(synth_warehouse.database, """
        select count(distinct series_id || measure) from int_revenue_daily_series""")[0][0]
    assert models == {selected: series * 7, BASELINE: series * 7}
    methods = dict(query(synth_warehouse.database, """
        select model, any_value(interval_method) from ml_revenue_forecast group by 1"""))
    assert methods == {selected: "conformal", BASELINE: "model"}
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
    choice = load_model(artifact)
    assert choice["model"] == selected
    assert choice["conformal_quantiles"] == json.loads(params)["conformal_quantiles"]
