"""Calibration of predicted probabilities: reliability tables, ECE, Brier, and the
post-hoc map fitted on the validation window.

A retention team reads "0.8" as "eight in ten of these customers churn". A classifier's raw
probability need not mean that, so churn and propensity publish calibrated probabilities:
an isotonic (or Platt) map fitted on validation labels only, applied to everything after.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

__all__ = ["CALIBRATION_BINS", "Calibrator", "brier_score", "expected_calibration_error",
           "calibration_rows", "fit_calibrator", "reliability_table"]

CALIBRATION_BINS = 10


def _clean(y: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    probability = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    if y.shape != probability.shape:
        raise ValueError("labels and probabilities differ in length")
    if y.size == 0:
        raise ValueError("no rows")
    return y, probability


def _bin_of(probability: np.ndarray, bins: int) -> np.ndarray:
    # Equal-width bins on [0, 1]; 1.0 falls in the last bin.
    return np.minimum((probability * bins).astype(int), bins - 1)


def reliability_table(y: np.ndarray, probability: np.ndarray,
                      bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """One row per non-empty equal-width bin: bin (1..bins), its bounds, n, the mean
    predicted probability and the observed positive rate."""
    y, probability = _clean(y, probability)
    which = _bin_of(probability, bins)
    rows = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        if n == 0:
            continue
        rows.append({"bin": b + 1, "lower": b / bins, "upper": (b + 1) / bins, "n": n,
                     "mean_predicted": float(probability[inside].mean()),
                     "observed_rate": float(y[inside].mean())})
    return rows


def expected_calibration_error(y: np.ndarray, probability: np.ndarray,
                               bins: int = CALIBRATION_BINS) -> float:
    """ECE: the row-weighted mean of |observed rate - mean predicted| over equal-width
    bins (Naeini et al. 2015), in probability points (0.02 = 2 points)."""
    y, probability = _clean(y, probability)
    table = reliability_table(y, probability, bins)
    return float(sum(r["n"] * abs(r["observed_rate"] - r["mean_predicted"])
                     for r in table) / y.size)


def brier_score(y: np.ndarray, probability: np.ndarray) -> float:
    """Mean squared error of the probability against the 0/1 label."""
    y, probability = _clean(y, probability)
    return float(np.mean((probability - y) ** 2))


@dataclass
class Calibrator:
    """A fitted map from raw to calibrated probability (`method`: isotonic or platt)."""
    method: str
    model: Any

    def predict(self, probability: np.ndarray) -> np.ndarray:
        probability = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
        if self.method == "isotonic":
            return np.clip(self.model.predict(probability), 0.0, 1.0)
        return self.model.predict_proba(_logit(probability)[:, None])[:, 1]


def _logit(probability: np.ndarray) -> np.ndarray:
    p = np.clip(probability, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_calibrator(y: np.ndarray, probability: np.ndarray,
                   method: str = "isotonic") -> Calibrator:
    """Fit the map on validation labels and the model's raw validation probabilities.

    Isotonic needs a few hundred rows of each class to be smooth; Platt (a logistic map of
    the log-odds) is the choice for small validation windows.
    """
    y, probability = _clean(y, probability)
    if np.unique(y).size < 2:
        raise ValueError("calibration needs both classes in the validation window")
    if method == "isotonic":
        model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        model.fit(probability, y)
    elif method == "platt":
        model = LogisticRegression(C=1e6).fit(_logit(probability)[:, None], y.astype(int))
    else:
        raise ValueError(f"unknown calibration method {method!r}")
    return Calibrator(method, model)


def calibration_rows(y: np.ndarray, probability: np.ndarray, stage: str,
                     cutoff: date | None = None, task: str | None = None,
                     bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """Reliability-table rows for the registry (`TrainingRun.calibration`), tagged with
    the `stage` ("uncalibrated" or "calibrated"), test `cutoff` and `task`."""
    return [{"task": task, "cutoff": None if cutoff is None else str(cutoff),
             "stage": stage, **row} for row in reliability_table(y, probability, bins)]
