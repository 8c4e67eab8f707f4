"""Purchase propensity: two classifiers of "will it be bought", beside two baselines,
tuned and calibrated on a validation window, judged on later test windows
(docs/evaluation.md).

Two tasks, each on feature rows built in SQL (models/intermediate/ml/propensity) from the
events up to the prediction point only:

- ``cart`` (rows of `int_cart_events_features`, one per cart event): is the carted
  product bought by the same user in the same session or within the cart horizon
  (24 h by default)? Predicted at the cart.
- ``session`` (rows of `int_session_prefix_features`, one per session with at least k
  events before its first purchase): does the session purchase? Predicted at its k-th
  event.

Every row has a prediction time `predicted_at` and the time its label became known
`label_known_at`. Features never depend on the cutoff, so any time split is a filter
on these two columns (`window_filters`):

- **train**: labels known by the validation start v;
- **validation**: predicted in [v, c), labels known by c (the end of validation);
- **embargo**: predicted before a boundary, label known after it: in neither set;
- **test** (evaluation only): predicted in [c, c + 7 days), labels known by the data end.

The procedure (`fit_procedure`), the same in production and at every test cutoff:

1. a small grid (GRID: min_child_weight x the monotone prior-purchase constraint, each
   fitted once with the most trees, read at every tree count of the grid) is fitted on
   train and scored on validation; the highest validation PR-AUC wins;
2. the model family: the chosen xgboost is kept only when its validation PR-AUC is
   confidently above the logistic regression on counts (the user-resampled interval
   of their difference above 0); otherwise the simpler logistic regression is the
   model (the rule was added after the 600k-event test fixture showed the session
   xgboost confidently below the logistic regression in one test week, whatever its
   grid point; it has no parameter of its own);
3. an isotonic calibrator is fitted on the validation labels and the chosen model's raw
   validation probabilities (ml/calibration.py);
4. the chosen model is refitted on train + validation; its calibrated probability is
   what is published. The ranking metrics read the raw score (the published
   probability with its isotonic ties broken by the raw score, the order `is_top_5pct`
   uses).

Production (`train_propensity`) runs it with v = the SQL cutoff (var ml_cutoff_date, by
default the last event date minus var ml_label_horizon_days; SQL roles `train` and
`validation`) and c = the data end, reports validation metrics and drift, and scores the
open rows (role `score`). The evaluation (`evaluate_propensity`) replays it at
`ml_evaluation_cutoffs` weekly test cutoffs, the last test window ending at the data end,
each with its own validation window [c - H, c) just before it.

Baselines, refitted on the same rows as the model:

- ``has_cart_rule``: "the session has a cart so far", as the positive rate of each rule
  value. Every cart row's session has a cart, so for the cart task the rule is constant:
  its ROC-AUC is 0.5 and its PR-AUC the positive rate ("no information");
- ``logistic_counts``: logistic regression on log(1 + count) features, standardised.

Intervals resample users (`Resampler(clusters=user_id)`): a user's carts and sessions
share the user's history features and the user's own propensity, so rows of one user
are not independent; users nest the sessions (and a session's carts).
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.calibration import calibration_rows, fit_calibrator
from ml.drift import feature_drift
from ml.evaluation import (BOOTSTRAP_SAMPLES, InsufficientHistory, Resampler, compare,
                           require_history, rolling_cutoffs, train_or_skip)
from ml.metrics import ProbabilityStatistics, RankStatistics
from ml.registry import Metric, TrainingRun, Window
from ml.relations import to_frame

__all__ = [
    "TASKS", "CLASSIFIER_PARAMS", "GRID", "BASELINES", "TOP_SHARE", "MIN_HISTORY_DAYS",
    "TEST_WINDOW_DAYS", "precision_at_top", "propensity_metrics", "read_sample",
    "read_rows", "window_filters", "fit_classifier", "predict", "rule_baseline",
    "logistic_baseline", "fit_logistic", "grid_configs", "choose_params", "fit_procedure",
    "train_task", "train_propensity", "evaluate_task", "evaluate_propensity",
    "score_propensity", "empty_scores", "weighted_metric",
]

# Per task: the model's name in the registry, the key column, the label, the numeric and
# categorical features of the classifier, the count features of the logistic baseline,
# the column of the "has a cart so far" rule, and the features the score may only grow
# with when the grid's monotone constraint is on.
TASKS: dict[str, dict[str, Any]] = {
    "cart": {
        "model_name": "purchase_propensity_cart",
        "key": "cart_event_id",
        "table": "int_cart_events_features",
        "numeric": (
            "price", "price_to_session_max", "has_brand", "session_events_so_far",
            "session_views_so_far", "session_carts_so_far", "session_removes_so_far",
            "session_purchases_so_far", "product_views_so_far", "product_carts_so_far",
            "seconds_since_session_start", "user_prior_sessions",
            "hours_since_previous_session", "user_prior_purchases", "user_prior_orders",
            "hour_of_day",
        ),
        "categorical": ("category_l1",),
        "counts": (
            "session_events_so_far", "session_views_so_far", "session_carts_so_far",
            "session_removes_so_far", "session_purchases_so_far", "product_views_so_far",
            "product_carts_so_far", "user_prior_sessions", "user_prior_purchases",
            "user_prior_orders",
        ),
        "rule_column": "session_carts_so_far",
        "monotone_increasing": ("user_prior_purchases", "user_prior_orders"),
    },
    "session": {
        "model_name": "purchase_propensity_session",
        "key": "session_id",
        "table": "int_session_prefix_features",
        "numeric": (
            "prefix_views", "prefix_carts", "prefix_removes", "prefix_distinct_products",
            "prefix_distinct_carted_products", "prefix_distinct_categories",
            "prefix_distinct_brands", "prefix_mean_price", "prefix_max_price",
            "prefix_min_price", "prefix_unknown_category_share",
            "prefix_unknown_brand_share", "seconds_to_prediction", "user_prior_sessions",
            "hours_since_previous_session", "user_prior_purchases", "user_prior_orders",
            "hour_of_day",
        ),
        "categorical": ("first_category_l1",),
        "counts": (
            "prefix_views", "prefix_carts", "prefix_removes", "prefix_distinct_products",
            "prefix_distinct_carted_products", "prefix_distinct_categories",
            "prefix_distinct_brands", "user_prior_sessions", "user_prior_purchases",
            "user_prior_orders",
        ),
        "rule_column": "prefix_carts",
        "monotone_increasing": ("user_prior_purchases", "user_prior_orders"),
    },
}

LABEL = "is_purchased"
UNKNOWN_CATEGORY = "unknown"
TOP_SHARE = 0.05
BASELINES = ("has_cart_rule", "logistic_counts")
# Features need some history before the first training row (prior sessions, purchases).
MIN_HISTORY_DAYS = 7
# The evaluation's test windows: a week of predictions each (var ml_evaluation_step_days).
TEST_WINDOW_DAYS = 7

# Fixed a priori (never compared on any window): depth 4, learning rate 0.12, row and
# column subsampling 0.8, 64 histogram bins. One thread: dbt runs two nodes at once on
# the 2-core target machine, and two xgboost threads were 5-12 times slower than one on
# a busy machine. min_child_weight, the tree count and the monotone constraint come from
# GRID, chosen on the validation window.
CLASSIFIER_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic", "n_estimators": 100, "learning_rate": 0.12,
    "max_depth": 4, "min_child_weight": 30.0, "subsample": 0.8, "colsample_bytree": 0.8,
    "reg_lambda": 1.0, "tree_method": "hist", "max_bin": 64, "n_jobs": 1,
    "enable_categorical": True, "max_cat_to_onehot": 16,
}
# The validation grid: 4 fits per task, each read at 2 tree counts (8 candidates). Its
# size is a cost decision (the evaluation replays it 6 times): 100 trees at learning
# rate 0.12 were the former fixed setting, and the grid stops there.
GRID: dict[str, tuple] = {
    "min_child_weight": (5.0, 30.0),
    "monotone_prior_purchases": (False, True),
    "n_estimators": (50, 100),
}
MONOTONE = "monotone_prior_purchases"
XGBOOST, LOGISTIC = "xgboost", "logistic_counts"

_PRECISION = f"precision_top_{round(TOP_SHARE * 100)}pct"


# --------------------------------------------------------------------------- metrics

def precision_at_top(y: np.ndarray, score: np.ndarray, share: float = TOP_SHARE) -> float:
    """Positive rate among the top `share` of rows by score (k = ceil(share x n)).

    Ties at the boundary count with their mean positive rate (the expectation over every
    order of the ties), so a score with few distinct values is not favoured by row order;
    a constant score has precision equal to the positive rate.
    """
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        return float("nan")
    return _weighted(y, np.asarray(score, dtype=float)).precision_top(np.ones(y.size),
                                                                       share)


def propensity_metrics(y: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """roc_auc, pr_auc (average precision), brier and precision in the top 5% of a
    probability (which must be in [0, 1])."""
    y = np.asarray(y, dtype=int)
    probability = np.asarray(probability, dtype=float)
    return {
        "roc_auc": float(roc_auc_score(y, probability)),
        "pr_auc": float(average_precision_score(y, probability)),
        "brier": float(brier_score_loss(y, np.clip(probability, 0.0, 1.0))),
        _PRECISION: precision_at_top(y, probability),
    }


class _Weighted:
    """A score sorted once, highest first, so that the precision in the top share of a
    bootstrap resample is a weighted pass over the same order (the weights are how often
    each row was drawn)."""

    def __init__(self, y: np.ndarray, score: np.ndarray) -> None:
        self.order = np.argsort(-score, kind="stable")
        self.y = y[self.order]
        self.score = score[self.order]
        ends = np.flatnonzero(np.r_[self.score[1:] != self.score[:-1], True])
        self.starts = np.r_[0, ends[:-1] + 1]

    def precision_top(self, w: np.ndarray, share: float = TOP_SHARE) -> float:
        w = w[self.order]
        total = w.sum()
        if total <= 0:
            raise ValueError("no rows")
        k = max(1.0, float(np.ceil(share * total - 1e-9)))
        sizes = np.add.reduceat(w, self.starts)
        hits = np.add.reduceat(w * self.y, self.starts)
        before = np.cumsum(sizes) - sizes
        use = np.clip(k - before, 0.0, sizes)
        share_used = np.divide(use, sizes, out=np.zeros_like(use), where=sizes > 0)
        return float(np.sum(hits * share_used) / k)


def _weighted(y: np.ndarray, score: np.ndarray) -> _Weighted:
    return _Weighted(np.asarray(y, dtype=float), np.asarray(score, dtype=float))


# The reasons recorded when a resample's rows leave a metric undefined.
_UNDEFINED = {"pr_auc": "no positive rows: PR-AUC is undefined",
              "roc_auc": "one class only: ROC-AUC is undefined"}


def weighted_metric(metric: str, y: np.ndarray, score: np.ndarray,
                    weights: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray],
                                                                            float]:
    """A statistic for `compare`: rows -> `metric` (pr_auc, roc_auc, precision_top_5pct,
    brier, ece) of `score` against `y` on those rows. The precision in the top share is
    a weighted pass (weights(rows) = how often each row was drawn); the others come from
    ml.metrics."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    if metric in ("brier", "ece"):
        return ProbabilityStatistics(y, score).statistic(metric)
    if metric in ("pr_auc", "roc_auc"):
        statistic = RankStatistics(y, score).statistic(metric)

        def ranked_metric(rows: np.ndarray) -> float:
            try:
                return statistic(rows)
            except ValueError:
                raise ValueError(_UNDEFINED[metric]) from None
        return ranked_metric
    ranked = _weighted(y, score)
    return lambda rows: ranked.precision_top(weights(rows))


def _weights_of(resampler: Resampler) -> Callable[[np.ndarray], np.ndarray]:
    """rows -> draw counts per row; the resamples' counts are computed once."""
    n = resampler.n_rows
    cache = {id(rows): np.bincount(rows, minlength=n).astype(float)
             for rows in resampler.samples}

    def weights(rows: np.ndarray) -> np.ndarray:
        found = cache.get(id(rows))
        return found if found is not None else np.bincount(rows, minlength=n).astype(float)
    return weights


# --------------------------------------------------------------------------- reading

def read_rows(relation: Any, key: str, where: str, max_rows: int,
              seed: int) -> pd.DataFrame:
    """The rows of a DuckDB relation matching `where`, at most `max_rows` of them.

    Above the cap the rows kept are those with the smallest md5(key || ':' || seed): a
    uniform sample without replacement, the same for the same seed on any machine, and
    taken inside DuckDB, so Python never holds more than `max_rows` rows.
    """
    if max_rows <= 0:
        raise ValueError("max_rows must be positive")
    return to_frame(relation.filter(where)
                    .order(f"md5(cast({key} as varchar) || ':{int(seed)}')")
                    .limit(int(max_rows)))


def read_sample(relation: Any, key: str, role: str, max_rows: int,
                seed: int) -> pd.DataFrame:
    """`read_rows` of the rows with `ml_role = role`."""
    return read_rows(relation, key, f"ml_role = '{role}'", max_rows, seed)


def _ts(value: date | pd.Timestamp) -> str:
    return f"timestamp '{pd.Timestamp(value)}'"


def window_filters(validation_start: date, cutoff: date,
                   test_end: date | None = None) -> dict[str, str]:
    """SQL filters of the rows of one replay (see the module docstring): train labels
    known by the validation start v; validation predicted in [v, c) with labels known by
    c; test predicted in [c, test_end) with labels known by the data end. Rows whose
    label straddles v or c are in neither side (the embargo)."""
    v, c = _ts(validation_start), _ts(cutoff)
    filters = {
        "train": f"is_label_complete and label_known_at <= {v}",
        "validation": (f"is_label_complete and predicted_at >= {v} and predicted_at < {c}"
                       f" and label_known_at <= {c}"),
    }
    if test_end is not None:
        filters["test"] = (f"is_label_complete and predicted_at >= {c} "
                           f"and predicted_at < {_ts(test_end)}")
    return filters


# --------------------------------------------------------------------------- models

def _design(frame: pd.DataFrame, task: Mapping[str, Any],
            categories: Mapping[str, list[str]]) -> pd.DataFrame:
    """The classifier's inputs: numeric features as floats (NULL stays NaN, which
    xgboost routes by learned defaults) and categorical ones on a fixed category list
    (NULL and categories unseen in training become NaN)."""
    design = frame[list(task["numeric"])].astype(float)
    for name in task["categorical"]:
        values = frame[name].astype(object).where(frame[name].notna(), UNKNOWN_CATEGORY)
        values = values.where(values.isin(categories[name]), None)
        design[name] = pd.Categorical(values, categories=categories[name])
    return design


def _categories(frame: pd.DataFrame, task: Mapping[str, Any]) -> dict[str, list[str]]:
    return {name: sorted(set(frame[name].dropna().astype(str)) | {UNKNOWN_CATEGORY})
            for name in task["categorical"]}


def fit_classifier(frame: pd.DataFrame, task_name: str, seed: int,
                   params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An xgboost classifier of is_purchased on the task's features (labels must be
    known). `params` override CLASSIFIER_PARAMS; `monotone_prior_purchases` (default
    False) constrains the score to grow with the user's prior purchases and orders.
    Returns {"classifier", "task", "categories", "features", "calibrator": None}."""
    from xgboost import XGBClassifier

    task = TASKS[task_name]
    params = dict(params or {})
    monotone_on = bool(params.pop(MONOTONE, False))
    categories = _categories(frame, task)
    features = [*task["numeric"], *task["categorical"]]
    monotone = "(" + ",".join(
        "1" if monotone_on and name in task["monotone_increasing"] else "0"
        for name in features) + ")"
    model = XGBClassifier(**{**CLASSIFIER_PARAMS, **params,
                             "monotone_constraints": monotone}, random_state=seed)
    model.fit(_design(frame, task, categories), frame[LABEL].astype(int))
    return {"classifier": model, "task": task_name, "categories": categories,
            "features": features, "calibrator": None}


def predict(model: Mapping[str, Any], frame: pd.DataFrame,
            n_trees: int | None = None) -> np.ndarray:
    """Raw P(purchase) of each row (the first `n_trees` trees when given; a model of
    family ``logistic_counts`` is the logistic regression on counts)."""
    if model.get("family") == LOGISTIC:
        return model["pipeline"].predict_proba(_counts(frame, model["task"]))[:, 1]
    task = TASKS[model["task"]]
    design = _design(frame, task, model["categories"])
    if n_trees is None:
        return model["classifier"].predict_proba(design)[:, 1]
    return model["classifier"].predict_proba(design, iteration_range=(0, int(n_trees)))[:, 1]


def calibrated(model: Mapping[str, Any], raw: np.ndarray) -> np.ndarray:
    """The published probability: the model's calibrator applied to its raw one."""
    calibrator = model.get("calibrator")
    return raw if calibrator is None else calibrator.predict(raw)


def rule_baseline(train: pd.DataFrame, test: pd.DataFrame,
                  task_name: str) -> np.ndarray:
    """The rule "the session has a cart so far" on `test`, as a probability: the positive
    rate of the train rows with the same rule value (the overall train rate for a value
    the train rows lack)."""
    column = TASKS[task_name]["rule_column"]
    train_rule = train[column].astype(float) > 0
    test_rule = test[column].astype(float) > 0
    y = train[LABEL].astype(float)
    rates = y.groupby(train_rule).mean()
    return test_rule.map(rates).fillna(y.mean()).to_numpy(dtype=float)


def _counts(frame: pd.DataFrame, task_name: str) -> np.ndarray:
    columns = list(TASKS[task_name]["counts"])
    return np.log1p(frame[columns].astype(float).fillna(0.0).clip(lower=0.0).to_numpy())


def fit_logistic(train: pd.DataFrame, task_name: str) -> dict[str, Any]:
    """The logistic regression on counts as a model (family ``logistic_counts``)."""
    model = make_pipeline(StandardScaler(),
                          LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=100))
    model.fit(_counts(train, task_name), train[LABEL].astype(int))
    return {"family": LOGISTIC, "pipeline": model, "task": task_name,
            "features": list(TASKS[task_name]["counts"]), "calibrator": None}


def logistic_baseline(train: pd.DataFrame, test: pd.DataFrame,
                      task_name: str) -> np.ndarray:
    """P(purchase) on `test` of a logistic regression on log(1 + counts), fitted on
    `train` (standardised inputs, L2 penalty C = 1, fixed a priori). Newton-Cholesky
    suits ten features and many rows."""
    return predict(fit_logistic(train, task_name), test)


def _gain_importance(model: Mapping[str, Any]) -> dict[str, float]:
    """Share of the total gain per feature (xgboost), or of the absolute standardised
    coefficients (the logistic regression)."""
    if model.get("family") == LOGISTIC:
        weights = np.abs(model["pipeline"][-1].coef_[0])
        total = float(weights.sum()) or 1.0
        return {name: float(w) / total for name, w in zip(model["features"], weights)}
    gains = model["classifier"].get_booster().get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    return {name: gains.get(name, 0.0) / total for name in model["features"]}


# --------------------------------------------------------------------------- procedure

def grid_configs(grid: Mapping[str, Sequence] | None = None) -> list[dict[str, Any]]:
    """The fits of the grid: one per min_child_weight x monotone constraint, each with
    the largest tree count (the smaller counts are read from the same fit)."""
    grid = grid or GRID
    return [{"min_child_weight": float(mcw), MONOTONE: bool(mono),
             "n_estimators": int(max(grid["n_estimators"]))}
            for mcw in grid["min_child_weight"] for mono in grid[MONOTONE]]


def _check_rows(rows: pd.DataFrame, task_name: str, name: str) -> None:
    """InsufficientHistory unless `rows` hold both classes (so the build skips the
    model on data too short for a window, rather than failing)."""
    if rows[LABEL].isna().any():
        raise ValueError(f"{task_name}: {name} rows without a label")
    y = rows[LABEL].astype(int)
    positives, negatives = int(y.sum()), int((1 - y).sum())
    if positives == 0 or negatives == 0:
        raise InsufficientHistory(1, min(positives, negatives),
                                  unit=f"{'positive' if positives == 0 else 'negative'} "
                                       f"{name} rows",
                                  detail=f"{task_name}: {len(rows)} {name} rows, "
                                         "one class only")


def choose_params(train: pd.DataFrame, validation: pd.DataFrame, task_name: str,
                  seed: int, grid: Mapping[str, Sequence] | None = None,
                  base_params: Mapping[str, Any] | None = None
                  ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The grid fitted on `train`, scored by PR-AUC on `validation` only.

    Returns (chosen params, one row per candidate {min_child_weight, monotone,
    n_estimators, validation_pr_auc}, the chosen candidate's fit on train with
    `n_trees` set). Ties go to fewer trees, then the larger min_child_weight, then the
    constraint on (the simpler model)."""
    grid = grid or GRID
    y = validation[LABEL].astype(int).to_numpy()
    everyone = np.arange(len(y))
    table, fits = [], {}
    for config in grid_configs(grid):
        fitted = fit_classifier(train, task_name, seed, {**(base_params or {}), **config})
        for trees in sorted(int(t) for t in grid["n_estimators"]):
            score = RankStatistics(y, predict(fitted, validation, n_trees=trees)
                                   ).average_precision(everyone)
            table.append({"min_child_weight": config["min_child_weight"],
                          MONOTONE: config[MONOTONE], "n_estimators": trees,
                          "validation_pr_auc": score})
            fits[(config["min_child_weight"], config[MONOTONE], trees)] = fitted
    best = max(table, key=lambda r: (round(r["validation_pr_auc"], 9), -r["n_estimators"],
                                     r["min_child_weight"], r[MONOTONE]))
    chosen = {"min_child_weight": best["min_child_weight"], MONOTONE: best[MONOTONE],
              "n_estimators": best["n_estimators"]}
    model = dict(fits[(best["min_child_weight"], best[MONOTONE], best["n_estimators"])])
    model["n_trees"] = best["n_estimators"]
    return chosen, table, model


def fit_procedure(train: pd.DataFrame, validation: pd.DataFrame, task_name: str,
                  seed: int, grid: Mapping[str, Sequence] | None = None,
                  base_params: Mapping[str, Any] | None = None,
                  n_samples: int = BOOTSTRAP_SAMPLES) -> dict[str, Any]:
    """Choose on validation, calibrate on validation, refit on train + validation.

    1. the xgboost grid is fitted on train and the best validation PR-AUC wins
       (`choose_params`);
    2. the model family: that xgboost fit is kept only when its validation PR-AUC is
       confidently above the logistic regression on counts (the lower bound of their
       user-resampled difference above 0, the verdict ``better``); otherwise the
       simpler logistic regression is the model;
    3. an isotonic calibrator is fitted on the validation labels and the chosen model's
       validation probabilities;
    4. the chosen model is refitted on train + validation and given the calibrator.

    Returns {"params" (chosen, with "family"), "grid" (validation table), "model" (the
    refit, with its "calibrator"), "validation": {"y", "raw", "rule", "logistic",
    "xgboost_vs_logistic" (the validation interval)}, "refit_rows", "resampler" (the
    validation rows' user resamples)}.
    Raises InsufficientHistory when a window lacks rows or a class.
    """
    for name, rows in (("train", train), ("validation", validation)):
        if rows.empty:
            raise InsufficientHistory(1, 0, unit=f"{name} rows with a known label",
                                      detail=task_name)
        _check_rows(rows, task_name, name)
    chosen, table, on_train = choose_params(train, validation, task_name, seed, grid,
                                            base_params)
    y = validation[LABEL].astype(int).to_numpy()
    boosted = predict(on_train, validation, n_trees=on_train["n_trees"])
    logistic = logistic_baseline(train, validation, task_name)
    resampler = Resampler(len(validation), n_samples=n_samples, seed=seed,
                          clusters=_users(validation))
    weights = _weights_of(resampler)
    [margin] = compare("pr_auc", weighted_metric("pr_auc", y, boosted, weights),
                       {LOGISTIC: weighted_metric("pr_auc", y, logistic, weights)},
                       resampler, split="validation")
    family = XGBOOST if margin.verdict() == "better" else LOGISTIC
    raw = boosted if family == XGBOOST else logistic
    calibrator = fit_calibrator(y, raw, method="isotonic")
    both = pd.concat([train, validation], ignore_index=True)
    if family == XGBOOST:
        final = fit_classifier(both, task_name, seed, {**(base_params or {}), **chosen})
    else:
        final = fit_logistic(both, task_name)
    final["calibrator"] = calibrator
    return {"params": {"family": family, **chosen}, "grid": table, "model": final,
            "refit_rows": both, "resampler": resampler,
            "validation": {"y": y, "raw": raw, "logistic": logistic,
                           "rule": rule_baseline(train, validation, task_name),
                           "xgboost_vs_logistic": [margin.value, margin.baseline_value,
                                                   margin.diff_ci_low,
                                                   margin.diff_ci_high]}}


_RANKING = (("pr_auc", True), ("roc_auc", True), (_PRECISION, True))


def _compare_all(y: np.ndarray, raw: np.ndarray, published: np.ndarray | None,
                 baselines: Mapping[str, np.ndarray], resampler: Resampler, split: str,
                 cutoff: date | None) -> list[Metric]:
    """pr_auc (primary), roc_auc and precision_top_5pct of the raw score, brier and
    ece of the published probability, each beside every baseline (and the calibrated
    figures beside the uncalibrated ones, baseline `uncalibrated`)."""
    weights = _weights_of(resampler)
    metrics: list[Metric] = []
    for name, _ in _RANKING:
        metrics += compare(
            name, weighted_metric(name, y, raw, weights),
            {b: weighted_metric(name, y, p, weights) for b, p in baselines.items()},
            resampler, is_primary=name == "pr_auc", split=split, cutoff=cutoff)
    probability = raw if published is None else published
    for name in ("brier", "ece"):
        against = dict(baselines)
        if published is not None:
            against = {"uncalibrated": raw, **against}
        metrics += compare(
            name, weighted_metric(name, y, probability, weights),
            {b: weighted_metric(name, y, p, weights) for b, p in against.items()},
            resampler, higher_is_better=False, split=split, cutoff=cutoff)
    return metrics


def _fixed(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters fixed a priori (the grid's keys are chosen per run)."""
    return {k: v for k, v in {**CLASSIFIER_PARAMS, **(params or {})}.items()
            if k not in GRID}


def _as_date(value: Any) -> date:
    return pd.Timestamp(value).date()


def _users(frame: pd.DataFrame) -> np.ndarray:
    return frame["user_id"].astype(str).to_numpy()


def train_task(train: pd.DataFrame, validation: pd.DataFrame, task_name: str, seed: int,
               score: pd.DataFrame | None = None, n_samples: int = BOOTSTRAP_SAMPLES,
               grid: Mapping[str, Sequence] | None = None,
               params: Mapping[str, Any] | None = None,
               extra_params: Mapping[str, Any] | None = None) -> TrainingRun:
    """The production run of one task: `fit_procedure` on the SQL roles `train` and
    `validation`, validation metrics beside both baselines with user-resampled
    intervals (split `validation`: read them knowing the grid was chosen there), the
    uncalibrated reliability table of validation, and drift from the train rows to the
    `score` rows. The stored model is the refit with its calibrator."""
    task = TASKS[task_name]
    fitted = fit_procedure(train, validation, task_name, seed, grid, params, n_samples)
    val = fitted["validation"]
    resampler = fitted["resampler"]  # users of the validation rows, drawn once
    metrics = _compare_all(val["y"], val["raw"], None,
                           {"has_cart_rule": val["rule"], "logistic_counts": val["logistic"]},
                           resampler, "validation", None)
    cutoff = _as_date(validation["cutoff_at"].iloc[0])
    data_end = pd.Timestamp(validation["data_end_at"].iloc[0])
    features = [*task["numeric"]]
    return TrainingRun(
        model_name=task["model_name"],
        train_window=Window(_as_date(train["predicted_at"].min()), cutoff),
        label_window=Window(cutoff, (data_end + pd.Timedelta(days=1)).date()),
        n_train=len(fitted["refit_rows"]), n_test=len(validation),
        params={**_fixed(params), **fitted["params"],
                **(extra_params or {}), "seed": seed, "task": task_name,
                "chosen_on": "validation window (SQL role validation)",
                "validation_pr_auc_xgboost_vs_logistic":
                    fitted["validation"]["xgboost_vs_logistic"],
                "grid": fitted["grid"], "calibration": "isotonic, fitted on validation",
                "cutoff_at": str(pd.Timestamp(validation["cutoff_at"].iloc[0])),
                "data_end_at": str(data_end), "features": fitted["model"]["features"],
                "baseline_counts": list(task["counts"]),
                "positive_rate_train": float(train[LABEL].astype(float).mean()),
                "positive_rate_validation": float(val["y"].mean()),
                "n_fit_train": len(train), "resampled_unit": "user_id",
                "production_fit": "train + validation rows, chosen params, calibrated"},
        metrics=metrics,
        feature_importance=_gain_importance(fitted["model"]),
        model=fitted["model"],
        drift=(feature_drift(fitted["refit_rows"], score, features, task=task_name)
               if score is not None and len(score) else []),
        calibration=calibration_rows(val["y"], val["raw"], "uncalibrated", task=task_name),
    )


def train_propensity(relations: Mapping[str, Any], seed: int, max_rows: int,
                     n_samples: int = BOOTSTRAP_SAMPLES, strict: bool = False,
                     grid: Mapping[str, Sequence] | None = None,
                     params: Mapping[str, Any] | None = None) -> list[TrainingRun]:
    """Both production runs from the feature relations {"cart": ..., "session": ...}
    (seeded samples of at most `max_rows` rows per role); a task whose data are too
    short becomes a skipped run (or an error with `strict`)."""
    runs = []
    for task_name, relation in relations.items():
        task = TASKS[task_name]

        def train(task_name=task_name, relation=relation, task=task) -> TrainingRun:
            _require_days(relation, MIN_HISTORY_DAYS + _horizon_of(relation),
                          "days of features, then the validation window")
            frames = {role: read_sample(relation, task["key"], role, max_rows, seed)
                      for role in ("train", "validation", "score")}
            return train_task(frames["train"], frames["validation"], task_name, seed,
                              score=frames["score"], n_samples=n_samples, grid=grid,
                              params=params, extra_params={"max_rows_per_role": max_rows})
        runs.append(train_or_skip(task["model_name"], train, strict=strict))
    return runs


def _bounds(relation: Any) -> tuple[pd.Timestamp | None, pd.Timestamp | None,
                                    pd.Timestamp | None]:
    first, end, cutoff = relation.aggregate(
        "min(predicted_at), max(data_end_at), max(cutoff_at)").fetchall()[0]
    return (None if first is None else pd.Timestamp(first),
            None if end is None else pd.Timestamp(end),
            None if cutoff is None else pd.Timestamp(cutoff))


def _horizon_of(relation: Any) -> int:
    _, end, cutoff = _bounds(relation)
    return 0 if end is None or cutoff is None else max(0, (end.normalize() - cutoff).days)


def _require_days(relation: Any, need: int, what: str) -> None:
    first, end, _ = _bounds(relation)
    have = 0 if first is None else (end.normalize() - first.normalize()).days + 1
    require_history(need, have, detail=f"{MIN_HISTORY_DAYS} {what}")


# --------------------------------------------------------------------------- evaluation

def evaluation_windows(first: date, data_end: date, horizon_days: int, step_days: int,
                       n_cutoffs: int) -> list[tuple[date, date, date]]:
    """(validation start, test cutoff, test end) per replay, oldest first: weekly test
    windows [c, c + step) ending at the day after the data end, each with the
    validation window [c - H, c) before it. Raises InsufficientHistory when the first
    validation window leaves fewer than MIN_HISTORY_DAYS of training rows before it."""
    last_label_date = data_end + timedelta(days=1)
    cutoffs = rolling_cutoffs(last_label_date, step_days, step_days, n_cutoffs)
    need = MIN_HISTORY_DAYS + horizon_days + step_days * n_cutoffs
    require_history(need, (last_label_date - first).days, detail=(
        f"{MIN_HISTORY_DAYS} days of training rows, a {horizon_days}-day validation "
        f"window and {n_cutoffs} weekly test windows of {step_days} days"))
    return [(c - timedelta(days=horizon_days), c, c + timedelta(days=step_days))
            for c in cutoffs]


def evaluate_task(relation: Any, task_name: str, seed: int, max_rows: int,
                  horizon_days: int, step_days: int, n_cutoffs: int,
                  n_samples: int = BOOTSTRAP_SAMPLES,
                  grid: Mapping[str, Sequence] | None = None,
                  params: Mapping[str, Any] | None = None) -> TrainingRun:
    """The evaluation run of one task: `fit_procedure` replayed at each test cutoff;
    metrics on split `test` with the cutoff, user-resampled intervals, verdicts;
    reliability tables before and after calibration per cutoff."""
    task = TASKS[task_name]
    first, end, _ = _bounds(relation)
    if first is None:
        raise InsufficientHistory(1, 0, unit="rows", detail=task_name)
    windows = evaluation_windows(first.date(), end.date(), horizon_days, step_days,
                                 n_cutoffs)
    metrics, calibration, chosen, n_train, n_test = [], [], {}, 0, 0
    for v, c, t in windows:
        rows = {name: read_rows(relation, task["key"], where, max_rows, seed)
                for name, where in window_filters(v, c, t).items()}
        fitted = fit_procedure(rows["train"], rows["validation"], task_name, seed, grid,
                               params, n_samples)
        test = rows["test"]
        if test[LABEL].isna().any():
            raise ValueError(f"{task_name}: test rows without a label")
        y = test[LABEL].astype(int).to_numpy()
        raw = predict(fitted["model"], test)
        published = calibrated(fitted["model"], raw)
        both = fitted["refit_rows"]
        resampler = Resampler(len(test), n_samples=n_samples, seed=seed,
                              clusters=_users(test))
        metrics += _compare_all(
            y, raw, published,
            {"has_cart_rule": rule_baseline(both, test, task_name),
             "logistic_counts": logistic_baseline(both, test, task_name)},
            resampler, "test", c)
        if len(test):
            calibration += calibration_rows(y, raw, "uncalibrated", cutoff=c,
                                            task=task_name)
            calibration += calibration_rows(y, published, "calibrated", cutoff=c,
                                            task=task_name)
        chosen[str(c)] = {**fitted["params"], "validation_start": str(v),
                          "validation_pr_auc_xgboost_vs_logistic":
                              fitted["validation"]["xgboost_vs_logistic"],
                          "test_end": str(t), "n_train": len(rows["train"]),
                          "n_validation": len(rows["validation"]), "n_test": len(test),
                          "positive_rate_test": float(y.mean()) if len(y) else None}
        n_train += len(both)
        n_test += len(test)
    return TrainingRun(
        model_name=task["model_name"],
        train_window=Window(first.date(), windows[-1][1]),
        label_window=Window(windows[0][1], windows[-1][2]),
        n_train=n_train, n_test=n_test,
        params={**_fixed(params), "seed": seed, "task": task_name,
                "grid": {k: list(v) for k, v in (grid or GRID).items()},
                "chosen_per_cutoff": chosen, "horizon_days": horizon_days,
                "test_window_days": step_days, "max_rows_per_window": max_rows,
                "resampled_unit": "user_id", "bootstrap_samples": n_samples},
        metrics=metrics, run_kind="evaluation", calibration=calibration)


def evaluate_propensity(relations: Mapping[str, Any], seed: int, max_rows: int,
                        horizon_days: int, step_days: int, n_cutoffs: int,
                        n_samples: int = BOOTSTRAP_SAMPLES, strict: bool = False,
                        grid: Mapping[str, Sequence] | None = None,
                        params: Mapping[str, Any] | None = None) -> list[TrainingRun]:
    """Both evaluation runs (a task too short for its windows is a skipped run)."""
    return [train_or_skip(
        TASKS[name]["model_name"],
        lambda name=name, relation=relation: evaluate_task(
            relation, name, seed, max_rows, horizon_days, step_days, n_cutoffs,
            n_samples, grid, params),
        strict=strict, run_kind="evaluation")
        for name, relation in relations.items()]


# --------------------------------------------------------------------------- scoring

def empty_scores() -> pd.DataFrame:
    """The scores' columns and dtypes without rows (a skipped run scores nothing)."""
    return pd.DataFrame({
        "task": pd.Series(dtype=object), "prediction_id": pd.Series(dtype=object),
        "session_id": pd.Series(dtype=object), "user_id": pd.Series(dtype="int64"),
        "product_id": pd.Series(dtype="Int64"),
        "predicted_at": pd.Series(dtype="datetime64[ns]"),
        "as_of_at": pd.Series(dtype="datetime64[ns]"),
        "purchase_probability": pd.Series(dtype=float),
        "raw_probability": pd.Series(dtype=float),
        "is_top_5pct": pd.Series(dtype=bool),
    })


def score_propensity(model: Mapping[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """One row per open cart or session of `frame` (rows with ml_role score): its
    calibrated probability of purchase, the raw one, and whether it is in the top 5% of
    them (by the raw score, which breaks the calibrated probability's ties)."""
    task_name = model["task"]
    task = TASKS[task_name]
    raw = (predict(model, frame) if len(frame) else np.empty(0, dtype=float))
    probability = calibrated(model, raw) if len(frame) else raw
    k = int(np.ceil(TOP_SHARE * len(frame)))
    order = np.lexsort((raw, probability))[::-1]
    top = np.zeros(len(frame), dtype=bool)
    top[order[:k]] = True
    return pd.DataFrame({
        "task": task_name,
        "prediction_id": frame[task["key"]].astype(str).to_numpy(),
        "session_id": frame["session_id"].astype(str).to_numpy(),
        "user_id": frame["user_id"].to_numpy(),
        "product_id": (pd.array(frame["product_id"], dtype="Int64") if "product_id" in frame
                       else pd.array([None] * len(frame), dtype="Int64")),
        "predicted_at": pd.to_datetime(frame["predicted_at"]).to_numpy(),
        "as_of_at": pd.to_datetime(frame["data_end_at"]).to_numpy(),
        "purchase_probability": np.asarray(probability, dtype=float),
        "raw_probability": raw.astype(float),
        "is_top_5pct": top,
    })
