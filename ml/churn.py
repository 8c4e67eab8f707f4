"""Churn on customer snapshots: a calibrated xgboost classifier beside two baselines.

Input frames are rows of `int_customer_features_snapshots` or
`int_customer_features_evaluation_snapshots` (ml/customer_snapshots.py). A customer is a
user with at least one purchase before the snapshot date (churn of a user who never
bought is undefined). The label `is_churned` is "no purchase in the `horizon_days` days
from the snapshot date on" ([snapshot, snapshot + H)); a purchase on the snapshot date
itself is in the label window, never in the features.

The procedure (docs/evaluation.md), at an origin with train snapshot t0 and validation
snapshot t1 = t0 + H (`fit_churn_procedure`):

1. fit each of CANDIDATES (tree depth 3 or 5, with or without the monotone
   constraints) on t0; choose the one with the highest ROC-AUC on t1's labels;
2. refit the chosen candidate on t0 and t1 together (both label windows, the latest
   complete ones);
3. fit an isotonic calibration map (ml/calibration.py) on those labels, of the
   out-of-fold raw probabilities of the chosen candidate on t0 and t1 (3 folds, a
   customer's two rows in one fold): the map of the refitted model's probabilities for
   customers it has not seen. The refitted model's raw probability through the map is
   the published churn probability.

Why two windows. The probability's level moves from one two-week window to the next
(the churn rate given the same features: the oracle shift of the log-odds that would
have matched each demo test window's rate was -0.31, -0.16 and +0.10), and a model and
map fitted on one window carry that window's level into the next, which is most of the
test ECE (docs/evaluation.md, Calibration). Two windows average two levels: over 15 test
windows (5 generator seeds x 3 cutoffs) the mean ECE fell from 0.020 to 0.017 and the
Brier score and ROC-AUC improved. (A map fitted on the t0-model's predictions of t1 does
not transfer to the refitted model: it corrects the change of churn rate between t0 and
t1, which the refit has already absorbed, and doubled the test ECE on the demo.)

The evaluation (`evaluate_churn`) replays it at rolling test cutoffs c with t0 = c - 2H,
t1 = c - H and judges on the snapshot at c; production (`train_churn`) at the latest
complete window (t0 = the train snapshot, t1 = the test snapshot) and scores the score
snapshot. Baselines, on the same customers:

- ``recency_rule``: days since the last purchase (its probability, for the Brier score
  and ECE, is an isotonic map of it fitted on the window before the one judged);
- ``bgnbd_p_no_purchase``: BG/NBD's probability of no purchase in (T, T + H]
  (ml.clv.bgnbd_p_no_purchase), fitted on the judged snapshot's own purchase history
  (no label), the weight of its unit-free penalty (on ln r, ln a, ln b) chosen on the
  validation window from ml.ltv.BGNBD_PENALIZERS. A degenerate fit (no repeat buyer, a
  or b -> infinity, no convergence) falls back to the NBD (no dropout) and the run's
  params say so (``bgnbd_baseline_fit_status``). Not 1 - P(alive), which is 0 for every
  one-time buyer.

Primary metric: ROC-AUC. About 70-80% of the customers churn in any 14-day window, so
the churn class's PR-AUC sits near the prevalence for any score and moves with it from
window to window; ROC-AUC does not depend on the prevalence, and the PR-AUC of the
retained class (``pr_auc_retained``, the minority a retention campaign looks for) is
reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from ml.calibration import Calibrator, calibration_rows, fit_calibrator
from ml.customer_snapshots import (MOVES_WITH_SNAPSHOT_DATE, evaluation_windows, plus_days,
                                   production_windows, snapshot_at, snapshot_role)
from ml.drift import feature_drift
from ml.metrics import ProbabilityStatistics, RankStatistics
from ml.evaluation import Resampler, compare
from ml.ltv import (LTV_FEATURES, bgnbd_summary, choose_bgnbd_penalizer, fit_bgnbd_only,
                    p_no_purchase)
from ml.registry import Metric, TrainingRun, Window

__all__ = [
    "BASELINES", "CANDIDATES", "CHURN_FEATURES", "CLASSIFIER_PARAMS", "MONOTONE_CONSTRAINTS",
    "RISK_BANDS", "ChurnChoice",
    "bgnbd_baseline_fit", "bgnbd_no_purchase_baseline", "churn_metrics",
    "empty_churn_scores", "evaluate_churn",
    "fit_churn_classifier", "fit_churn_procedure", "out_of_fold_churn", "predict_churn",
    "recency_baseline", "risk_bands", "score_churn", "top_decile_lift", "top_reasons",
    "train_churn",
]

# The same snapshot columns as the CLV regressor: both read the customer snapshots.
CHURN_FEATURES = LTV_FEATURES

# Domain knowledge as monotone constraints: churn risk never falls with a longer absence
# (days since the last purchase or visit) and never rises with more recent activity.
# Whether they help is decided on the validation window (CANDIDATES).
MONOTONE_INCREASING = ("recency_days", "days_since_last_visit")
MONOTONE_DECREASING = tuple(name for name in CHURN_FEATURES if name.startswith(
    ("sessions_last_", "views_last_", "carts_last_", "active_days_last_")))
MONOTONE_CONSTRAINTS = "(" + ",".join(
    "1" if name in MONOTONE_INCREASING else "-1" if name in MONOTONE_DECREASING
    else "0" for name in CHURN_FEATURES) + ")"

# Fixed a priori (not tuned): 150 trees at rate 0.1, row and column subsampling.
CLASSIFIER_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic", "n_estimators": 150, "learning_rate": 0.1,
    "max_depth": 4, "min_child_weight": 5.0, "subsample": 0.8, "colsample_bytree": 0.8,
    "reg_lambda": 1.0, "tree_method": "hist", "n_jobs": 1,
}
# Chosen on the validation window by ROC-AUC, in this order (ties go to the first).
CANDIDATES: tuple[dict[str, Any], ...] = tuple(
    {"max_depth": depth, "monotone_constraints": constraints}
    for depth in (3, 5) for constraints in (MONOTONE_CONSTRAINTS, None))

# Risk bands by decile of churn probability among the scored customers (10 = highest):
# deciles 1-3 low, 4-7 medium, 8-10 high.
RISK_BANDS = ((3, "low"), (7, "medium"), (10, "high"))

BASELINES = ("recency_rule", "bgnbd_p_no_purchase")
# The calibration map is fitted on out-of-fold predictions of the train and validation
# windows. Platt (two parameters) rather than isotonic (dozens of steps): what is left
# after the map is the level's move to the next window, which steps fitted to the past
# windows' noise do not help with (module docstring).
CALIBRATION_FOLDS = 3
CALIBRATION_METHOD = "platt"
PRIMARY_METRIC = "roc_auc"
# Ranking metrics read the score, probability metrics the probability.
_RANKING = {"roc_auc": True, "pr_auc_retained": True, "pr_auc": True,
            "top_decile_lift": True}
_PROBABILITY = {"brier": False, "ece": False}


def top_decile_lift(y: np.ndarray, score: np.ndarray, share: float = 0.1) -> float:
    """Positive rate among the top `share` of scores over the overall positive rate.

    Ties at the boundary count with their mean positive rate (the expectation over every
    order of the ties), so integer scores such as days are not favoured by row order.
    """
    y = np.asarray(y, dtype=float)
    if y.size == 0 or y.mean() == 0:
        return float("nan")
    return RankStatistics(y, score).top_share_lift(np.arange(y.size), share)


def churn_metrics(y: np.ndarray, score: np.ndarray,
                  probability: np.ndarray | None = None) -> dict[str, float]:
    """roc_auc, pr_auc (average precision), top_decile_lift of `score` and the Brier
    score of `probability` (defaults to `score`, which must then be in [0, 1])."""
    y = np.asarray(y, dtype=int)
    probability = score if probability is None else probability
    return {
        "roc_auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
        "top_decile_lift": top_decile_lift(y, score),
        "brier": float(brier_score_loss(y, np.clip(probability, 0.0, 1.0))),
    }


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[list(CHURN_FEATURES)].astype(float)


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    """xgboost keyword arguments: a candidate without constraints drops the key."""
    return {key: value for key, value in params.items() if value is not None}


def fit_churn_classifier(frame: pd.DataFrame, seed: int,
                         params: Mapping[str, Any] | None = None) -> Any:
    """An xgboost classifier of is_churned on CHURN_FEATURES (labels must be complete)."""
    from xgboost import XGBClassifier

    model = XGBClassifier(**_params({**CLASSIFIER_PARAMS, **(params or {})}),
                          random_state=seed)
    model.fit(_features(frame), frame["is_churned"].astype(int))
    return model


def predict_churn(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The classifier's raw P(churn) of each row."""
    return model.predict_proba(_features(frame))[:, 1]


def _labels(frame: pd.DataFrame) -> np.ndarray:
    return frame["is_churned"].astype(int).to_numpy()


def recency_baseline(fitted_on: pd.DataFrame,
                     frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(score, probability) of the recency rule on `frame`: the score is days since the
    last purchase, the probability an isotonic map of it fitted on `fitted_on`'s labels
    (a window before `frame`'s)."""
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(fitted_on["recency_days"].astype(float), fitted_on["is_churned"].astype(float))
    score = frame["recency_days"].to_numpy(dtype=float)
    return score, iso.predict(score)


def bgnbd_no_purchase_baseline(frame: pd.DataFrame, penalizer: float) -> np.ndarray:
    """P(no purchase in the H days from the snapshot) of BG/NBD fitted on `frame`'s own
    purchase history (days; no label is read), with penalty weight `penalizer`
    (ml.clv.fit_bgnbd: on ln r, ln a, ln b). A degenerate fit falls back to the NBD
    (ml.ltv.fit_transactions); `bgnbd_baseline_fit` also says which was used."""
    return bgnbd_baseline_fit(frame, penalizer)[0]


def bgnbd_baseline_fit(frame: pd.DataFrame, penalizer: float) -> tuple[np.ndarray, str]:
    """(`bgnbd_no_purchase_baseline`'s probabilities, the fit's status: "ok" or
    "bg/nbd degenerate: <why> -> nbd")."""
    fit = fit_bgnbd_only(frame, penalizer)
    horizon = float(frame["horizon_days"].iloc[0])
    quiet = p_no_purchase(fit["bgnbd"], horizon, bgnbd_summary(frame))
    return quiet, str(fit["diagnostics"]["fit_status"])


def _choose_baseline_penalizer(validation: pd.DataFrame) -> tuple[float, dict]:
    y = _labels(validation)
    summary = bgnbd_summary(validation)
    horizon = float(validation["horizon_days"].iloc[0])

    def auc(params: dict[str, dict[str, float]]) -> float:
        quiet = p_no_purchase(params["bgnbd"], horizon, summary)
        return roc_auc_score(y, quiet) if np.unique(y).size == 2 else float("nan")

    penalizer, scores, _ = choose_bgnbd_penalizer(validation, auc, fit=fit_bgnbd_only)
    return penalizer, scores


def _label(candidate: Mapping[str, Any]) -> str:
    monotone = "monotone" if candidate.get("monotone_constraints") else "unconstrained"
    return f"depth {candidate['max_depth']}, {monotone}"


@dataclass
class ChurnChoice:
    """What `fit_churn_procedure` chose on a validation snapshot and fitted with it.

    `params` are the chosen classifier's, `candidate_scores` every candidate's validation
    ROC-AUC; `classifier` is refitted on the train and validation snapshots together,
    `calibrator` maps its raw probability to the published one; `validation_raw` holds
    the chosen candidate's raw validation probabilities (fitted on the train snapshot);
    `penalizer` is the BG/NBD baseline's, with `penalizer_scores`.
    """
    params: dict[str, Any]
    candidate_scores: dict[str, float | None]
    classifier: Any
    calibrator: Calibrator
    validation_raw: np.ndarray
    penalizer: float
    penalizer_scores: dict[str, float | None]

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(raw, calibrated) churn probabilities of `frame`'s rows."""
        raw = predict_churn(self.classifier, frame)
        return raw, self.calibrator.predict(raw)

    def summary(self) -> dict[str, Any]:
        return {"chosen": _label(self.params),
                "max_depth": self.params["max_depth"],
                "monotone_constraints": bool(self.params.get("monotone_constraints")),
                "candidate_validation_roc_auc": self.candidate_scores,
                "calibration": self.calibrator.method,
                "bgnbd_baseline_penalizer": self.penalizer,
                "bgnbd_baseline_penalizer_validation_roc_auc": self.penalizer_scores}


def fit_churn_procedure(train: pd.DataFrame, validation: pd.DataFrame, seed: int,
                        params: Mapping[str, Any] | None = None) -> ChurnChoice:
    """Choose the classifier on `validation`'s labels (candidates fitted on `train`),
    refit it on `train` and `validation` together and calibrate it on their labels
    (out of fold); choose the BG/NBD baseline's penalizer on `validation`. `params`
    override CLASSIFIER_PARAMS (e.g. n_jobs=1). Reads no other window."""
    y = _labels(validation)
    base = {**CLASSIFIER_PARAMS, **(params or {})}
    scores: dict[str, float | None] = {}
    best: tuple[dict[str, Any], float, np.ndarray] | None = None
    for candidate in CANDIDATES:
        raw = predict_churn(fit_churn_classifier(train, seed, {**base, **candidate}),
                            validation)
        value = roc_auc_score(y, raw) if np.unique(y).size == 2 else float("nan")
        scores[_label(candidate)] = value if np.isfinite(value) else None
        if best is None or (np.isfinite(value) and value > best[1]):
            best = (candidate, value if np.isfinite(value) else -np.inf, raw)
    chosen = {**base, **best[0]}
    # Both label windows: one window's level of churn does not carry into the next.
    both = pd.concat([train, validation], ignore_index=True)
    calibrator = fit_calibrator(_labels(both), out_of_fold_churn(both, seed, chosen),
                                method=CALIBRATION_METHOD)
    penalizer, penalizer_scores = _choose_baseline_penalizer(validation)
    return ChurnChoice(chosen, scores, fit_churn_classifier(both, seed, chosen),
                       calibrator, best[2], penalizer, penalizer_scores)


def out_of_fold_churn(frame: pd.DataFrame, seed: int, params: Mapping[str, Any],
                      folds: int = CALIBRATION_FOLDS) -> np.ndarray:
    """Raw P(churn) of each row of `frame` from a classifier (`params`) fitted on the
    other `folds` - 1 folds (stratified by the label, shuffled with `seed`; all rows of
    a user_id in one fold, since a customer appears in each snapshot of `frame`): what
    the model refitted on the whole frame predicts for customers it has not seen, which
    is what its calibration map must learn."""
    from sklearn.model_selection import StratifiedGroupKFold

    y = _labels(frame)
    raw = np.empty(len(frame))
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    for fit_rows, held_out in splitter.split(np.zeros(len(frame)), y, frame["user_id"]):
        model = fit_churn_classifier(frame.iloc[fit_rows], seed, params)
        raw[held_out] = predict_churn(model, frame.iloc[held_out])
    return raw


def _compare_churn(y: np.ndarray, score: np.ndarray,
                   probabilities: Mapping[str, np.ndarray],
                   baselines: Mapping[str, tuple[np.ndarray, np.ndarray]],
                   resampler: Resampler, split: str, cutoff: date | None) -> list[Metric]:
    """Every metric of the model beside every baseline on the same resamples: the
    ranking metrics of `score`, and for each (metric suffix -> model probability) of
    `probabilities` the Brier score and ECE; plus the churn prevalence."""
    model_ranks = RankStatistics(y, score)
    baseline_ranks = {name: RankStatistics(y, values[0])
                      for name, values in baselines.items()}
    rows: list[Metric] = []
    for metric, higher in _RANKING.items():
        rows += compare(metric, model_ranks.statistic(metric),
                        {name: ranks.statistic(metric)
                         for name, ranks in baseline_ranks.items()},
                        resampler, higher_is_better=higher,
                        is_primary=metric == PRIMARY_METRIC, split=split, cutoff=cutoff)
    baseline_probabilities = {name: ProbabilityStatistics(y, values[1])
                              for name, values in baselines.items()}
    for suffix, probability in probabilities.items():
        model_probability = ProbabilityStatistics(y, probability)
        for metric, higher in _PROBABILITY.items():
            rows += compare(metric + suffix, model_probability.statistic(metric),
                            {name: stats.statistic(metric)
                             for name, stats in baseline_probabilities.items()},
                            resampler, higher_is_better=higher, split=split, cutoff=cutoff)
    rows += compare("churn_prevalence", lambda rows_: float(np.mean(y[rows_])), {},
                    resampler, split=split, cutoff=cutoff)
    return rows


def _gain_importance(model: Any) -> dict[str, float]:
    gains = model.get_booster().get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    return {feature: gains.get(feature, 0.0) / total for feature in CHURN_FEATURES}


def train_churn(snapshots: pd.DataFrame, seed: int, n_bootstrap: int = 200,
                params: Mapping[str, Any] | None = None) -> TrainingRun:
    """The production run on int_customer_features_snapshots rows: the procedure with the
    train snapshot as t0 and the test snapshot (the latest complete labels) as t1.

    Metrics (split ``validation``, cutoff = the validation date): the chosen candidate
    (fitted on t0) on t1 beside both baselines, with intervals over `n_bootstrap`
    resamples of customers: roc_auc (primary), pr_auc_retained, pr_auc,
    top_decile_lift, brier_uncalibrated and ece_uncalibrated (the calibration map is
    fitted on these labels, so its own error here would be in-sample), churn_prevalence.
    These are the figures the choice was made on, so slightly optimistic; the unbiased
    ones are the evaluation's. The model stored is {"classifier", "calibrator",
    "features"}; drift compares t1's features with the score snapshot's. Raises
    InsufficientHistory on too short data.
    """
    windows = production_windows(snapshots)
    origin, horizon = windows.origin, windows.horizon_days
    train = snapshot_role(snapshots, "train")
    validation = snapshot_role(snapshots, "test")
    score = snapshot_role(snapshots, "score")
    choice = fit_churn_procedure(train, validation, seed, params)
    y = _labels(validation)
    quiet, baseline_fit_status = bgnbd_baseline_fit(validation, choice.penalizer)
    baselines = {"recency_rule": recency_baseline(train, validation),
                 "bgnbd_p_no_purchase": (quiet, quiet)}
    resampler = Resampler(len(validation), n_samples=n_bootstrap, seed=seed,
                          keys=validation["user_id"].to_numpy())
    metrics = _compare_churn(y, choice.validation_raw,
                             {"_uncalibrated": choice.validation_raw}, baselines,
                             resampler, "validation", origin.validation)
    return TrainingRun(
        model_name="churn",
        train_window=Window(windows.first_date, origin.train),
        label_window=Window(origin.validation, plus_days(origin.validation, horizon)),
        n_train=len(train) + len(validation), n_test=len(validation),
        params={**choice.params, **choice.summary(), "seed": seed, "horizon_days": horizon,
                "validation_date": str(origin.validation), "features": list(CHURN_FEATURES),
                "baselines": list(BASELINES), "primary_metric": PRIMARY_METRIC,
                "churn_rate_train": float(train["is_churned"].mean()),
                "churn_rate_validation": float(y.mean()),
                "bgnbd_baseline_fit_status": baseline_fit_status,
                "production_fit": "train and test snapshots (the two latest complete "
                                  "label windows), calibrated by the map fitted on "
                                  "their labels"},
        metrics=metrics,
        feature_importance=_gain_importance(choice.classifier),
        model={"classifier": choice.classifier, "calibrator": choice.calibrator,
               "features": list(CHURN_FEATURES)},
        drift=feature_drift(validation, score, CHURN_FEATURES,
                            moves_with_time=MOVES_WITH_SNAPSHOT_DATE),
        calibration=calibration_rows(y, choice.validation_raw, "uncalibrated",
                                     origin.validation, task="validation"),
    )


def evaluate_churn(snapshots: pd.DataFrame, seed: int, step_days: int, n_cutoffs: int,
                   n_bootstrap: int = 200,
                   params: Mapping[str, Any] | None = None) -> TrainingRun:
    """The rolling-origin evaluation on int_customer_features_evaluation_snapshots rows:
    at each of `n_cutoffs` test cutoffs c (`step_days` apart), `fit_churn_procedure` on
    the snapshots at c - 2H and c - H, then the published (calibrated) probabilities of
    the snapshot at c against its labels, beside both baselines (split ``test``, cutoff
    c, intervals over `n_bootstrap` resamples of the cutoff's customers).

    Metrics per cutoff: roc_auc (primary), pr_auc_retained, pr_auc, top_decile_lift (of
    the raw score, which the risk deciles rank by; the Platt map keeps its order), brier
    and ece (calibrated), brier_uncalibrated and ece_uncalibrated, churn_prevalence;
    reliability tables before and after calibration. One run, kind ``evaluation``.
    Raises InsufficientHistory on too short data.
    """
    origins = evaluation_windows(snapshots, step_days, n_cutoffs)
    horizon = origins[0].horizon_days
    metrics: list[Metric] = []
    calibration: list[dict[str, Any]] = []
    choices: dict[str, Any] = {}
    n_train = n_test = 0
    for i, origin in enumerate(origins):
        train = snapshot_at(snapshots, origin.train)
        validation = snapshot_at(snapshots, origin.validation)
        test = snapshot_at(snapshots, origin.test)
        choice = fit_churn_procedure(train, validation, seed, params)
        raw, calibrated = choice.predict(test)
        y = _labels(test)
        quiet, baseline_fit_status = bgnbd_baseline_fit(test, choice.penalizer)
        baselines = {"recency_rule": recency_baseline(validation, test),
                     "bgnbd_p_no_purchase": (quiet, quiet)}
        resampler = Resampler(len(test), n_samples=n_bootstrap, seed=seed + i,
                              keys=test["user_id"].to_numpy())
        metrics += _compare_churn(y, raw, {"": calibrated, "_uncalibrated": raw},
                                  baselines, resampler, "test", origin.test)
        for stage, probability in (("uncalibrated", raw), ("calibrated", calibrated)):
            calibration += calibration_rows(y, probability, stage, origin.test, task="test")
        choices[str(origin.test)] = {**choice.summary(),
                                     "bgnbd_baseline_fit_status": baseline_fit_status}
        n_train += len(train) + len(validation)
        n_test += len(test)
    first = pd.Timestamp(snapshots["first_purchase_date"].min()).date()
    return TrainingRun(
        model_name="churn",
        train_window=Window(first, origins[-1].validation),
        label_window=Window(origins[0].test, plus_days(origins[-1].test, horizon)),
        n_train=n_train, n_test=n_test,
        params={"horizon_days": horizon, "step_days": step_days, "n_cutoffs": n_cutoffs,
                "cutoffs": [str(o.test) for o in origins], "seed": seed,
                "bootstrap_samples": n_bootstrap, "resampled_unit": "customer",
                "baselines": list(BASELINES), "primary_metric": PRIMARY_METRIC,
                "origins": [{"train": str(o.train), "validation": str(o.validation),
                             "test": str(o.test)} for o in origins],
                "chosen_on_validation": choices},
        metrics=metrics, calibration=calibration, run_kind="evaluation",
    )


def risk_bands(probability: np.ndarray,
               bands: tuple[tuple[int, str], ...] = RISK_BANDS) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """(decile 1..10, band name) of each probability among all of them.

    Deciles are by rank (ties broken by position, so every decile has n/10 rows up to
    rounding); `bands` maps the highest decile of each band to its name.
    """
    probability = np.asarray(probability, dtype=float)
    n = probability.size
    if n == 0:
        return np.empty(0, dtype=int), np.empty(0, dtype=object)
    order = np.argsort(probability, kind="stable")
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)
    decile = rank * 10 // n + 1
    names = np.empty(n, dtype=object)
    lower = 0
    for upper, name in bands:
        names[(decile > lower) & (decile <= upper)] = name
        lower = upper
    return decile, names


def top_reasons(contributions: np.ndarray, features: list[str] | tuple[str, ...],
                k: int = 3) -> list[list[str | None]]:
    """The names of the (up to) k features with the largest positive contribution to each
    row's score, largest first; None where fewer than k features push the score up.

    `contributions` is (n, len(features)) or xgboost's (n, len(features) + 1) with the
    bias in the last column (ignored).
    """
    contributions = np.asarray(contributions, dtype=float)[:, :len(features)]
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    reasons = []
    for row, idx in zip(contributions, order):
        reasons.append([features[j] if row[j] > 0 else None for j in idx]
                       + [None] * (k - len(idx)))
    return reasons


# The scores' columns and types (an empty frame keeps them, so a skipped run still
# writes a typed table).
SCORE_SCHEMA = {
    "user_id": "int64", "as_of_date": pd.ArrowDtype(pa.date32()), "horizon_days": "int64",
    "churn_probability": "float64", "churn_probability_uncalibrated": "float64",
    "churn_risk_decile": "int64", "churn_risk_band": "string", "top_reason_1": "string",
    "top_reason_2": "string", "top_reason_3": "string", "reason_method": "string",
    "recency_days": "int64", "days_since_last_visit": "int64",
}
# How a row's reasons were computed (column reason_method).
EXACT_REASONS, APPROXIMATE_REASONS = "tree_shap", "saabas_approximation"
RUN_SCHEMA = {"run_id": "string", "is_model_below_baseline": "bool"}


def empty_churn_scores() -> pd.DataFrame:
    """The scores of a skipped run: no row, the columns and types of `score_churn` and
    ml.registry.with_run."""
    return pd.DataFrame({name: pd.Series([], dtype=dtype)
                         for name, dtype in {**SCORE_SCHEMA, **RUN_SCHEMA}.items()})


def score_churn(model: Mapping[str, Any], frame: pd.DataFrame,
                exact_reasons_top_n: int | None = None) -> pd.DataFrame:
    """One row per customer of `frame` (the score snapshot): the calibrated churn
    probability (and the raw one), risk decile and band (by the raw probability, whose
    order the calibration map keeps), and the three features pushing the
    score up most (contributions from xgboost's pred_contribs, on the log-odds scale).

    Exact TreeSHAP is the costly part (demo, 8,151 customers: 0.42 s exact, 0.08 s
    approximate), so it is kept for the customers a retention team contacts: the
    `exact_reasons_top_n` riskiest (None: everyone). The rest get xgboost's Saabas
    approximation (about 20 times faster; its top reason agrees with SHAP's for ~70% of
    the demo customers). Column reason_method says which a row has.
    """
    from xgboost import DMatrix

    classifier = model["classifier"]
    features = list(model["features"])
    matrix = frame[features].astype(float)
    raw = classifier.predict_proba(matrix)[:, 1]
    calibrator = model.get("calibrator")
    probability = calibrator.predict(raw) if calibrator is not None else raw
    n_exact = len(frame) if exact_reasons_top_n is None else min(
        max(int(exact_reasons_top_n), 0), len(frame))
    exact = np.zeros(len(frame), dtype=bool)
    exact[np.argsort(-raw, kind="stable")[:n_exact]] = True
    booster = classifier.get_booster()
    contributions = np.zeros((len(frame), len(features) + 1))
    for rows, approximate in ((exact, False), (~exact, True)):
        if rows.any():
            contributions[rows] = booster.predict(
                DMatrix(matrix[rows], feature_names=features), pred_contribs=True,
                approx_contribs=approximate)
    decile, band = risk_bands(raw)
    reasons = top_reasons(contributions, features)
    return pd.DataFrame({
        "user_id": frame["user_id"].to_numpy(),
        "as_of_date": pd.to_datetime(frame["snapshot_date"]).dt.date.to_numpy(),
        "horizon_days": frame["horizon_days"].astype(int).to_numpy(),
        "churn_probability": probability.astype(float),
        "churn_probability_uncalibrated": raw.astype(float),
        "churn_risk_decile": decile.astype(int),
        "churn_risk_band": band.astype(str),
        "top_reason_1": [r[0] for r in reasons],
        "top_reason_2": [r[1] for r in reasons],
        "top_reason_3": [r[2] for r in reasons],
        "reason_method": np.where(exact, EXACT_REASONS, APPROXIMATE_REASONS),
        "recency_days": frame["recency_days"].astype(int).to_numpy(),
        "days_since_last_visit": frame["days_since_last_visit"].astype(int).to_numpy(),
    }).astype(SCORE_SCHEMA)
