"""Customer lifetime value on customer snapshots: BG/NBD + Gamma-Gamma and an xgboost
regressor of spend over the next H days, beside two naive baselines.

Input frames are rows of `int_customer_features_snapshots` or
`int_customer_features_evaluation_snapshots` (ml/customer_snapshots.py): one row per
customer x snapshot, features from the days before `snapshot_date`, labels from the
`horizon_days` after it.

Units. BG/NBD works on purchase *days* in *days*: ``frequency`` = distinct purchase days
- 1 (repeat purchase days), ``recency`` = last - first purchase day, ``T`` = snapshot -
first purchase day, horizon in days. Several purchase lines on one day are one
transaction (a basket), which is what the process models; days (not weeks) because the
window is three months. ``monetary_value`` = mean spend of the repeat purchase days
(the first day excluded, as in Gamma-Gamma), in the price currency (USD).

The procedure (docs/evaluation.md), at an origin with train snapshot t0, validation
snapshot t1 = t0 + H (`fit_clv_procedure`):

- ``clv_bgnbd``: the BG/NBD penalizer is chosen from BGNBD_PENALIZERS on the validation
  snapshot (fitted on every purchase before t1, judged by the normalized Gini of the
  predicted spend in [t1, t1 + H)); BG/NBD + GG are then refitted with it on the
  snapshot they predict from (the test snapshot, or the score snapshot in production):
  an unsupervised model needs no labels to refit. The penalty is on ln r, ln a, ln b
  (unit-free, see ml.clv.fit_bgnbd). A degenerate fit falls back to the NBD (BG/NBD) or
  to the customers' own mean spend (Gamma-Gamma) and the run says so (`fit_status`);
  convergence, gradient norm, standard errors and the frequency-spend correlation are
  recorded (`fit_diagnostics`, `fit_metrics`).
- ``clv_xgboost``: the regressor's depth is chosen from REGRESSOR_CANDIDATES by fitting
  on t0 and judging on t1's labels; the chosen one is refitted on t1 (the latest
  complete labels) and predicts the next snapshot.

Baselines, on the same customers: ``past_spend_same_length`` (the customer's spend in the
H days before the snapshot repeats) and ``past_spend_rate`` (spend to date over the days
since the first purchase, times H). Primary metric: normalized Gini (how well the
prediction ranks next-period revenue, the use of a CLV score in budgeting), beside MAE
and the error of the total.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.stats import spearmanr

from ml.clv import (bgnbd_expected_purchases, bgnbd_p_alive, bgnbd_p_no_purchase,
                    empirical_expected_spend, fit_bgnbd, fit_gamma_gamma, fit_nbd,
                    gamma_gamma_expected_spend, nbd_expected_purchases, nbd_p_no_purchase)
from ml.customer_snapshots import (MOVES_WITH_SNAPSHOT_DATE, evaluation_windows, plus_days,
                                   production_windows, snapshot_at, snapshot_role)
from ml.drift import feature_drift
from ml.evaluation import (InsufficientHistory, Resampler, compare, train_or_skip)
from ml.registry import Metric, TrainingRun, Window

__all__ = [
    "BASELINES", "BGNBD_PENALIZERS", "LTV_BASELINE", "LTV_FEATURES", "REGRESSOR_CANDIDATES",
    "REGRESSOR_PARAMS", "FIT_METRICS", "ClvChoice", "bgnbd_summary",
    "choose_bgnbd_penalizer", "empty_ltv_scores", "evaluate_ltv", "fit_bgnbd_only",
    "fit_clv", "fit_clv_procedure", "fit_diagnostics", "fit_metrics", "fit_spend",
    "fit_spend_regressor", "fit_transactions", "normalized_gini", "p_no_purchase",
    "predict_clv", "score_ltv",
    "spend_baselines", "spend_metrics", "spend_statistics", "train_ltv", "runs_or_skip",
]

# The regressor's features: RFM and behaviour columns of the snapshot model.
LTV_FEATURES = (
    "recency_days", "customer_age_days", "tenure_days", "purchase_days", "orders",
    "purchase_lines", "monetary_total", "monetary_mean", "purchase_days_last_horizon",
    "spend_last_horizon", "distinct_categories_purchased", "days_since_last_visit",
    "active_days", "sessions", "views", "carts",
    "sessions_last_7d", "views_last_7d", "carts_last_7d",
    "sessions_last_14d", "views_last_14d", "carts_last_14d",
    "sessions_last_30d", "views_last_30d", "carts_last_30d",
    "active_days_last_30d", "cart_abandonment_rate",
)
LTV_BASELINE = "past_spend_same_length"
BASELINES = (LTV_BASELINE, "past_spend_rate")
MODEL_NAMES = ("clv_bgnbd", "clv_xgboost")

# Fixed a priori (not tuned): Tweedie loss for spend that is zero for most customers,
# 150 trees at rate 0.1, row and column subsampling (one thread: two build at once).
REGRESSOR_PARAMS: dict[str, Any] = {
    "objective": "reg:tweedie", "tweedie_variance_power": 1.5, "n_estimators": 150,
    "learning_rate": 0.1, "max_depth": 4, "min_child_weight": 5.0, "subsample": 0.8,
    "colsample_bytree": 0.8, "reg_lambda": 1.0, "tree_method": "hist", "n_jobs": 1,
}
# Chosen on the validation window (normalized Gini): shallow or deeper trees.
REGRESSOR_CANDIDATES: tuple[dict[str, Any], ...] = ({"max_depth": 3}, {"max_depth": 5})

# Weights of the BG/NBD penalty penalizer * ((ln r)^2 + (ln a)^2 + (ln b)^2) added to
# the mean negative log-likelihood (ml.clv.fit_bgnbd; unit-free, alpha unpenalised),
# chosen on the validation window. The scale: the penalty's curvature in ln a, ln b is
# 2 * penalizer, the data's per customer about 1 / (n var(ln b-hat)), ~1e-4 to 1e-3 for
# the dropout shapes of a window of ~2,000 customers, which are weakly identified. So
# 1e-4 lets the data speak while keeping a and b off their boundary, 1e-3 is a nudge
# and 1e-2 pulls a and b halfway to 1. On the fixture warehouse's three validation
# windows: unpenalised, every fit ran to a or b -> infinity; 1e-6..1e-5 gave b of
# 30-160 and no better Gini; 1e-1 and 1 lost 0.03-0.13 of normalized Gini. 0 is not a
# candidate (the boundary; ml.ltv.fit_transactions would fall back to the NBD). The
# values are those of the former L2 penalty on (r, alpha, a, b), whose effect depended
# on the time unit (at 1e-3 in days it dragged alpha from ~20 to ~6 days); by the scale
# argument above they are also the right decades for the log penalty.
BGNBD_PENALIZERS = (1e-4, 1e-3, 1e-2)

_DIRECTIONS = {"normalized_gini": True, "mae": False, "total_revenue_abs_rel_error": False}
PRIMARY_METRIC = "normalized_gini"


def bgnbd_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """BG/NBD inputs of snapshot rows: user_id, frequency, recency, T, monetary_value.

    Days throughout (see the module docstring); monetary_value is NaN where frequency
    is 0 (Gamma-Gamma ignores it there).
    """
    return pd.DataFrame({
        "user_id": frame["user_id"].to_numpy(),
        "frequency": frame["bgnbd_frequency"].to_numpy(dtype=float),
        "recency": frame["bgnbd_recency_days"].to_numpy(dtype=float),
        "T": frame["customer_age_days"].to_numpy(dtype=float),
        "monetary_value": frame["bgnbd_monetary_value"].to_numpy(dtype=float),
    })


FitParams = dict[str, Any]


def fit_transactions(summary: pd.DataFrame, penalizer: float) -> tuple[dict[str, Any],
                                                                       dict[str, Any]]:
    """The transaction model of a BG/NBD summary (ml.clv units): (params, diagnostics).

    BG/NBD with `penalizer` (ml.clv.fit_bgnbd). A degenerate fit (no repeat customer,
    a or b past ml.clv.BOUNDARY_SHAPE, a parameter at the optimiser's bound, or no
    convergence) falls back to the NBD (ml.clv.fit_nbd: the same Poisson-gamma purchase
    rates without dropout, with the same penalty on ln r): params then carry
    ``model = "nbd"``. Diagnostics: ``fit_status`` ("ok" or "degenerate: <why>"), and
    of the BG/NBD fit ``converged``, ``gradient_norm``, ``standard_errors``, the
    estimates, ``log_likelihood``, ``iterations`` and customer counts; ``fallback``
    names the model used instead when degenerate.

    Raises ValueError when the summary has no customer.
    """
    x = summary["frequency"].to_numpy(dtype=float)
    t_x = summary["recency"].to_numpy(dtype=float)
    age = summary["T"].to_numpy(dtype=float)
    if x.size == 0:
        raise ValueError("no customer to fit a transaction model on")
    try:
        fit = fit_bgnbd(x, t_x, age, penalizer=penalizer)
        status = str(fit["fit_status"])
    except ValueError as error:
        if np.any(x > 0):
            raise
        fit, status = None, f"degenerate: no repeat customer ({error})"
    diagnostics: dict[str, Any] = {"fit_status": status, "penalizer": float(penalizer),
                                   "n_customers": int(x.size),
                                   "n_repeat_customers": int(np.sum(x > 0))}
    if fit is not None:
        diagnostics.update({key: fit[key] for key in (
            "r", "alpha", "a", "b", "log_likelihood", "converged", "iterations",
            "gradient_norm", "standard_errors")})
    if status == "ok":
        return {key: float(fit[key]) for key in ("r", "alpha", "a", "b")}, diagnostics
    nbd = fit_nbd(x, age, penalizer=penalizer)
    diagnostics["fallback"] = {
        "model": "nbd", "r": nbd["r"], "alpha": nbd["alpha"],
        "converged": nbd["converged"], "gradient_norm": nbd["gradient_norm"],
        "note": "Poisson-gamma purchase rates without dropout (BG/NBD with p = 0): "
                "E[purchases] = (r + x) / (alpha + T) * H, P(alive) = 1"}
    return {"model": "nbd", "r": nbd["r"], "alpha": nbd["alpha"]}, diagnostics


def fit_spend(summary: pd.DataFrame,
              fallback_mean: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The spend model of a BG/NBD summary: (params, diagnostics).

    Gamma-Gamma, unpenalised, on the customers with frequency > 0 and monetary_value
    > 0. A degenerate fit (no such customer, q <= 1: infinite mean spend, a parameter at
    the optimiser's bound, or no convergence) falls back to each customer's own mean
    repeat spend, and for the others the population mean spend per repeat transaction
    (sum of x * z-bar over sum of x), or `fallback_mean` when nobody repeats:
    params ``{"model": "customer_mean", "population_mean_spend": ...}``
    (ml.clv.empirical_expected_spend). Diagnostics: ``fit_status``, and of the
    Gamma-Gamma fit the estimates, ``converged``, ``gradient_norm``,
    ``standard_errors``, ``corr_frequency_monetary`` (Pearson, x against z-bar among
    the fitted customers: the model assumes independence) and ``n_customers``.
    """
    x = summary["frequency"].to_numpy(dtype=float)
    m = np.nan_to_num(summary["monetary_value"].to_numpy(dtype=float))
    spenders = (x > 0) & (m > 0)
    diagnostics: dict[str, Any] = {"n_customers": int(spenders.sum())}
    fit = None
    if spenders.any():
        fit = fit_gamma_gamma(x[spenders], m[spenders])
        status = str(fit["fit_status"])
        diagnostics.update({key: fit[key] for key in (
            "p", "q", "gamma", "log_likelihood", "converged", "iterations",
            "gradient_norm", "standard_errors", "corr_frequency_monetary")})
    else:
        status = "degenerate: no repeat customer with spend > 0"
    diagnostics["fit_status"] = status
    if status == "ok":
        return {key: float(fit[key]) for key in ("p", "q", "gamma")}, diagnostics
    if spenders.any():
        population = float(np.sum(x[spenders] * m[spenders]) / np.sum(x[spenders]))
    else:
        population = float(fallback_mean) if fallback_mean is not None \
            and np.isfinite(fallback_mean) else 0.0
    diagnostics["fallback"] = {
        "model": "customer_mean", "population_mean_spend": population,
        "note": "own mean repeat spend where x > 0, the population mean spend per "
                "repeat transaction otherwise"}
    return {"model": "customer_mean", "population_mean_spend": population}, diagnostics


def fit_clv(frame: pd.DataFrame, penalizer: float) -> FitParams:
    """BG/NBD and Gamma-Gamma fitted on snapshot rows, each with its documented fallback
    when degenerate (`fit_transactions`, `fit_spend`): {"bgnbd": params, "gamma_gamma":
    params, "diagnostics": {"bgnbd": ..., "gamma_gamma": ..., "fit_status": ...}}.

    `penalizer` applies to BG/NBD only; Gamma-Gamma is unpenalised (its gamma is in
    currency, and a penalty pulling q towards any value has no unit-free centre), so
    q <= 1 goes to the fallback rather than to a refit with a penalty.
    """
    summary = bgnbd_summary(frame)
    bgnbd, bgnbd_diagnostics = fit_transactions(summary, penalizer)
    fallback_mean = (float(np.nanmean(frame["monetary_mean"].to_numpy(dtype=float)))
                     if "monetary_mean" in frame and len(frame) else None)
    spend, spend_diagnostics = fit_spend(summary, fallback_mean)
    return {"bgnbd": bgnbd, "gamma_gamma": spend,
            "diagnostics": {"bgnbd": bgnbd_diagnostics, "gamma_gamma": spend_diagnostics,
                            "fit_status": _fit_status(bgnbd_diagnostics,
                                                      spend_diagnostics)}}


def _fit_status(bgnbd: Mapping[str, Any], spend: Mapping[str, Any] | None = None) -> str:
    """"ok", or the degenerate parts with their fallbacks, e.g. "gamma-gamma degenerate:
    q = 0.8 <= 1 (infinite mean spend) -> customer_mean"."""
    parts = []
    for name, diagnostics in (("bg/nbd", bgnbd), ("gamma-gamma", spend)):
        if diagnostics is not None and diagnostics["fit_status"] != "ok":
            parts.append(f"{name} {diagnostics['fit_status']} -> "
                         f"{diagnostics['fallback']['model']}")
    return "; ".join(parts) or "ok"


def fit_bgnbd_only(frame: pd.DataFrame, penalizer: float) -> FitParams:
    """The transaction model fitted on snapshot rows, as {"bgnbd": params, "diagnostics":
    {"bgnbd": ..., "fit_status": ...}} (no Gamma-Gamma: for the uses that need no
    spend, such as the churn baseline); the NBD fallback when degenerate."""
    params, diagnostics = fit_transactions(bgnbd_summary(frame), penalizer)
    return {"bgnbd": params,
            "diagnostics": {"bgnbd": diagnostics, "fit_status": _fit_status(diagnostics)}}


def p_no_purchase(params: Mapping[str, float], horizon: float,
                  summary: pd.DataFrame) -> np.ndarray:
    """P(no purchase in the `horizon` after each customer's T) of a BG/NBD summary under
    `fit_transactions`' params: BG/NBD, or the NBD fallback."""
    x, t_x, age = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    if params.get("model") == "nbd":
        return np.asarray(nbd_p_no_purchase(params, horizon, x, age), dtype=float)
    return np.asarray(bgnbd_p_no_purchase(params, horizon, x, t_x, age), dtype=float)


def choose_bgnbd_penalizer(frame: pd.DataFrame,
                           score: Callable[[dict[str, dict[str, float]]], float],
                           grid: Sequence[float] = BGNBD_PENALIZERS,
                           fit: Callable[[pd.DataFrame, float],
                                         dict[str, dict[str, float]]] = fit_clv
                           ) -> tuple[float, dict[str, float | None],
                                      dict[str, dict[str, float]]]:
    """The penalizer of `grid` whose fit (`fit`: BG/NBD + GG by default) on `frame` (its
    purchase history) scores highest by `score(params)`, which judges it on `frame`'s
    labels (the validation window); ties go to the smaller penalty. Also returns every
    candidate's score (None where the fit failed) and the chosen fit's parameters.

    A degenerate fit does not fail a candidate: `fit_clv` and `fit_bgnbd_only` fall
    back to simpler models (and say so in the params' diagnostics), which are judged
    like the others; when none can be judged (the score is undefined for all), the
    smallest penalty is kept. Raises InsufficientHistory when no candidate can be
    fitted (no customer in `frame`).
    """
    scores: dict[str, float | None] = {}
    best: tuple[float, float, dict[str, dict[str, float]]] | None = None
    first_fitted: tuple[float, dict[str, dict[str, float]]] | None = None
    failure = "no candidate"
    for penalizer in grid:
        try:
            params = fit(frame, penalizer)
            value = float(score(params))
        except ValueError as error:
            scores[repr(penalizer)] = None
            failure = str(error)
            continue
        first_fitted = first_fitted or (penalizer, params)
        scores[repr(penalizer)] = value if np.isfinite(value) else None
        if np.isfinite(value) and (best is None or value > best[1]):
            best = (penalizer, value, params)
    if best is None and first_fitted is not None:
        # Every candidate fitted but none could be judged (no revenue, or one class, in
        # the validation labels): all tie, and ties go to the smaller penalty.
        return first_fitted[0], scores, first_fitted[1]
    if best is None:
        raise InsufficientHistory(1, 0, "fittable BG/NBD validation windows",
                                  f"no candidate could be fitted: {failure}")
    return best[0], scores, best[2]


def predict_clv(params: Mapping[str, Mapping[str, Any]], frame: pd.DataFrame,
                horizon: float) -> pd.DataFrame:
    """user_id, frequency, recency, T, monetary_value, expected_purchases, p_alive,
    expected_avg_spend and expected_spend (over `horizon` days) of snapshot rows, under
    `fit_clv`'s params (BG/NBD or its NBD fallback; Gamma-Gamma or the customer-mean
    fallback). Undiscounted."""
    summary = bgnbd_summary(frame)
    x, t_x, age, m = (summary[c].to_numpy(dtype=float)
                      for c in ("frequency", "recency", "T", "monetary_value"))
    transactions, spend = params["bgnbd"], params["gamma_gamma"]
    if transactions.get("model") == "nbd":
        purchases = nbd_expected_purchases(transactions, horizon, x, age)
        alive = np.ones(x.size)
    else:
        purchases = bgnbd_expected_purchases(transactions, horizon, x, t_x, age)
        alive = bgnbd_p_alive(transactions, x, t_x, age)
    if spend.get("model") == "customer_mean":
        average = empirical_expected_spend(x, m, spend["population_mean_spend"])
    else:
        average = gamma_gamma_expected_spend(spend, x, m)
    purchases = np.asarray(purchases, dtype=float).reshape(x.shape)
    average = np.asarray(average, dtype=float).reshape(x.shape)
    return summary.assign(expected_purchases=purchases,
                          p_alive=np.asarray(alive, dtype=float).reshape(x.shape),
                          expected_avg_spend=average, expected_spend=purchases * average)


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of `predicted` ranking `actual`, divided by the Gini of the perfect ranking.

    The Lorenz curve orders customers by prediction, highest first; tied predictions
    form one step whose revenue is spread evenly over it (the mean over every order of
    the ties), so a constant prediction scores 0 and the perfect ranking 1.
    """
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if actual.size == 0 or actual.sum() <= 0:
        return float("nan")
    return _gini(actual, predicted) / _gini(actual, actual)


def _gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Area between the tie-averaged cumulative-revenue curve and the diagonal (x2)."""
    codes, n_levels = _levels(predicted)
    return _weighted_gini(codes, n_levels, actual, np.ones(actual.size))


def _levels(values: np.ndarray) -> tuple[np.ndarray, int]:
    levels, codes = np.unique(np.asarray(values, dtype=float), return_inverse=True)
    return codes.ravel(), levels.size


def _weighted_gini(codes: np.ndarray, n_levels: int, actual: np.ndarray,
                   weight: np.ndarray) -> float:
    """`_gini` with row weights (a bootstrap resample: a row drawn k times weighs k),
    levels of the prediction given as codes in ascending order."""
    size = np.bincount(codes, weights=weight, minlength=n_levels)[::-1]
    revenue = np.bincount(codes, weights=weight * actual, minlength=n_levels)[::-1]
    x = np.concatenate([[0.0], np.cumsum(size)]) / size.sum()
    y = np.concatenate([[0.0], np.cumsum(revenue)]) / revenue.sum()
    area = np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0)
    return float(2.0 * (area - 0.5))


def spend_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """normalized_gini, spearman, mae and total_revenue_abs_rel_error (|sum pred - sum
    actual| / sum actual) of predicted spend against actual holdout spend."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    spearman = spearmanr(actual, predicted).statistic if np.ptp(predicted) > 0 else 0.0
    return {
        "normalized_gini": normalized_gini(actual, predicted),
        "spearman": float(spearman),
        "mae": float(np.mean(np.abs(actual - predicted))),
        "total_revenue_abs_rel_error": float(abs(predicted.sum() - actual.sum())
                                             / actual.sum()),
    }


Statistic = Callable[[np.ndarray], float]


def spend_statistics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, Statistic]:
    """The metrics of `_DIRECTIONS` as functions of bootstrap rows (indices into
    `actual`/`predicted`, repeats allowed), for ml.evaluation.compare. Each equals the
    metric on ``actual[rows], predicted[rows]``; the Gini works on row weights, so a
    resample costs two bincounts rather than a sort."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    n = actual.size
    by_prediction, by_actual = _levels(predicted), _levels(actual)

    def gini(rows: np.ndarray) -> float:
        weight = np.bincount(rows, minlength=n).astype(float)
        if np.dot(weight, actual) <= 0:
            raise ValueError("no revenue among these customers: the Gini is undefined")
        return (_weighted_gini(*by_prediction, actual, weight)
                / _weighted_gini(*by_actual, actual, weight))

    def mae(rows: np.ndarray) -> float:
        return float(np.mean(np.abs(actual[rows] - predicted[rows])))

    def total_error(rows: np.ndarray) -> float:
        total = actual[rows].sum()
        if total <= 0:
            raise ValueError("no revenue among these customers: the relative error of "
                             "the total is undefined")
        return float(abs(predicted[rows].sum() - total) / total)

    return {"normalized_gini": gini, "mae": mae, "total_revenue_abs_rel_error": total_error}


def spend_baselines(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The baselines' predicted spend over the next H days of snapshot rows:
    past_spend_same_length (spend in the H days before the snapshot) and
    past_spend_rate (spend to date / days since the first purchase x H)."""
    horizon = frame["horizon_days"].to_numpy(dtype=float)
    age = np.maximum(frame["customer_age_days"].to_numpy(dtype=float), 1.0)
    return {
        "past_spend_same_length": frame["spend_last_horizon"].to_numpy(dtype=float),
        "past_spend_rate": frame["monetary_total"].to_numpy(dtype=float) / age * horizon,
    }


def _compare_spend(actual: np.ndarray, model: np.ndarray,
                   baselines: Mapping[str, np.ndarray], resampler: Resampler, split: str,
                   cutoff: date | None) -> list[Metric]:
    model_stats = spend_statistics(actual, model)
    baseline_stats = {name: spend_statistics(actual, values)
                      for name, values in baselines.items()}
    rows: list[Metric] = []
    for metric, higher in _DIRECTIONS.items():
        rows += compare(metric, model_stats[metric],
                        {name: stats[metric] for name, stats in baseline_stats.items()},
                        resampler, higher_is_better=higher,
                        is_primary=metric == PRIMARY_METRIC, split=split, cutoff=cutoff)
    return rows


def fit_spend_regressor(frame: pd.DataFrame, seed: int,
                        params: Mapping[str, Any] | None = None) -> Any:
    """An xgboost regressor of label_spend on LTV_FEATURES (rows need complete labels)."""
    from xgboost import XGBRegressor

    model = XGBRegressor(**{**REGRESSOR_PARAMS, **(params or {})}, random_state=seed)
    model.fit(frame[list(LTV_FEATURES)].astype(float), frame["label_spend"].astype(float))
    return model


def _predict_spend(model: Any, frame: pd.DataFrame) -> np.ndarray:
    return np.maximum(model.predict(frame[list(LTV_FEATURES)].astype(float)), 0.0)


def _gain_importance(model: Any) -> dict[str, float]:
    gains = model.get_booster().get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    return {feature: gains.get(feature, 0.0) / total for feature in LTV_FEATURES}


@dataclass
class ClvChoice:
    """What `fit_clv_procedure` chose on a validation snapshot, and the regressor refitted
    on it. `*_scores` hold every candidate's validation Gini; `validation_*` the chosen
    candidates' validation predictions (for the production run's metrics)."""
    penalizer: float
    penalizer_scores: dict[str, float | None]
    regressor_params: dict[str, Any]
    regressor_scores: dict[str, float | None]
    regressor: Any
    validation_bgnbd: np.ndarray
    validation_xgboost: np.ndarray
    validation_fit: FitParams | None = None


def fit_clv_procedure(train: pd.DataFrame, validation: pd.DataFrame, seed: int,
                      params: Mapping[str, Any] | None = None) -> ClvChoice:
    """Choose the BG/NBD penalizer and the regressor's depth on `validation` (labels of
    the window after it), refit the regressor on `validation`. `train` (features and
    labels ending where validation's features end) fits the regressor's candidates;
    `params` override REGRESSOR_PARAMS (e.g. n_jobs=1). Reads no other window."""
    horizon = int(validation["horizon_days"].iloc[0])
    actual = validation["label_spend"].to_numpy(dtype=float)

    def bgnbd_gini(clv_params: dict[str, dict[str, float]]) -> float:
        predicted = predict_clv(clv_params, validation, horizon)["expected_spend"]
        return normalized_gini(actual, predicted.to_numpy())

    penalizer, penalizer_scores, fitted = choose_bgnbd_penalizer(validation, bgnbd_gini)
    validation_bgnbd = predict_clv(fitted, validation, horizon)["expected_spend"].to_numpy()

    base = {**REGRESSOR_PARAMS, **(params or {})}
    regressor_scores: dict[str, float | None] = {}
    best: tuple[dict[str, Any], float, np.ndarray] | None = None
    for candidate in REGRESSOR_CANDIDATES:
        predicted = _predict_spend(fit_spend_regressor(train, seed, {**base, **candidate}),
                                   validation)
        value = normalized_gini(actual, predicted)
        regressor_scores[_label(candidate)] = value if np.isfinite(value) else None
        if best is None or (np.isfinite(value) and value > best[1]):
            best = (candidate, value if np.isfinite(value) else -np.inf, predicted)
    chosen = {**base, **best[0]}
    return ClvChoice(penalizer, penalizer_scores, chosen, regressor_scores,
                     fit_spend_regressor(validation, seed, chosen), validation_bgnbd,
                     best[2], fitted)


def _label(candidate: Mapping[str, Any]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(candidate.items()))


FIT_METRICS = ("bgnbd_converged", "bgnbd_gradient_norm",
               "gamma_gamma_corr_frequency_monetary")


def fit_metrics(fit: FitParams, frame: pd.DataFrame, resampler: Resampler, split: str,
                cutoff: date | None) -> list[Metric]:
    """The fit's checks as registry metrics without a baseline (not primary):
    ``bgnbd_converged`` (1 or 0) and ``bgnbd_gradient_norm`` (max |gradient| of the
    mean penalised objective in log-parameters at the optimum; None when BG/NBD could
    not be fitted), and ``gamma_gamma_corr_frequency_monetary``: the Pearson
    correlation of frequency and mean repeat spend among `frame`'s repeat spenders
    (Gamma-Gamma assumes independence; near 0 is good), with its bootstrap interval
    over `resampler`'s customers. Standard errors and the fit status are in the run's
    params (`fit_diagnostics`)."""
    bgnbd = fit["diagnostics"]["bgnbd"]
    why = None if "converged" in bgnbd else bgnbd["fit_status"]
    common = {"split": split, "cutoff": cutoff, "n_units": resampler.n_rows}
    rows = [Metric("bgnbd_converged",
                   None if why else float(bgnbd["converged"]), undefined_reason=why,
                   **common),
            Metric("bgnbd_gradient_norm", None if why else float(bgnbd["gradient_norm"]),
                   higher_is_better=False, undefined_reason=why, **common)]
    summary = bgnbd_summary(frame)
    x = summary["frequency"].to_numpy(dtype=float)
    m = np.nan_to_num(summary["monetary_value"].to_numpy(dtype=float))
    spender = (x > 0) & (m > 0)

    def correlation(rows_: np.ndarray) -> float:
        kept = rows_[spender[rows_]]
        if kept.size < 3 or np.ptp(x[kept]) == 0 or np.ptp(m[kept]) == 0:
            raise ValueError("fewer than 3 repeat spenders, or no spread in frequency "
                             "or spend: the correlation is undefined")
        return float(np.corrcoef(x[kept], m[kept])[0, 1])

    rows += compare("gamma_gamma_corr_frequency_monetary", correlation, {}, resampler,
                    higher_is_better=False, split=split, cutoff=cutoff)
    return rows


def fit_diagnostics(fit: FitParams) -> dict[str, Any]:
    """The fit's status and diagnostics for a run's params (JSON-safe: NaN -> None)."""
    return _json_safe({"fit_status": fit["diagnostics"]["fit_status"],
                       "bgnbd": fit["diagnostics"]["bgnbd"],
                       "gamma_gamma": fit["diagnostics"].get("gamma_gamma")})


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _choice_params(choice: ClvChoice, model_name: str) -> dict[str, Any]:
    if model_name == "clv_bgnbd":
        return {"bgnbd_penalizer": choice.penalizer,
                "penalizer_validation_gini": choice.penalizer_scores}
    return {"max_depth": choice.regressor_params["max_depth"],
            "candidate_validation_gini": choice.regressor_scores}


def train_ltv(snapshots: pd.DataFrame, seed: int, n_bootstrap: int = 200,
              params: Mapping[str, Any] | None = None) -> list[TrainingRun]:
    """The production runs of both CLV variants on int_customer_features_snapshots rows.

    Chooses on the test snapshot (the latest complete labels) as the validation window,
    reports the choices' metrics there (split ``validation``, beside both baselines, with
    intervals over `n_bootstrap` resamples of customers), and stores the production
    models: ``clv_bgnbd`` {"params", "horizon_days", "as_of_date", "penalizer"} fitted on
    the score snapshot; ``clv_xgboost`` {"regressor", "features"} refitted on the test
    snapshot. Raises InsufficientHistory on too short data.
    """
    windows = production_windows(snapshots)
    origin, horizon = windows.origin, windows.horizon_days
    train = snapshot_role(snapshots, "train")
    validation = snapshot_role(snapshots, "test")
    score = snapshot_role(snapshots, "score")
    choice = fit_clv_procedure(train, validation, seed, params)
    actual = validation["label_spend"].to_numpy(dtype=float)
    baselines = spend_baselines(validation)
    resampler = Resampler(len(validation), n_samples=n_bootstrap, seed=seed,
                          keys=validation["user_id"].to_numpy())
    label_window = Window(origin.validation, plus_days(origin.validation, horizon))
    common = {"horizon_days": horizon, "validation_date": str(origin.validation),
              "seed": seed, "baselines": list(BASELINES),
              "chosen_on": "validation (test snapshot labels)"}

    production = fit_clv(score, choice.penalizer)
    production_diagnostics = fit_diagnostics(production)
    bgnbd_run = TrainingRun(
        model_name="clv_bgnbd",
        train_window=Window(windows.first_date, origin.validation),
        label_window=label_window, n_train=len(validation), n_test=len(validation),
        params={**common, **_choice_params(choice, "clv_bgnbd"), "time_unit": "day",
                "transaction": "purchase day",
                "production_params": {"bgnbd": production["bgnbd"],
                                      "gamma_gamma": production["gamma_gamma"]},
                "production_fit": "score snapshot (every purchase to the last date)",
                "fit_status": production_diagnostics["fit_status"],
                "fit_diagnostics": production_diagnostics,
                "validation_fit_diagnostics": fit_diagnostics(choice.validation_fit)},
        metrics=(_compare_spend(actual, choice.validation_bgnbd, baselines, resampler,
                                "validation", origin.validation)
                 + fit_metrics(choice.validation_fit, validation, resampler,
                               "validation", origin.validation)),
        model={"params": production, "horizon_days": horizon,
               "as_of_date": str(windows.score), "penalizer": choice.penalizer},
    )
    xgb_run = TrainingRun(
        model_name="clv_xgboost",
        train_window=Window(windows.first_date, origin.train),
        label_window=label_window, n_train=len(train), n_test=len(validation),
        params={**common, **choice.regressor_params, **_choice_params(choice, "clv_xgboost"),
                "features": list(LTV_FEATURES),
                "production_fit": "test snapshot (labels to the last complete window)"},
        metrics=_compare_spend(actual, choice.validation_xgboost, baselines, resampler,
                               "validation", origin.validation),
        feature_importance=_gain_importance(choice.regressor),
        model={"regressor": choice.regressor, "features": list(LTV_FEATURES)},
        drift=feature_drift(validation, score, LTV_FEATURES,
                            moves_with_time=MOVES_WITH_SNAPSHOT_DATE),
    )
    return [bgnbd_run, xgb_run]


def evaluate_ltv(snapshots: pd.DataFrame, seed: int, step_days: int, n_cutoffs: int,
                 n_bootstrap: int = 200,
                 params: Mapping[str, Any] | None = None) -> list[TrainingRun]:
    """The rolling-origin evaluation of both CLV variants on
    int_customer_features_evaluation_snapshots rows: at each of `n_cutoffs` test cutoffs
    (`step_days` apart), `fit_clv_procedure` on the snapshots at cutoff - 2H and cutoff -
    H, then BG/NBD + GG refitted with the chosen penalizer on the cutoff's snapshot
    (purchases before it) and the refitted regressor predict spend in [cutoff,
    cutoff + H). Metrics (split ``test``, per cutoff) beside both baselines, intervals
    over `n_bootstrap` resamples of the cutoff's customers. Two runs, kind
    ``evaluation``. Raises InsufficientHistory on too short data.
    """
    origins = evaluation_windows(snapshots, step_days, n_cutoffs)
    horizon = origins[0].horizon_days
    metrics: dict[str, list[Metric]] = {name: [] for name in MODEL_NAMES}
    choices: dict[str, dict[str, Any]] = {name: {} for name in MODEL_NAMES}
    fits: dict[str, dict[str, Any]] = {}
    n_train = n_test = 0
    for i, origin in enumerate(origins):
        train = snapshot_at(snapshots, origin.train)
        validation = snapshot_at(snapshots, origin.validation)
        test = snapshot_at(snapshots, origin.test)
        choice = fit_clv_procedure(train, validation, seed, params)
        test_fit = fit_clv(test, choice.penalizer)
        predictions = {
            "clv_bgnbd": predict_clv(test_fit, test, horizon)["expected_spend"].to_numpy(),
            "clv_xgboost": _predict_spend(choice.regressor, test),
        }
        actual = test["label_spend"].to_numpy(dtype=float)
        baselines = spend_baselines(test)
        resampler = Resampler(len(test), n_samples=n_bootstrap, seed=seed + i,
                              keys=test["user_id"].to_numpy())
        for name in MODEL_NAMES:
            metrics[name] += _compare_spend(actual, predictions[name], baselines,
                                            resampler, "test", origin.test)
            choices[name][str(origin.test)] = _choice_params(choice, name)
        metrics["clv_bgnbd"] += fit_metrics(test_fit, test, resampler, "test", origin.test)
        fits[str(origin.test)] = fit_diagnostics(test_fit)
        n_train += len(train)
        n_test += len(test)
    first = pd.Timestamp(snapshots["first_purchase_date"].min()).date()
    common = {"horizon_days": horizon, "step_days": step_days, "n_cutoffs": n_cutoffs,
              "cutoffs": [str(o.test) for o in origins], "seed": seed,
              "bootstrap_samples": n_bootstrap, "baselines": list(BASELINES),
              "resampled_unit": "customer",
              "origins": [{"train": str(o.train), "validation": str(o.validation),
                           "test": str(o.test)} for o in origins]}
    label_window = Window(origins[0].test, plus_days(origins[-1].test, horizon))
    extra: dict[str, dict[str, Any]] = {
        "clv_bgnbd": {"fit_status": {cutoff: fit["fit_status"]
                                     for cutoff, fit in fits.items()},
                      "fit_diagnostics": fits},
        "clv_xgboost": {}}
    return [TrainingRun(model_name=name, train_window=Window(first, origins[-1].validation),
                        label_window=label_window, n_train=n_train, n_test=n_test,
                        params={**common, "chosen_on_validation": choices[name],
                                **extra[name]},
                        metrics=metrics[name], run_kind="evaluation")
            for name in MODEL_NAMES]


def runs_or_skip(train: Callable[[], list[TrainingRun]], strict: bool = False,
                 run_kind: str = "production") -> list[TrainingRun]:
    """`train()`, or one skipped run per CLV model when the data are too short
    (ml.evaluation.train_or_skip; `strict` turns the skip into an error)."""
    try:
        return train()
    except InsufficientHistory as shortage:
        def again() -> TrainingRun:
            raise shortage
        return [train_or_skip(name, again, strict=strict, run_kind=run_kind)
                for name in MODEL_NAMES]


# The scores' columns and types (an empty frame keeps them, so a skipped run still
# writes a typed table).
SCORE_SCHEMA = {
    "user_id": "int64", "as_of_date": pd.ArrowDtype(pa.date32()), "horizon_days": "int64",
    "frequency": "int64", "recency_days": "int64", "customer_age_days": "int64",
    "monetary_value": "float64", "p_alive": "float64", "expected_purchases": "float64",
    "expected_avg_spend": "float64", "expected_spend": "float64",
    "xgboost_expected_spend": "float64",
}
RUN_SCHEMA = {"run_id": "string", "is_model_below_baseline": "bool",
              "xgboost_run_id": "string", "is_xgboost_below_baseline": "bool"}


def empty_ltv_scores() -> pd.DataFrame:
    """The scores of a skipped run: no row, the columns and types of `score_ltv` with
    both runs' columns (ml.registry.with_run)."""
    return pd.DataFrame({name: pd.Series([], dtype=dtype)
                         for name, dtype in {**SCORE_SCHEMA, **RUN_SCHEMA}.items()})


def score_ltv(bgnbd_model: Mapping[str, Any], xgb_model: Mapping[str, Any],
              frame: pd.DataFrame) -> pd.DataFrame:
    """One row per customer of `frame` (the score snapshot): BG/NBD + GG expectations
    over the horizon and the regressor's expected spend."""
    horizon = int(bgnbd_model["horizon_days"])
    scored = predict_clv(bgnbd_model["params"], frame, horizon)
    regressor = xgb_model["regressor"]
    xgb_spend = regressor.predict(frame[list(xgb_model["features"])].astype(float))
    return pd.DataFrame({
        "user_id": frame["user_id"].to_numpy(),
        "as_of_date": pd.to_datetime(frame["snapshot_date"]).dt.date.to_numpy(),
        "horizon_days": horizon,
        "frequency": scored["frequency"].astype(int).to_numpy(),
        "recency_days": scored["recency"].astype(int).to_numpy(),
        "customer_age_days": scored["T"].astype(int).to_numpy(),
        "monetary_value": scored["monetary_value"].to_numpy(),
        "p_alive": scored["p_alive"].to_numpy(),
        "expected_purchases": scored["expected_purchases"].to_numpy(),
        "expected_avg_spend": scored["expected_avg_spend"].to_numpy(),
        "expected_spend": scored["expected_spend"].to_numpy(),
        "xgboost_expected_spend": np.maximum(xgb_spend.astype(float), 0.0),
    }).astype(SCORE_SCHEMA)
