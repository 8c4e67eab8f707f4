"""Customer lifetime value on customer snapshots: BG/NBD + Gamma-Gamma and an xgboost
regressor, evaluated against "future spend = past spend over the same length".

Input frames are rows of `int_customer_features_snapshots` (one row per customer x
snapshot; features from the days before `snapshot_date`, labels from the
`horizon_days` after it). Roles: ``train`` (snapshot = cutoff - horizon), ``test``
(snapshot = cutoff) and ``score`` (the day after the last event date).

Units. BG/NBD works on purchase *days* in *days*: ``frequency`` = distinct purchase days
- 1 (repeat purchase days), ``recency`` = last - first purchase day, ``T`` = snapshot -
first purchase day, horizon in days. Several purchase lines on one day are one
transaction (a basket), which is what the process models; days (not weeks) because the
window is three months. ``monetary_value`` = mean spend of the repeat purchase days
(the first day excluded, as in Gamma-Gamma), in the price currency (USD).

Evaluation (the calibration/holdout split): BG/NBD + GG are fitted on the ``test``
snapshot (every purchase before the cutoff) and predict spend in [cutoff, cutoff + H);
the regressor is fitted on the ``train`` snapshot (features before cutoff - H, spend in
[cutoff - H, cutoff)) and predicts the same holdout. The baseline predicts each
customer's spend in the H days before the cutoff. Production: BG/NBD + GG are refitted
on the ``score`` snapshot (all data), the regressor on the ``test`` snapshot (the last
window with complete labels); both score the ``score`` snapshot.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ml.clv import fit_bgnbd, fit_gamma_gamma, score_customers
from ml.registry import Metric, TrainingRun, Window

__all__ = [
    "BGNBD_PENALIZER", "LTV_FEATURES", "LTV_BASELINE", "REGRESSOR_PARAMS", "bgnbd_summary",
    "fit_clv",
    "predict_clv", "normalized_gini", "spend_metrics", "fit_spend_regressor",
    "train_ltv", "score_ltv", "snapshot_role", "snapshot_windows",
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

REGRESSOR_PARAMS: dict[str, Any] = {
    "objective": "reg:tweedie", "tweedie_variance_power": 1.5, "n_estimators": 300,
    "learning_rate": 0.05, "max_depth": 4, "min_child_weight": 5.0, "subsample": 0.8,
    "colsample_bytree": 0.8, "reg_lambda": 1.0, "tree_method": "hist", "n_jobs": 2,
}


def snapshot_role(snapshots: pd.DataFrame, role: str) -> pd.DataFrame:
    """The rows of one snapshot role, sorted by user_id (a stable order for fitting)."""
    rows = snapshots[snapshots["snapshot_role"] == role]
    return rows.sort_values("user_id", kind="stable").reset_index(drop=True)


def snapshot_windows(snapshots: pd.DataFrame) -> dict[str, date]:
    """The dates of the split: train/test/score snapshot dates and the horizon (days).

    Raises ValueError when the training or the test snapshot has no customer: the data is
    too short (or has no purchase) for a training window and a test window of one horizon
    each. The score snapshot is optional here (training models do not read it).
    """
    missing = sorted({"train", "test"} - set(snapshots["snapshot_role"]))
    if missing:
        raise ValueError(
            f"no customer in the {', '.join(missing)} snapshot(s): the churn and CLV models "
            "need purchases before the training cutoff, i.e. at least about two label "
            "horizons (var ml_label_horizon_days) of history plus some days before. Build "
            "a short extract without the ML models: dbt build --exclude tag:ml+")
    dates = (snapshots.groupby("snapshot_role")["snapshot_date"].max()
             .map(lambda value: pd.Timestamp(value).date()))
    horizon = int(snapshots["horizon_days"].iloc[0])
    first = pd.Timestamp(snapshots["first_purchase_date"].min()).date()
    return {"train": dates.get("train"), "test": dates.get("test"),
            "score": dates.get("score"), "first_date": first, "horizon_days": horizon}


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


# L2 penalty of the BG/NBD fit. Unpenalised, the fit on a short window (many customers
# first seen in it) runs to the no-dropout boundary (a, b -> inf with a/(a+b) -> 0),
# where the conditional expectation is numerically undefined; 1e-3 keeps it interior
# (on the demo data it also predicts the holdout better; see _ltv__docs.md).
BGNBD_PENALIZER = 1e-3


def fit_clv(frame: pd.DataFrame, penalizer: float = BGNBD_PENALIZER,
            gamma_gamma_penalizer: float = 0.0) -> dict[str, dict[str, float]]:
    """BG/NBD and Gamma-Gamma parameters fitted on snapshot rows.

    `penalizer` applies to BG/NBD, `gamma_gamma_penalizer` to Gamma-Gamma (whose gamma is
    in currency, so the same L2 weight would dominate it). If the Gamma-Gamma fit has
    q <= 1 (infinite mean spend), it is refitted with a small penalty.
    """
    summary = bgnbd_summary(frame)
    x = summary["frequency"].to_numpy()
    m = summary["monetary_value"].to_numpy()
    bgnbd = fit_bgnbd(x, summary["recency"], summary["T"], penalizer=penalizer)
    spenders = (x > 0) & (np.nan_to_num(m) > 0)
    gamma_gamma = fit_gamma_gamma(x[spenders], m[spenders], penalizer=gamma_gamma_penalizer)
    if gamma_gamma["q"] <= 1:
        gamma_gamma = fit_gamma_gamma(x[spenders], m[spenders],
                                      penalizer=max(gamma_gamma_penalizer, 1e-6))
    return {"bgnbd": {key: float(bgnbd[key]) for key in ("r", "alpha", "a", "b")},
            "gamma_gamma": {key: float(gamma_gamma[key]) for key in ("p", "q", "gamma")}}


def predict_clv(params: Mapping[str, Mapping[str, float]], frame: pd.DataFrame,
                horizon: float) -> pd.DataFrame:
    """user_id, frequency, recency, T, monetary_value, expected_purchases, p_alive,
    expected_avg_spend and expected_spend (over `horizon` days) of snapshot rows."""
    return score_customers(bgnbd_summary(frame), horizon, bgnbd_params=params["bgnbd"],
                           gamma_gamma_params=params["gamma_gamma"])


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
    frame = pd.DataFrame({"p": predicted, "a": actual})
    groups = frame.groupby("p", sort=True)["a"].agg(["size", "sum"]).iloc[::-1]
    x = np.concatenate([[0.0], np.cumsum(groups["size"].to_numpy()) / actual.size])
    y = np.concatenate([[0.0], np.cumsum(groups["sum"].to_numpy()) / actual.sum()])
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


_DIRECTIONS = {"normalized_gini": True, "spearman": True, "mae": False,
               "total_revenue_abs_rel_error": False}


def _metrics_beside_baseline(model: dict[str, float],
                             baseline: dict[str, float]) -> list[Metric]:
    return [Metric(name, model[name], LTV_BASELINE, baseline[name], split="holdout",
                   higher_is_better=_DIRECTIONS[name], is_primary=name == "normalized_gini")
            for name in _DIRECTIONS]


def fit_spend_regressor(frame: pd.DataFrame, seed: int,
                        params: Mapping[str, Any] | None = None) -> Any:
    """An xgboost regressor of label_spend on LTV_FEATURES (rows need complete labels)."""
    from xgboost import XGBRegressor

    model = XGBRegressor(**{**REGRESSOR_PARAMS, **(params or {})}, random_state=seed)
    model.fit(frame[list(LTV_FEATURES)].astype(float), frame["label_spend"].astype(float))
    return model


def _gain_importance(model: Any) -> dict[str, float]:
    gains = model.get_booster().get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    return {feature: gains.get(feature, 0.0) / total for feature in LTV_FEATURES}


def train_ltv(snapshots: pd.DataFrame, seed: int,
              params: Mapping[str, Any] | None = None) -> list[TrainingRun]:
    """Fit, evaluate and refit both CLV variants; one TrainingRun each.

    ``clv_bgnbd``: BG/NBD + Gamma-Gamma; its model is {"params": ..., "horizon_days"}
    fitted on the score snapshot. ``clv_xgboost``: the regressor; its model is the
    XGBRegressor refitted on the test snapshot. Both are compared on the holdout with
    the past-spend baseline (primary metric: normalized Gini). `params` override
    REGRESSOR_PARAMS.
    """
    windows = snapshot_windows(snapshots)
    horizon = windows["horizon_days"]
    train = snapshot_role(snapshots, "train")
    test = snapshot_role(snapshots, "test")
    score = snapshot_role(snapshots, "score")
    actual = test["label_spend"].to_numpy(dtype=float)
    baseline = spend_metrics(actual, test["spend_last_horizon"].to_numpy(dtype=float))

    calibration = fit_clv(test)
    bgnbd_pred = predict_clv(calibration, test, horizon)["expected_spend"].to_numpy()
    production = fit_clv(score)
    common = {"horizon_days": horizon, "cutoff_date": str(windows["test"]),
              "seed": seed, "baseline": LTV_BASELINE}
    label_window = Window(windows["test"], _plus_days(windows["test"], horizon))
    bgnbd_run = TrainingRun(
        model_name="clv_bgnbd",
        train_window=Window(windows["first_date"], windows["test"]),
        label_window=label_window, n_train=len(test), n_test=len(test),
        params={**common, "time_unit": "day", "transaction": "purchase day",
                "bgnbd_penalizer": BGNBD_PENALIZER,
                "calibration_params": calibration, "production_params": production},
        metrics=_metrics_beside_baseline(
            spend_metrics(actual, bgnbd_pred), baseline),
        model={"params": production, "horizon_days": horizon,
               "as_of_date": str(windows["score"])},
    )

    params = {**REGRESSOR_PARAMS, **(params or {})}
    evaluation_model = fit_spend_regressor(train, seed, params)
    xgb_pred = evaluation_model.predict(test[list(LTV_FEATURES)].astype(float))
    final_model = fit_spend_regressor(test, seed, params)
    xgb_run = TrainingRun(
        model_name="clv_xgboost",
        train_window=Window(windows["first_date"], windows["train"]),
        label_window=label_window, n_train=len(train), n_test=len(test),
        params={**common, **params, "features": list(LTV_FEATURES),
                "production_fit": "test snapshot (labels to the last event date)"},
        metrics=_metrics_beside_baseline(spend_metrics(actual, xgb_pred), baseline),
        feature_importance=_gain_importance(final_model),
        model={"regressor": final_model, "features": list(LTV_FEATURES)},
    )
    return [bgnbd_run, xgb_run]


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
    })


def _plus_days(day: date, days: int) -> date:
    return (pd.Timestamp(day) + pd.Timedelta(days=days)).date()
