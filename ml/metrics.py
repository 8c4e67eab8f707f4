"""Metrics of a score on bootstrap resamples, without a sort per resample.

A resample (ml.evaluation.Resampler) is an array of row indices, repeats allowed; a row
drawn k times weighs k. These classes sort or bin a score once, so every statistic of a
resample costs a few bincounts. Each equals its scikit-learn (or ml.calibration)
counterpart on ``y[rows], score[rows]`` and raises ValueError where that is undefined, so
`ml.evaluation.compare` records the reason.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ml.calibration import CALIBRATION_BINS

__all__ = ["ProbabilityStatistics", "RankStatistics"]


class RankStatistics:
    """Rank metrics of one score against 0/1 labels on bootstrap resamples.

    A resample is an array of row indices (repeats allowed); a row drawn k times weighs
    k. The distinct score values are found once, so each statistic costs a few bincounts
    per resample instead of a sort. Tied scores count as one threshold, as in
    scikit-learn. Each statistic equals its scikit-learn counterpart on
    ``y[rows], score[rows]`` and raises ValueError where that is undefined.
    """

    def __init__(self, y: np.ndarray, score: np.ndarray) -> None:
        self.y = np.asarray(y, dtype=float)
        levels, codes = np.unique(np.asarray(score, dtype=float), return_inverse=True)
        self.codes, self.n_levels, self.n = codes.ravel(), levels.size, self.y.size

    def _by_level(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positives, negatives) per score level, ascending."""
        weight = np.bincount(rows, minlength=self.n).astype(float)
        total = np.bincount(self.codes, weights=weight, minlength=self.n_levels)
        positive = np.bincount(self.codes, weights=weight * self.y,
                               minlength=self.n_levels)
        return positive, total - positive

    def roc_auc(self, rows: np.ndarray) -> float:
        positive, negative = self._by_level(rows)
        n_pos, n_neg = positive.sum(), negative.sum()
        if n_pos == 0 or n_neg == 0:
            raise ValueError("ROC-AUC is undefined with one class among these customers")
        below = np.cumsum(negative) - negative
        return float(np.sum(positive * (below + 0.5 * negative)) / (n_pos * n_neg))

    def average_precision(self, rows: np.ndarray, positive_class: int = 1) -> float:
        """Average precision of the class `positive_class`: for class 1 the highest
        scores come first, for class 0 the lowest."""
        positive, negative = self._by_level(rows)
        if positive_class == 1:
            positive, negative = positive[::-1], negative[::-1]
        else:
            positive, negative = negative, positive
        n_pos = positive.sum()
        if n_pos == 0:
            raise ValueError("average precision is undefined without a customer of the "
                             "class")
        hits = np.cumsum(positive)
        taken = hits + np.cumsum(negative)
        precision = np.divide(hits, taken, out=np.zeros_like(hits), where=taken > 0)
        return float(np.sum(positive * precision) / n_pos)

    def top_share_lift(self, rows: np.ndarray, share: float = 0.1) -> float:
        """Positive rate in the top `share` of scores over the overall rate; the
        boundary level counts with its mean rate."""
        positive, negative = self._by_level(rows)
        positive, total = positive[::-1], (positive + negative)[::-1]
        n, n_pos = total.sum(), positive.sum()
        if n_pos == 0:
            raise ValueError("lift is undefined without a positive among these customers")
        k = max(1.0, float(np.ceil(share * n)))
        before = np.cumsum(total) - total
        used = np.clip(k - before, 0.0, total)
        hits = np.sum(np.divide(positive * used, total, out=np.zeros_like(used),
                                where=total > 0))
        return float((hits / k) / (n_pos / n))

    def statistic(self, metric: str) -> Callable[[np.ndarray], float]:
        return {"roc_auc": self.roc_auc,
                "pr_auc": self.average_precision,
                "pr_auc_retained": lambda rows: self.average_precision(rows, 0),
                "top_decile_lift": self.top_share_lift}[metric]


class ProbabilityStatistics:
    """The Brier score and the expected calibration error (ml.calibration: 10 equal-width
    bins) of one probability on bootstrap resamples (row indices, repeats weigh), from
    per-bin weighted sums; each equals its ml.calibration counterpart on
    ``y[rows], probability[rows]``."""

    def __init__(self, y: np.ndarray, probability: np.ndarray) -> None:
        self.y = np.asarray(y, dtype=float)
        self.p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
        self.bins = np.minimum((self.p * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
        self.squared = (self.p - self.y) ** 2
        self.gap = self.y - self.p

    def brier(self, rows: np.ndarray) -> float:
        return float(np.mean(self.squared[rows]))

    def ece(self, rows: np.ndarray) -> float:
        weight = np.bincount(rows, minlength=self.y.size).astype(float)
        gaps = np.bincount(self.bins, weights=weight * self.gap, minlength=CALIBRATION_BINS)
        return float(np.abs(gaps).sum() / weight.sum())

    def statistic(self, metric: str) -> Callable[[np.ndarray], float]:
        return {"brier": self.brier, "ece": self.ece}[metric]
