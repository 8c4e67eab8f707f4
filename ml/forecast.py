"""Daily revenue and orders forecasts: ETS or SARIMAX, chosen on validation, with
conformal intervals, judged against three baselines on untouched test windows.

Input: rows of `int_revenue_daily_series`, one per series x measure x day, with
``series_id`` (``overall`` or ``category_l1=<name>``), ``series_level``,
``category_l1``, ``measure`` (``revenue`` in USD or ``orders``), ``series_date``,
``value`` and ``is_sale_day`` (a day of the seed `sale_days`: known in advance, never
read from the data). Every series must cover every day from its first to its last date.

Candidates (each fitted on one series, statsmodels):

- ``ets``: additive-error exponential smoothing (ETSModel, heuristic initial states);
  of ETS(A,N,N) and ETS(A,N,A) with a 7-day season, the one with the lower AICc. ETS takes no
  regressors, so sale days are handled as known interventions: in the fitted history a
  sale day is replaced by the median of the ordinary days within a season around it, and
  a future sale day is forecast as that value times the mean historical sale-day uplift
  (1 when the history has no sale day).
- ``sarimax``: ARIMA(0,1,1) x (1,0,0)_7 errors with the sale-day dummy as a regressor
  (dropped when the history has no sale day).

Baselines: ``seasonal_naive`` (the same weekday of the last observed week), ``naive``
(the last value) and ``trailing_mean_7`` (the mean of the last 7 days).

Windows (docs/evaluation.md). A backtest origin is a first forecast day: the fit sees the
days before it and forecasts horizons 1..H (7). Validation: `validation_days // H`
origins whose windows tile the validation_days days just before the scoring origin. On
them, and only on them, (1) the candidate with the lower pooled MASE is chosen and (2)
the conformal quantiles are set: nonconformity score |actual - point| / the model's own
predictive sd at that horizon, pooled over series, origins and horizons (per horizon
there are only origins x series = 15 scores, too few for a finite 95% rank), q = the
ceil((n + 1) level)-th smallest; the published interval is point -+ q x sd, cut at 0.
Production (`train_revenue_forecast`) chooses on the last validation_days days and
refits on every day; the evaluation (`evaluate_revenue_forecast`) replays that at three
test origins a week apart, the last window ending at the last date, each choosing on the
validation windows just before it.

Metrics (standard definitions): MASE = mean over series and forecast days of |error| /
the in-sample MAE of the one-season (7-day) seasonal naive on the origin's history of
that series (pairs touching a known sale day left out of that scale); sMAPE = mean of
200 |error| / (|actual| + |forecast|) (0 where both are 0); coverage = share of actuals
inside the interval. Only the evaluated series (overall revenue and orders, and the
revenue of the top `eval_top_categories` categories by revenue before the first
backtest origin) are backtested: fits cost 0.1-0.4 s each. Intervals: a moving-block
bootstrap over forecast days (blocks of H days), every series of a drawn day together.
"""
from __future__ import annotations

import math
import time
import warnings
from datetime import date
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.evaluation import BOOTSTRAP_SAMPLES, Resampler, compare, require_history
from ml.registry import Metric, TrainingRun, Window

__all__ = [
    "BASELINE", "BASELINES", "MODELS", "SEASON", "apply_conformal", "backtest",
    "choose_forecaster", "conformal_quantile", "conformal_scores", "empty_forecast_frame",
    "evaluate_revenue_forecast", "evaluated_series", "forecast_ets", "forecast_metrics",
    "forecast_scores",
    "forecast_naive", "forecast_revenue", "forecast_sarimax", "forecast_seasonal_naive",
    "forecast_trailing_mean", "mase_scale", "train_revenue_forecast",
    "window_metrics",
]

SEASON = 7
MODEL_NAME = "revenue_forecast"
BASELINE = "seasonal_naive"   # the baseline whose rows ml_revenue_forecast carries
BASELINES = ("seasonal_naive", "naive", "trailing_mean_7")
MODELS = ("ets", "sarimax")
# Days of history before the first validation origin: three seasons, the least the
# seasonal ETS candidate fits on (a month's extract with forecast_eval_days 7 still
# trains: 21 + 7 days).
MIN_HISTORY_DAYS = 3 * SEASON
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


def _frame(point: np.ndarray, sd: np.ndarray,
           bounds: dict[int, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Point, the predictive sd (the conformal intervals' per-horizon scale) and the
    model's own bounds, all cut at 0 except sd."""
    out = pd.DataFrame({"point": np.maximum(np.asarray(point, dtype=float), 0.0),
                        "sd": np.maximum(np.asarray(sd, dtype=float), 0.0)})
    for level in INTERVAL_LEVELS:
        lo, hi = bounds[level]
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
    return _frame(point, sd * np.sqrt(k), {level: (point - _Z[level] * sd * np.sqrt(k),
                                  point + _Z[level] * sd * np.sqrt(k))
                          for level in INTERVAL_LEVELS})


def _normal_frame(point: np.ndarray, sd: np.ndarray) -> pd.DataFrame:
    return _frame(point, sd, {level: (point - _Z[level] * sd, point + _Z[level] * sd)
                              for level in INTERVAL_LEVELS})


def forecast_naive(y: np.ndarray, is_sale: np.ndarray, is_sale_future: np.ndarray,
                   horizon: int, season: int = SEASON) -> pd.DataFrame:
    """Naive forecast: the last observed value for every horizon. Intervals: +- z x the
    rms of the in-sample day-to-day differences x sqrt(h) (a random walk)."""
    y = np.asarray(y, dtype=float)
    h = np.arange(1, horizon + 1)
    diffs = np.diff(y)
    sd = float(np.sqrt(np.mean(diffs ** 2))) if diffs.size else 0.0
    return _normal_frame(np.full(horizon, y[-1]), sd * np.sqrt(h))


def forecast_trailing_mean(y: np.ndarray, is_sale: np.ndarray, is_sale_future: np.ndarray,
                           horizon: int, season: int = SEASON) -> pd.DataFrame:
    """Trailing mean: the mean of the last `season` (7) days for every horizon.
    Intervals: +- z x the rms in-sample error of that rule one day ahead."""
    y = np.asarray(y, dtype=float)
    point = np.full(horizon, y[-season:].mean())
    if len(y) > season:
        windows = np.lib.stride_tricks.sliding_window_view(y[:-1], season).mean(axis=1)
        errors = y[season:] - windows
        sd = float(np.sqrt(np.mean(errors ** 2)))
    else:
        sd = float(np.std(y))
    return _normal_frame(point, np.full(horizon, sd))


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
    sd = (bounds[95][1] - point) / _Z[95]
    return _frame(point * factor, sd * factor, {level: (lo * factor, hi * factor)
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
    return _frame(point, (bounds[95][1] - point) / _Z[95], bounds)


FORECASTERS: dict[str, Callable[..., pd.DataFrame]] = {
    "ets": forecast_ets, "sarimax": forecast_sarimax,
    "seasonal_naive": forecast_seasonal_naive, "naive": forecast_naive,
    "trailing_mean_7": forecast_trailing_mean,
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
    out = {"mase": float(np.mean(_scaled_error(backtest))),
           "smape": float(np.mean(_smape(actual, point)))}
    for level in INTERVAL_LEVELS:
        inside = ((actual >= backtest[f"lo{level}"].to_numpy(float))
                  & (actual <= backtest[f"hi{level}"].to_numpy(float)))
        out[f"coverage_{level}"] = float(inside.mean())
        out[f"coverage_{level}_error"] = abs(out[f"coverage_{level}"] - level / 100)
    return out


def _scaled_error(rows: pd.DataFrame) -> np.ndarray:
    """|error| / the origin's MASE scale (inf or NaN where that scale is 0 or NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.abs(rows["actual"].to_numpy(float) - rows["point"].to_numpy(float))
                / rows["scale"].to_numpy(float))


def _smape(actual: np.ndarray, point: np.ndarray) -> np.ndarray:
    error = np.abs(actual - point)
    denominator = np.abs(actual) + np.abs(point)
    return np.where(denominator > 0, 200 * error / np.where(denominator > 0,
                                                             denominator, 1), 0.0)


def evaluated_series(daily: pd.DataFrame, before: pd.Timestamp,
                     top_categories: int) -> list[tuple[str, str]]:
    """(series_id, measure) pairs to backtest: overall revenue and orders, and the revenue
    of the `top_categories` categories with most revenue before `before` (the first
    backtest origin, so later days never decide which series are judged)."""
    pairs = [(sid, m) for sid, m in (("overall", "revenue"), ("overall", "orders"))
             if ((daily["series_id"] == sid) & (daily["measure"] == m)).any()]
    history = daily[(daily["series_level"] == "category_l1")
                    & (daily["measure"] == "revenue")
                    & (pd.to_datetime(daily["series_date"]) < before)]
    ranked = (history.groupby("series_id")["value"].sum()
              .sort_values(ascending=False, kind="stable"))
    return pairs + [(sid, "revenue") for sid in ranked.index[:top_categories]]


def _series(daily: pd.DataFrame, series_id: str, measure: str) -> pd.DataFrame:
    rows = daily[(daily["series_id"] == series_id) & (daily["measure"] == measure)]
    return rows.sort_values("series_date").reset_index(drop=True)


# --- backtests -----------------------------------------------------------------------


def backtest(daily: pd.DataFrame, pairs: Iterable[tuple[str, str]], models: Iterable[str],
             origins: Iterable[pd.Timestamp], horizon: int, season: int = SEASON,
             cache: dict | None = None) -> pd.DataFrame:
    """Backtest rows: per series x origin x model x horizon, the forecast (point, sd,
    the model's own 80% and 95% bounds) beside the actual and the origin's MASE scale.

    An origin is the first forecast day: the fit sees the days before it only, and the
    forecast days origin .. origin + horizon - 1 must lie in the data. `cache` (a dict,
    keyed by series, origin and model) lets several windows share their fits."""
    cache = {} if cache is None else cache
    frames = []
    for series_id, measure in pairs:
        series = _series(daily, series_id, measure)
        y = series["value"].to_numpy(float)
        sale = series["is_sale_day"].to_numpy(bool)
        dates = pd.DatetimeIndex(pd.to_datetime(series["series_date"]))
        for origin in origins:
            t = int(dates.get_loc(pd.Timestamp(origin)))
            if t + horizon > len(y):
                raise ValueError(f"origin {origin} forecasts past the last date")
            scale = mase_scale(y[:t], sale[:t], season)
            for model in models:
                key = (series_id, measure, pd.Timestamp(origin), model, horizon)
                if key not in cache:
                    frame = _quiet(FORECASTERS[model], y[:t], sale[:t],
                                   sale[t:t + horizon], horizon, season)
                    frame.insert(0, "model", model)
                    frame.insert(0, "horizon", np.arange(1, horizon + 1))
                    frame.insert(0, "forecast_date", dates[t:t + horizon])
                    frame.insert(0, "origin_date", dates[t])
                    frame.insert(0, "measure", measure)
                    frame.insert(0, "series_id", series_id)
                    frame["actual"] = y[t:t + horizon]
                    frame["scale"] = scale
                    cache[key] = frame
                frames.append(cache[key])
    return pd.concat(frames, ignore_index=True)


# --- choice on validation and conformal intervals ------------------------------------


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The split-conformal quantile of nonconformity `scores` for coverage `level` (in
    percent): the ceil((n + 1) level)-th smallest score, or the largest when n is too
    small for that rank (then coverage may fall short of `level`)."""
    scores = np.sort(np.asarray(scores, dtype=float)[np.isfinite(scores)])
    if scores.size == 0:
        raise ValueError("no finite conformal score")
    rank = math.ceil((scores.size + 1) * level / 100)
    return float(scores[min(rank, scores.size) - 1])


def conformal_scores(rows: pd.DataFrame) -> np.ndarray:
    """|actual - point| / the model's predictive sd at that horizon (rows with sd > 0)."""
    sd = rows["sd"].to_numpy(float)
    error = np.abs(rows["actual"].to_numpy(float) - rows["point"].to_numpy(float))
    return error[sd > 0] / sd[sd > 0]


def apply_conformal(rows: pd.DataFrame, quantiles: Mapping[str, float]) -> pd.DataFrame:
    """`rows` with lo/hi replaced by point -+ q_level x sd (lower bound cut at 0)."""
    out = rows.copy()
    point, sd = out["point"].to_numpy(float), out["sd"].to_numpy(float)
    for level in INTERVAL_LEVELS:
        q = float(quantiles[str(level)])
        out[f"lo{level}"] = np.maximum(point - q * sd, 0.0)
        out[f"hi{level}"] = point + q * sd
    return out


def choose_forecaster(validation: pd.DataFrame,
                      candidates: Iterable[str] = MODELS) -> dict[str, Any]:
    """The choice made on a validation backtest (and nothing else): the candidate with
    the lowest pooled MASE (ties: the first), and the conformal quantiles of its
    validation scores (`conformal_scores`, all horizons pooled) at 80% and 95%."""
    candidates = tuple(candidates)
    pooled = {model: float(np.mean(_scaled_error(validation[validation["model"] == model])))
              for model in candidates}
    selected = min(candidates, key=lambda model: (pooled[model], candidates.index(model)))
    scores = conformal_scores(validation[validation["model"] == selected])
    return {"model": selected, "validation_mase": pooled,
            "conformal_quantiles": {str(level): conformal_quantile(scores, level)
                                    for level in INTERVAL_LEVELS},
            "n_conformal_scores": int(scores.size),
            "validation_origins": sorted(str(pd.Timestamp(o).date())
                                         for o in validation["origin_date"].unique())}


# --- metrics with intervals ----------------------------------------------------------


def _unit_matrix(rows: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """values of rows as a (forecast day x origin) by (series x measure) matrix, days in
    time order: the block bootstrap resamples its rows."""
    frame = rows[["forecast_date", "origin_date", "series_id", "measure"]].assign(v=values)
    table = (frame.set_index(["forecast_date", "origin_date", "series_id", "measure"])["v"]
             .unstack(["series_id", "measure"]))
    return table.sort_index().to_numpy(float)


def _mean_of(matrix: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda units: float(np.mean(matrix[units]))


def _mase_of(matrix: np.ndarray) -> Callable[[np.ndarray], float]:
    def mase(units: np.ndarray) -> float:
        values = matrix[units]
        if not np.isfinite(values).all():
            raise ValueError("MASE undefined: a series' seasonal-naive scale is 0 or "
                             "unknown (a constant or too short history)")
        return float(np.mean(values))
    return mase


def _coverage_error_of(matrix: np.ndarray, level: int) -> Callable[[np.ndarray], float]:
    return lambda units: abs(float(np.mean(matrix[units])) - level / 100)


def window_metrics(rows: pd.DataFrame, selected: str, resampler: Resampler, split: str,
                   cutoff: date | None, primary: bool, conformal: bool) -> list[Metric]:
    """The selected model's metrics on a backtest window beside every baseline, with
    intervals from `resampler` over the window's days (`_unit_matrix` rows).

    mase (primary when `primary`) and smape beside each of BASELINES; coverage_80/_95 of
    the published intervals (conformal when `conformal`) and, with `conformal`, their
    |coverage - nominal| beside the model's own intervals (baseline
    `model_intervals`); coverage_80/_95_model_intervals: the model's own intervals."""
    ours = rows[rows["model"] == selected]
    metrics: list[Metric] = []
    for name, values, statistic in (
            ("mase", _scaled_error, _mase_of),
            ("smape", lambda r: _smape(r["actual"].to_numpy(float),
                                       r["point"].to_numpy(float)), _mean_of)):
        model_stat = statistic(_unit_matrix(ours, values(ours)))
        baselines = {}
        for base in BASELINES:
            theirs = rows[rows["model"] == base]
            baselines[base] = statistic(_unit_matrix(theirs, values(theirs))) \
                if len(theirs) else None
        metrics += compare(name, model_stat, baselines, resampler, higher_is_better=False,
                           is_primary=primary and name == "mase", split=split,
                           cutoff=cutoff)
    actual = ours["actual"].to_numpy(float)
    for level in INTERVAL_LEVELS:
        own = ((actual >= ours[f"model_lo{level}"].to_numpy(float))
               & (actual <= ours[f"model_hi{level}"].to_numpy(float)))
        own_matrix = _unit_matrix(ours, own.astype(float))
        metrics += compare(f"coverage_{level}_model_intervals", _mean_of(own_matrix), {},
                           resampler, split=split, cutoff=cutoff)
        if not conformal:
            continue
        inside = ((actual >= ours[f"lo{level}"].to_numpy(float))
                  & (actual <= ours[f"hi{level}"].to_numpy(float)))
        matrix = _unit_matrix(ours, inside.astype(float))
        metrics += compare(f"coverage_{level}", _mean_of(matrix), {}, resampler,
                           split=split, cutoff=cutoff)
        metrics += compare(f"coverage_{level}_abs_error", _coverage_error_of(matrix, level),
                           {"model_intervals": _coverage_error_of(own_matrix, level)},
                           resampler, higher_is_better=False, split=split, cutoff=cutoff)
    return metrics


def _with_published_intervals(rows: pd.DataFrame, selected: str,
                              quantiles: Mapping[str, float] | None) -> pd.DataFrame:
    """Backtest rows with the model's own bounds kept as model_lo/hi* and, for the
    selected model's rows, lo/hi* replaced by the conformal ones (when `quantiles`)."""
    out = rows.copy()
    for level in INTERVAL_LEVELS:
        out[f"model_lo{level}"] = out[f"lo{level}"]
        out[f"model_hi{level}"] = out[f"hi{level}"]
    if quantiles is None:
        return out
    chosen = out["model"] == selected
    out.loc[chosen] = apply_conformal(out.loc[chosen], quantiles)
    return out


def _validation_origins(test_origin: pd.Timestamp, horizon: int,
                        n_validation: int) -> list[pd.Timestamp]:
    """The n_validation origins whose forecast windows tile the n_validation x horizon
    days just before `test_origin` (the last one ends the day before it)."""
    return [test_origin - pd.Timedelta(days=k * horizon) for k in range(n_validation, 0, -1)]


def _days(daily: pd.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(sorted(pd.to_datetime(daily["series_date"]).unique()))


# --- production and evaluation runs --------------------------------------------------


def train_revenue_forecast(daily: pd.DataFrame, horizon: int = 7, validation_days: int = 21,
                           eval_top_categories: int = 3, season: int = SEASON,
                           n_bootstrap: int = BOOTSTRAP_SAMPLES, seed: int = 42
                           ) -> TrainingRun:
    """The production run: choose the model and the conformal quantiles on the latest
    validation backtest (validation_days // horizon origins whose 7-day windows tile the
    last validation_days days), record its validation metrics beside the baselines, and
    store the choice for `forecast_revenue` (which refits on every day).

    Raises InsufficientHistory below MIN_HISTORY_DAYS + validation days."""
    started = time.perf_counter()
    _check_series(daily)
    days = _days(daily)
    n_validation = max(1, validation_days // horizon)
    require_history(MIN_HISTORY_DAYS + n_validation * horizon, len(days), detail=(
        f"{MIN_HISTORY_DAYS} days before the first validation origin, then "
        f"{n_validation} validation windows of {horizon} days"))
    end_origin = days[-1] + pd.Timedelta(days=1)   # the first day after the data
    origins = _validation_origins(end_origin, horizon, n_validation)
    pairs = evaluated_series(daily, origins[0], eval_top_categories)
    with _single_threaded():
        validation = backtest(daily, pairs, (*MODELS, *BASELINES), origins, horizon, season)
    choice = choose_forecaster(validation)
    rows = _with_published_intervals(validation, choice["model"], None)
    resampler = Resampler(n_validation * horizon, n_samples=n_bootstrap, seed=seed,
                          block_length=horizon)
    metrics = window_metrics(rows, choice["model"], resampler, "validation", None,
                             primary=True, conformal=False)
    return TrainingRun(
        model_name=MODEL_NAME,
        train_window=Window(days[0].date(), origins[0].date()),
        label_window=Window(origins[0].date(), end_origin.date()),
        n_train=int((pd.to_datetime(daily["series_date"]) < origins[0]).sum()),
        n_test=int((validation["model"] == choice["model"]).sum()),
        params={**_params(choice, horizon, season, pairs),
                "fit_seconds": round(time.perf_counter() - started, 2)},
        metrics=metrics,
        model={"model": choice["model"], "horizon": horizon, "season": season,
               "conformal_quantiles": choice["conformal_quantiles"]},
    )


def _params(choice: Mapping[str, Any], horizon: int, season: int,
            pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {"selected_model": choice["model"], "candidates": list(MODELS),
            "baselines": list(BASELINES), "horizon_days": horizon, "season_days": season,
            "validation_origins": choice["validation_origins"],
            "validation_mase": choice["validation_mase"],
            "conformal_quantiles": choice["conformal_quantiles"],
            "n_conformal_scores": choice["n_conformal_scores"],
            "evaluated_series": [f"{s}:{m}" for s, m in pairs],
            "sarimax_order": list(SARIMAX_ORDER),
            "sarimax_seasonal_order": list(SARIMAX_SEASONAL_ORDER),
            "ets_candidates": [f"A,{'Ad' if t else 'N'},{'A' if s else 'N'}"
                               for t, s in ETS_CANDIDATES]}


def evaluate_revenue_forecast(daily: pd.DataFrame, horizon: int = 7,
                              validation_days: int = 21, n_cutoffs: int = 3,
                              step_days: int = 7, eval_top_categories: int = 3,
                              season: int = SEASON, n_bootstrap: int = BOOTSTRAP_SAMPLES,
                              seed: int = 42) -> TrainingRun:
    """The rolling-origin evaluation (run_kind "evaluation"): `n_cutoffs` test origins
    `step_days` apart, the last one's window ending at the last date. At each, the
    production procedure is replayed on the days before it (choice and conformal
    quantiles on its own validation windows, which end the day before the test origin),
    and its horizons 1..horizon are scored once, with the conformal intervals.

    Metrics (split "test"): pooled over the test windows (cutoff None; mase primary)
    with a moving-block bootstrap over days (blocks of `horizon` days), and per test
    origin (cutoff = the origin) with a day bootstrap."""
    started = time.perf_counter()
    _check_series(daily)
    days = _days(daily)
    n_validation = max(1, validation_days // horizon)
    require_history(
        MIN_HISTORY_DAYS + n_validation * horizon + step_days * (n_cutoffs - 1) + horizon,
        len(days), detail=(
            f"{MIN_HISTORY_DAYS} days before the first validation origin, "
            f"{n_validation} validation windows of {horizon} days, then {n_cutoffs} test "
            f"origins {step_days} days apart"))
    last_origin = days[-1] - pd.Timedelta(days=horizon - 1)
    test_origins = [last_origin - pd.Timedelta(days=step_days * (n_cutoffs - 1 - i))
                    for i in range(n_cutoffs)]
    pairs = evaluated_series(daily, _validation_origins(test_origins[0], horizon,
                                                        n_validation)[0],
                             eval_top_categories)
    cache: dict = {}
    tests, choices = [], []
    with _single_threaded():
        for origin in test_origins:
            validation = backtest(daily, pairs, MODELS,
                                  _validation_origins(origin, horizon, n_validation),
                                  horizon, season, cache)
            choice = choose_forecaster(validation)
            test = backtest(daily, pairs, (choice["model"], *BASELINES), [origin],
                            horizon, season, cache)
            tests.append(_with_published_intervals(test, choice["model"],
                                                   choice["conformal_quantiles"]))
            choices.append(choice)
    metrics: list[Metric] = []
    pooled = pd.concat(tests, ignore_index=True)
    # the selected model may differ between cutoffs: label its rows "selected"
    pooled = _relabel_selected(pooled, tests, choices)
    n_days = pooled[["forecast_date", "origin_date"]].drop_duplicates().shape[0]
    metrics += window_metrics(pooled, SELECTED, Resampler(
        n_days, n_samples=n_bootstrap, seed=seed, block_length=horizon),
        "test", None, primary=True, conformal=True)
    for origin, test in zip(test_origins, _split_by_origin(pooled, test_origins)):
        n_days = test[["forecast_date", "origin_date"]].drop_duplicates().shape[0]
        metrics += window_metrics(test, SELECTED, Resampler(
            n_days, n_samples=n_bootstrap, seed=seed), "test", origin.date(),
            primary=False, conformal=True)
    return TrainingRun(
        model_name=MODEL_NAME,
        train_window=Window(days[0].date(), test_origins[0].date()),
        label_window=Window(test_origins[0].date(), (days[-1] + pd.Timedelta(days=1)).date()),
        n_train=int((pd.to_datetime(daily["series_date"]) < test_origins[0]).sum()),
        n_test=int((pooled["model"] == SELECTED).sum()),
        params={"test_origins": [str(o.date()) for o in test_origins],
                "horizon_days": horizon, "season_days": season,
                "step_days": step_days, "validation_days": n_validation * horizon,
                "candidates": list(MODELS), "baselines": list(BASELINES),
                "evaluated_series": [f"{s}:{m}" for s, m in pairs],
                "choices": {str(o.date()): {k: v for k, v in c.items()}
                            for o, c in zip(test_origins, choices)},
                "interval_scheme": "block bootstrap over days (pooled), days (per cutoff)",
                "fit_seconds": round(time.perf_counter() - started, 2)},
        metrics=metrics,
        run_kind="evaluation",
    )


SELECTED = "selected"


def _relabel_selected(pooled: pd.DataFrame, tests: list[pd.DataFrame],
                      choices: list[dict[str, Any]]) -> pd.DataFrame:
    parts = []
    for test, choice in zip(tests, choices):
        part = test.copy()
        part.loc[part["model"] == choice["model"], "model"] = SELECTED
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _split_by_origin(rows: pd.DataFrame, origins: list[pd.Timestamp]) -> list[pd.DataFrame]:
    return [rows[rows["origin_date"] == origin] for origin in origins]


# --- production forecasts ------------------------------------------------------------

# Arrow dtypes keep an empty frame's text and date columns typed (VARCHAR, DATE) in
# DuckDB; an empty object column would have no type.
_TEXT, _DATE = pd.ArrowDtype(pa.string()), pd.ArrowDtype(pa.date32())
FORECAST_COLUMNS = {
    "series_id": _TEXT, "measure": _TEXT, "series_level": _TEXT, "category_l1": _TEXT,
    "forecast_date": _DATE, "horizon": "int64", "model": _TEXT, "point": "float64",
    "lo80": "float64", "hi80": "float64", "lo95": "float64", "hi95": "float64",
    "is_sale_day": "bool", "is_selected_model": "bool", "interval_method": _TEXT,
}


def empty_forecast_frame() -> pd.DataFrame:
    """`forecast_revenue`'s columns and dtypes without rows (a skipped run)."""
    return pd.DataFrame({name: pd.Series(dtype=dtype)
                         for name, dtype in FORECAST_COLUMNS.items()})


def forecast_revenue(daily: pd.DataFrame, sale_dates: Iterable[date], choice: dict[str, Any]
                     ) -> pd.DataFrame:
    """Production forecasts: every series x measure, horizons 1..choice["horizon"] from
    the day after its last date, by the selected model (conformal 80% and 95% intervals
    from choice["conformal_quantiles"]) and by the seasonal naive baseline (its own
    intervals), in the `model` column. `sale_dates` are the known sale days (the seed),
    which set the future dummy."""
    _check_series(daily)
    horizon, season = int(choice["horizon"]), int(choice["season"])
    sale_set = {pd.Timestamp(d) for d in sale_dates}
    with _single_threaded():
        frames = [_forecast_one(_series(daily, series_id, measure), choice, sale_set,
                                horizon, season)
                  for (series_id, measure), _ in daily.groupby(["series_id", "measure"],
                                                               sort=True)]
    out = pd.concat(frames, ignore_index=True) if frames else empty_forecast_frame()
    return out[list(FORECAST_COLUMNS)].astype(FORECAST_COLUMNS)


def _forecast_one(series: pd.DataFrame, choice: Mapping[str, Any],
                  sale_set: set[pd.Timestamp], horizon: int, season: int) -> pd.DataFrame:
    """The selected model's and the baseline's forecasts of one series."""
    selected = choice["model"]
    last = pd.Timestamp(series["series_date"].iloc[-1])
    future = pd.date_range(last + pd.Timedelta(days=1), periods=horizon, freq="D")
    sale_future = np.array([day in sale_set for day in future])
    frames = []
    for model in (selected, BASELINE):
        frame = _quiet(FORECASTERS[model], series["value"].to_numpy(float),
                       series["is_sale_day"].to_numpy(bool), sale_future, horizon, season)
        conformal = model == selected and "conformal_quantiles" in choice
        if conformal:
            frame = apply_conformal(frame, choice["conformal_quantiles"])
        frame = frame.drop(columns="sd")
        frame.insert(0, "model", model)
        frame.insert(0, "horizon", np.arange(1, horizon + 1))
        frame.insert(0, "forecast_date", future.date)
        frame.insert(0, "category_l1", series["category_l1"].iloc[0])
        frame.insert(0, "series_level", series["series_level"].iloc[0])
        frame.insert(0, "measure", series["measure"].iloc[0])
        frame.insert(0, "series_id", series["series_id"].iloc[0])
        frame["is_sale_day"] = sale_future
        frame["is_selected_model"] = model == selected
        frame["interval_method"] = "conformal" if conformal else "model"
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def forecast_scores(daily: pd.DataFrame, sale_dates: Iterable[date],
                    record: Mapping[str, Any]) -> pd.DataFrame:
    """ml_revenue_forecast: `forecast_revenue` with the choice of the training `record`
    and its run_id and guardrail flag; the same columns without rows when that run was
    skipped (too short a history)."""
    from ml.registry import is_trained, load_model, with_run

    frame = (forecast_revenue(daily, sale_dates, load_model(record["model_artifact"]))
             if is_trained(record) else empty_forecast_frame())
    return with_run(frame, record).astype({"run_id": _TEXT})
