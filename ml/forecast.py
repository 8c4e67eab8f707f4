"""Daily revenue and orders forecasts: ETS and SARIMAX beside a seasonal naive baseline.

Input: rows of `int_revenue_daily_series`, one per series x measure x day, with
``series_id`` (``overall`` or ``category_l1=<name>``), ``series_level``,
``category_l1``, ``measure`` (``revenue`` in USD or ``orders``), ``series_date``,
``value`` and ``is_sale_day`` (a day of the seed `sale_days`: known in advance, never
read from the data). Every series must cover every day from its first to its last date.

Models (each fitted on one series, statsmodels):

- ``ets``: additive-error exponential smoothing (ETSModel, heuristic initial states);
  of ETS(A,N,N) and ETS(A,N,A) with a 7-day season, the one with the lower AICc. ETS takes no
  regressors, so sale days are handled as known interventions: in the fitted history a
  sale day is replaced by the median of the ordinary days within a season around it, and
  a future sale day is forecast as that value times the mean historical sale-day uplift
  (1 when the history has no sale day).
- ``sarimax``: ARIMA(0,1,1) x (1,0,0)_7 errors with the sale-day dummy as a regressor
  (dropped when the history has no sale day).
- baseline ``seasonal_naive``: the value of the same weekday of the last observed week;
  intervals from the normal quantiles of its in-sample seasonal differences.

Intervals are the models' own 80% and 95% prediction intervals, cut at 0 (revenue and
orders are never negative).

Evaluation is rolling-origin over the last `eval_days` days: origins every `step_days`
days, each refitting on the days before it and forecasting horizons 1..`horizon`, every
forecast day inside the data. Metrics (standard definitions, pooled over origins and
horizons): MASE = mean |error| / the in-sample MAE of the one-season seasonal naive of the
origin's history (pairs touching a known sale day left out of the scale); sMAPE = mean
of 200 |error| / (|actual| + |forecast|) (0 where both are 0); coverage_80/_95 = share of
actuals inside the interval. The seasonal naive forecast for horizons up to one season is
the in-sample seasonal naive, so its MASE is near 1 by construction; it is reported as the
baseline value. Only the evaluated series (overall revenue and orders, and the revenue
of the top `eval_top_categories` categories by revenue before the evaluation window)
are backtested: SARIMAX fits cost about 0.1-1 s each. The model with the lower pooled
MASE is selected and forecasts every series.
"""
from __future__ import annotations

import time
import warnings
from datetime import date
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from ml.registry import Metric, TrainingRun, Window

__all__ = [
    "BASELINE", "MODELS", "SEASON", "mase_scale", "forecast_seasonal_naive",
    "forecast_ets", "forecast_sarimax", "forecast_metrics", "evaluated_series",
    "rolling_origin", "train_revenue_forecast", "forecast_revenue",
]

SEASON = 7
BASELINE = "seasonal_naive"
MODELS = ("ets", "sarimax")
INTERVAL_LEVELS = (80, 95)
# (trend, seasonal) of the ETS candidates (a trend would be damped). Two keep the fit
# count bounded; damped-trend variants forecast no better over 7 days on the demo data.
ETS_CANDIDATES = ((None, None), (None, "add"))
# Optimiser iterations: enough for these few parameters; unbounded fits of a jumpy
# category series cost seconds each without forecasting better.
ETS_MAXITER = 100
SARIMAX_MAXITER = 50
SARIMAX_ORDER = (0, 1, 1)
SARIMAX_SEASONAL_ORDER = (1, 0, 0, SEASON)
_Z = {80: 1.2815515655446004, 95: 1.959963984540054}
_COLUMNS = ["point", "lo80", "hi80", "lo95", "hi95"]


def _check_series(frame: pd.DataFrame) -> None:
    """Raise on a series with a gap or a duplicated day (nothing is filled silently)."""
    for (series_id, measure), rows in frame.groupby(["series_id", "measure"]):
        dates = pd.to_datetime(rows["series_date"])
        expected = (dates.max() - dates.min()).days + 1
        if dates.nunique() != len(dates) or len(dates) != expected:
            raise ValueError(
                f"series {series_id!r} ({measure}) is not one row per day from "
                f"{dates.min().date()} to {dates.max().date()}: {len(dates)} rows, "
                f"{dates.nunique()} distinct days, {expected} expected")


def mase_scale(y: np.ndarray, is_sale: np.ndarray, season: int = SEASON) -> float:
    """In-sample MAE of the seasonal naive forecast (y_t - y_{t-season}), leaving out the
    pairs where either day is a known sale day. NaN if fewer than one pair remains."""
    y = np.asarray(y, dtype=float)
    is_sale = np.asarray(is_sale, dtype=bool)
    if y.size <= season:
        return float("nan")
    keep = ~(is_sale[season:] | is_sale[:-season])
    diffs = np.abs(y[season:] - y[:-season])[keep]
    return float(diffs.mean()) if diffs.size else float("nan")


def _frame(point: np.ndarray, sd_or_bounds: dict[int, tuple[np.ndarray, np.ndarray]]
           ) -> pd.DataFrame:
    out = pd.DataFrame({"point": np.maximum(np.asarray(point, dtype=float), 0.0)})
    for level in INTERVAL_LEVELS:
        lo, hi = sd_or_bounds[level]
        out[f"lo{level}"] = np.maximum(np.asarray(lo, dtype=float), 0.0)
        out[f"hi{level}"] = np.maximum(np.asarray(hi, dtype=float), 0.0)
    return out


def forecast_seasonal_naive(y: np.ndarray, is_sale: np.ndarray, is_sale_future: np.ndarray,
                            horizon: int, season: int = SEASON) -> pd.DataFrame:
    """Seasonal naive forecast of horizons 1..horizon: y[T + h - season * k], k the
    smallest number of seasons reaching back into the history. Intervals: +- z x sd of
    the in-sample seasonal differences (sale pairs left out) x sqrt(k)."""
    y = np.asarray(y, dtype=float)
    h = np.arange(1, horizon + 1)
    k = (h - 1) // season + 1
    point = y[len(y) + h - season * k - 1] if len(y) >= season else np.full(horizon, y[-1])
    keep = ~(np.asarray(is_sale, bool)[season:] | np.asarray(is_sale, bool)[:-season])
    diffs = (y[season:] - y[:-season])[keep]
    sd = float(np.sqrt(np.mean(diffs ** 2))) if diffs.size else 0.0
    return _frame(point, {level: (point - _Z[level] * sd * np.sqrt(k),
                                  point + _Z[level] * sd * np.sqrt(k))
                          for level in INTERVAL_LEVELS})


def _index(n: int) -> pd.DatetimeIndex:
    # statsmodels wants a dated index with a frequency; the dates themselves don't matter.
    return pd.date_range("2000-01-03", periods=n, freq="D")


def _sale_adjusted(y: np.ndarray, is_sale: np.ndarray, season: int) -> tuple[np.ndarray,
                                                                              float]:
    """(history with each sale day replaced by the median of the ordinary days within
    one season of it, mean uplift actual / replacement over the sale days; 1 if none)."""
    adjusted = y.copy()
    uplifts = []
    for t in np.flatnonzero(is_sale):
        lo, hi = max(0, t - season), min(len(y), t + season + 1)
        window = [y[s] for s in range(lo, hi) if not is_sale[s]]
        if not window:
            continue
        adjusted[t] = float(np.median(window))
        if adjusted[t] > 0:
            uplifts.append(y[t] / adjusted[t])
    return adjusted, float(np.mean(uplifts)) if uplifts else 1.0


def forecast_ets(y: np.ndarray, is_sale: np.ndarray, is_sale_future: np.ndarray,
                 horizon: int, season: int = SEASON) -> pd.DataFrame:
    """ETS forecast (see the module docstring): the lowest-AICc of ETS_CANDIDATES on
    the sale-adjusted history; future sale days scaled by the uplift."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = np.asarray(y, dtype=float)
    adjusted, uplift = _sale_adjusted(y, np.asarray(is_sale, bool), season)
    series = pd.Series(adjusted, index=_index(len(adjusted)))
    best = None
    for trend, seasonal in ETS_CANDIDATES:
        if seasonal and len(y) < 3 * season:
            continue
        fit = ETSModel(series, error="add", trend=trend, damped_trend=trend is not None,
                       seasonal=seasonal, seasonal_periods=season if seasonal else None,
                       initialization_method="heuristic").fit(disp=False,
                                                              maxiter=ETS_MAXITER)
        if best is None or fit.aicc < best.aicc:
            best = fit
    prediction = best.get_prediction(start=len(y), end=len(y) + horizon - 1)
    point = np.asarray(prediction.predicted_mean, dtype=float)
    bounds = {}
    for level in INTERVAL_LEVELS:
        frame = prediction.summary_frame(alpha=1 - level / 100)
        bounds[level] = (frame["pi_lower"].to_numpy(float), frame["pi_upper"].to_numpy(float))
    factor = np.where(np.asarray(is_sale_future, bool), uplift, 1.0)
    return _frame(point * factor, {level: (lo * factor, hi * factor)
                                   for level, (lo, hi) in bounds.items()})


def forecast_sarimax(y: np.ndarray, is_sale: np.ndarray, is_sale_future: np.ndarray,
                     horizon: int, season: int = SEASON) -> pd.DataFrame:
    """SARIMAX(SARIMAX_ORDER) x (SARIMAX_SEASONAL_ORDER) forecast with the sale-day dummy
    as regressor (left out when the history holds no sale day)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = np.asarray(y, dtype=float)
    is_sale = np.asarray(is_sale, dtype=float)
    has_sale = bool(is_sale.any())
    seasonal = (*SARIMAX_SEASONAL_ORDER[:3], season)
    model = SARIMAX(pd.Series(y, index=_index(len(y))),
                    exog=is_sale[:, None] if has_sale else None,
                    order=SARIMAX_ORDER, seasonal_order=seasonal,
                    enforce_stationarity=True, enforce_invertibility=True,
                    concentrate_scale=True)
    fit = model.fit(disp=False, maxiter=SARIMAX_MAXITER)
    future = (np.asarray(is_sale_future, dtype=float)[:, None] if has_sale else None)
    prediction = fit.get_forecast(horizon, exog=future)
    point = np.asarray(prediction.predicted_mean, dtype=float)
    bounds = {}
    for level in INTERVAL_LEVELS:
        ci = np.asarray(prediction.conf_int(alpha=1 - level / 100), dtype=float)
        bounds[level] = (ci[:, 0], ci[:, 1])
    return _frame(point, bounds)


FORECASTERS: dict[str, Callable[..., pd.DataFrame]] = {
    "ets": forecast_ets, "sarimax": forecast_sarimax, BASELINE: forecast_seasonal_naive,
}


def _quiet(function: Callable[..., pd.DataFrame], *args: Any) -> pd.DataFrame:
    """Run one fit with statsmodels' convergence chatter silenced (the result is
    evaluated, not trusted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args)


def _single_threaded():
    """BLAS threads only cost time on series this short (and on a shared machine).

    threadpoolctl limits the libraries loaded when it is entered, so the statsmodels
    modules (and the BLAS scipy loads with them) are imported first: measured on the demo
    series, the first backtest otherwise costs 19 s of CPU instead of 3."""
    import statsmodels.tsa.exponential_smoothing.ets  # noqa: F401
    import statsmodels.tsa.statespace.sarimax  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def forecast_metrics(backtest: pd.DataFrame) -> dict[str, float]:
    """mase, smape, coverage_80, coverage_95 (and the coverage errors |coverage -
    nominal|) of backtest rows with actual, point, lo/hi bounds and scale."""
    actual = backtest["actual"].to_numpy(float)
    point = backtest["point"].to_numpy(float)
    error = np.abs(actual - point)
    denominator = np.abs(actual) + np.abs(point)
    smape = np.where(denominator > 0, 200 * error / np.where(denominator > 0,
                                                              denominator, 1), 0.0)
    out = {"mase": float(np.mean(error / backtest["scale"].to_numpy(float))),
           "smape": float(np.mean(smape))}
    for level in INTERVAL_LEVELS:
        inside = ((actual >= backtest[f"lo{level}"].to_numpy(float))
                  & (actual <= backtest[f"hi{level}"].to_numpy(float)))
        out[f"coverage_{level}"] = float(inside.mean())
        out[f"coverage_{level}_error"] = abs(out[f"coverage_{level}"] - level / 100)
    return out


def evaluated_series(daily: pd.DataFrame, eval_start: pd.Timestamp,
                     top_categories: int) -> list[tuple[str, str]]:
    """(series_id, measure) pairs to backtest: overall revenue and orders, and the revenue
    of the `top_categories` categories with most revenue before `eval_start`."""
    pairs = [(sid, m) for sid, m in (("overall", "revenue"), ("overall", "orders"))
             if ((daily["series_id"] == sid) & (daily["measure"] == m)).any()]
    history = daily[(daily["series_level"] == "category_l1")
                    & (daily["measure"] == "revenue")
                    & (pd.to_datetime(daily["series_date"]) < eval_start)]
    ranked = (history.groupby("series_id")["value"].sum()
              .sort_values(ascending=False, kind="stable"))
    return pairs + [(sid, "revenue") for sid in ranked.index[:top_categories]]


def _series(daily: pd.DataFrame, series_id: str, measure: str) -> pd.DataFrame:
    rows = daily[(daily["series_id"] == series_id) & (daily["measure"] == measure)]
    return rows.sort_values("series_date").reset_index(drop=True)


def rolling_origin(daily: pd.DataFrame, pairs: Iterable[tuple[str, str]],
                   models: Iterable[str], eval_days: int, horizon: int, step_days: int,
                   season: int = SEASON) -> pd.DataFrame:
    """Backtest rows: per series x origin x model x horizon, the forecast beside the
    actual and the origin's MASE scale. Origins are the first forecast days
    last - eval_days + 1, then every step_days, while origin + horizon - 1 <= last."""
    with _single_threaded():
        return _rolling_origin(daily, pairs, models, eval_days, horizon, step_days, season)


def _rolling_origin(daily: pd.DataFrame, pairs: Iterable[tuple[str, str]],
                    models: Iterable[str], eval_days: int, horizon: int, step_days: int,
                    season: int) -> pd.DataFrame:
    rows = []
    for series_id, measure in pairs:
        series = _series(daily, series_id, measure)
        y = series["value"].to_numpy(float)
        sale = series["is_sale_day"].to_numpy(bool)
        dates = pd.to_datetime(series["series_date"]).to_numpy()
        first_origin = len(y) - eval_days
        if first_origin < 3 * season:
            raise ValueError(
                f"series {series_id!r} has {len(y)} days: rolling-origin evaluation over "
                f"the last {eval_days} days needs at least {3 * season} days before it")
        for origin in range(first_origin, len(y) - horizon + 1, step_days):
            scale = mase_scale(y[:origin], sale[:origin], season)
            for model in models:
                frame = _quiet(FORECASTERS[model], y[:origin], sale[:origin],
                               sale[origin:origin + horizon], horizon, season)
                frame.insert(0, "model", model)
                frame.insert(0, "horizon", np.arange(1, horizon + 1))
                frame.insert(0, "forecast_date", dates[origin:origin + horizon])
                frame.insert(0, "origin_date", dates[origin])
                frame.insert(0, "measure", measure)
                frame.insert(0, "series_id", series_id)
                frame["actual"] = y[origin:origin + horizon]
                frame["scale"] = scale
                rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def _metric_rows(backtest: pd.DataFrame, model: str, split: str,
                 primary: bool) -> list[Metric]:
    ours = forecast_metrics(backtest[backtest["model"] == model])
    base = forecast_metrics(backtest[backtest["model"] == BASELINE])
    lower_better = {"mase", "smape", "coverage_80_error", "coverage_95_error"}
    return [Metric(name, ours[name], BASELINE, base[name], split=split,
                   higher_is_better=name not in lower_better,
                   is_primary=primary and name == "mase")
            for name in ("mase", "smape", "coverage_80", "coverage_95",
                         "coverage_80_error", "coverage_95_error")]


def train_revenue_forecast(daily: pd.DataFrame, horizon: int = 7, eval_days: int = 28,
                           step_days: int = 7, eval_top_categories: int = 3,
                           season: int = SEASON) -> TrainingRun:
    """Rolling-origin evaluation of ETS and SARIMAX beside the seasonal naive, and the
    choice of the model that forecasts (the lower pooled MASE).

    Metrics (baseline ``seasonal_naive`` on the same forecasts): split
    ``rolling_origin`` = the selected model pooled over every evaluated series (mase is
    the primary metric); ``rolling_origin_<model>`` = each candidate pooled;
    ``rolling_origin_<series_id>_<measure>`` = the selected model per series;
    ``rolling_origin_h<h>`` = the selected model per horizon (mase and smape only).
    The stored model is the choice: {"model", "horizon", "season", "eval_*"}.
    """
    started = time.perf_counter()
    _check_series(daily)
    dates = pd.to_datetime(daily["series_date"])
    last = dates.max()
    eval_start = last - pd.Timedelta(days=eval_days - 1)
    pairs = evaluated_series(daily, eval_start, eval_top_categories)
    backtest = rolling_origin(daily, pairs, (*MODELS, BASELINE), eval_days, horizon,
                              step_days, season)
    pooled = {model: forecast_metrics(backtest[backtest["model"] == model])["mase"]
              for model in MODELS}
    selected = min(MODELS, key=lambda model: (pooled[model], MODELS.index(model)))

    metrics = _metric_rows(backtest, selected, "rolling_origin", primary=True)
    for model in MODELS:
        metrics += _metric_rows(backtest, model, f"rolling_origin_{model}", primary=False)
    for (series_id, measure), rows in backtest.groupby(["series_id", "measure"],
                                                       sort=False):
        metrics += _metric_rows(rows, selected, f"rolling_origin_{series_id}_{measure}",
                                primary=False)
    for h, rows in backtest.groupby("horizon"):
        metrics += [m for m in _metric_rows(rows, selected, f"rolling_origin_h{h}",
                                            primary=False)
                    if m.metric in ("mase", "smape")]

    origins = sorted(backtest["origin_date"].unique())
    return TrainingRun(
        model_name="revenue_forecast",
        train_window=Window(dates.min().date(), pd.Timestamp(origins[0]).date()),
        label_window=Window(pd.Timestamp(origins[0]).date(),
                            (last + pd.Timedelta(days=1)).date()),
        n_train=int((dates < pd.Timestamp(origins[0])).sum()),
        n_test=int((backtest["model"] == selected).sum()),
        params={"selected_model": selected, "candidates": list(MODELS),
                "baseline": BASELINE, "horizon_days": horizon, "eval_days": eval_days,
                "step_days": step_days, "season_days": season,
                "origins": [str(pd.Timestamp(o).date()) for o in origins],
                "evaluated_series": [f"{s}:{m}" for s, m in pairs],
                "pooled_mase": pooled, "sarimax_order": list(SARIMAX_ORDER),
                "sarimax_seasonal_order": list(SARIMAX_SEASONAL_ORDER),
                "ets_candidates": [f"A,{'Ad' if t else 'N'},{'A' if s else 'N'}"
                                   for t, s in ETS_CANDIDATES],
                "fit_seconds": round(time.perf_counter() - started, 2)},
        metrics=metrics,
        model={"model": selected, "horizon": horizon, "season": season},
    )


def forecast_revenue(daily: pd.DataFrame, sale_dates: Iterable[date], choice: dict[str, Any]
                     ) -> pd.DataFrame:
    """Production forecasts: every series x measure, horizons 1..choice["horizon"] from
    the day after its last date, by the selected model and by the seasonal naive baseline
    (model column), with 80% and 95% intervals. `sale_dates` are the known sale days
    (the seed), which set the future dummy."""
    _check_series(daily)
    horizon, season = int(choice["horizon"]), int(choice["season"])
    sale_set = {pd.Timestamp(d) for d in sale_dates}
    with _single_threaded():
        frames = [_forecast_one(_series(daily, series_id, measure), choice["model"],
                                sale_set, horizon, season)
                  for (series_id, measure), _ in daily.groupby(["series_id", "measure"],
                                                               sort=True)]
    return pd.concat(frames, ignore_index=True)


def _forecast_one(series: pd.DataFrame, selected: str, sale_set: set[pd.Timestamp],
                  horizon: int, season: int) -> pd.DataFrame:
    """The selected model's and the baseline's forecasts of one series."""
    last = pd.Timestamp(series["series_date"].iloc[-1])
    future = pd.date_range(last + pd.Timedelta(days=1), periods=horizon, freq="D")
    sale_future = np.array([day in sale_set for day in future])
    frames = []
    for model in (selected, BASELINE):
        frame = _quiet(FORECASTERS[model], series["value"].to_numpy(float),
                       series["is_sale_day"].to_numpy(bool), sale_future, horizon, season)
        frame.insert(0, "model", model)
        frame.insert(0, "horizon", np.arange(1, horizon + 1))
        frame.insert(0, "forecast_date", future.date)
        frame.insert(0, "category_l1", series["category_l1"].iloc[0])
        frame.insert(0, "series_level", series["series_level"].iloc[0])
        frame.insert(0, "measure", series["measure"].iloc[0])
        frame.insert(0, "series_id", series["series_id"].iloc[0])
        frame["is_sale_day"] = sale_future
        frame["is_selected_model"] = model == selected
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
