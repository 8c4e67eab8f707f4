"""The evaluation protocol every model follows (docs/evaluation.md).

Windows by time. A model's labels end before the data that judge it begin:

    train labels  <  validation labels  <  test cutoff 1 < test cutoff 2 < test cutoff 3

Everything a model chooses (hyper-parameters, weights, thresholds, k, which model) is chosen
on the validation window. The test windows are read once, for the reported figures, on
several successive cutoffs (`rolling_cutoffs`). Production replays the same procedure at the
last date: tune on the latest complete validation window, refit, score.

Uncertainty. Every reported figure comes with a paired bootstrap interval, resampling the
units the metric averages over (customers, sessions, users; blocks of days for a time
series): the same resample scores the model and each baseline, so the interval of their
difference is narrow where they agree row by row. `verdict` reads that interval:
``better`` when its lower bound is above 0 (in the metric's good direction), ``worse`` when
its upper bound is below 0, else ``inconclusive``.

Undefined metrics (no positives, one class, no estimable row) are None with a reason,
never NaN, and never count as a failing model.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable, Mapping, Sequence

import numpy as np

from ml.registry import Metric, TrainingRun, skipped_run, verdict

__all__ = [
    "BOOTSTRAP_SAMPLES", "INTERVAL_LEVEL", "InsufficientHistory", "Origin", "Resampler",
    "as_flag", "compare", "defined", "evaluation_origins", "production_origin",
    "require_history", "rolling_cutoffs", "train_or_skip", "verdict",
]

# 200 paired resamples: percentile intervals at 95% move by about 0.005 AUC between seeds
# on 5k customers, well below the margins the verdicts separate.
BOOTSTRAP_SAMPLES = 200
INTERVAL_LEVEL = 0.95
# A resampled statistic may be undefined (a resample without positives). Above this share
# of undefined resamples the interval itself is undefined.
MAX_UNDEFINED_SHARE = 0.1


class InsufficientHistory(Exception):
    """The data are too short for a model: `need` and `have` in days (or units named by
    `unit`). Training models turn it into a registry row with status
    ``skipped_insufficient_history`` unless var ``ml_strict`` is true."""

    def __init__(self, need: float, have: float, unit: str = "days of history",
                 detail: str = "") -> None:
        self.need, self.have, self.unit, self.detail = need, have, unit, detail
        message = f"needs {_number(need)} {unit}, has {_number(have)}"
        super().__init__(f"{message} ({detail})" if detail else message)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def train_or_skip(model_name: str, train: Callable[[], TrainingRun], strict: bool = False,
                  run_kind: str = "production") -> TrainingRun:
    """`train()`, or the registry record of a skipped run when it raises
    InsufficientHistory; with `strict` (var ml_strict) the shortage is an error."""
    try:
        return train()
    except InsufficientHistory as shortage:
        if strict:
            raise RuntimeError(f"{model_name}: {shortage}; var ml_strict is true, so a "
                               "model that cannot train fails the build") from shortage
        return skipped_run(model_name, str(shortage), run_kind=run_kind)


def as_flag(value: object) -> bool:
    """A dbt var or config rendered to Python: True, "true", "True", 1 -> True."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def require_history(need: float, have: float, unit: str = "days of history",
                    detail: str = "") -> None:
    """Raise InsufficientHistory when `have` < `need`."""
    if have < need:
        raise InsufficientHistory(need, have, unit, detail)


# --- windows -------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """One replay of a model's procedure: fit on labels in [train, train + H), choose on
    labels in [validation, validation + H), judge on labels from `test` on.

    `test` is None for the production origin (it scores instead of being judged).
    The label windows never overlap: train + H <= validation, validation + H <= test.
    """
    train: date
    validation: date
    test: date | None
    horizon_days: int

    def __post_init__(self) -> None:
        horizon = timedelta(days=self.horizon_days)
        if self.train + horizon > self.validation:
            raise ValueError(f"train labels [{self.train}, {self.train + horizon}) reach "
                             f"into validation from {self.validation}")
        if self.test is not None and self.validation + horizon > self.test:
            raise ValueError(f"validation labels end {self.validation + horizon}, after "
                             f"the test cutoff {self.test}")


def rolling_cutoffs(last_label_date: date, horizon_days: int, step_days: int,
                    n_cutoffs: int) -> list[date]:
    """`n_cutoffs` successive test cutoffs, `step_days` apart, the last one's label window
    [cutoff, cutoff + H) ending at `last_label_date` (exclusive). Oldest first."""
    if n_cutoffs < 1 or step_days < 1 or horizon_days < 1:
        raise ValueError("n_cutoffs, step_days and horizon_days must be positive")
    last = last_label_date - timedelta(days=horizon_days)
    return [last - timedelta(days=step_days * (n_cutoffs - 1 - i)) for i in range(n_cutoffs)]


def evaluation_origins(first_date: date, last_label_date: date, horizon_days: int,
                       step_days: int, n_cutoffs: int, min_history_days: int) -> list[Origin]:
    """The rolling-origin replays: one Origin per test cutoff, each with its own train and
    validation windows just before it (train = cutoff - 2H, validation = cutoff - H).

    Raises InsufficientHistory when the first train window would have fewer than
    `min_history_days` of features before it.
    """
    cutoffs = rolling_cutoffs(last_label_date, horizon_days, step_days, n_cutoffs)
    horizon = timedelta(days=horizon_days)
    origins = [Origin(c - 2 * horizon, c - horizon, c, horizon_days) for c in cutoffs]
    need = min_history_days + 2 * horizon_days + step_days * (n_cutoffs - 1) + horizon_days
    have = (last_label_date - first_date).days
    require_history(need, have, detail=(
        f"{min_history_days} days of features, then train, validation and {n_cutoffs} test "
        f"cutoffs {step_days} days apart with {horizon_days}-day labels"))
    return origins


def production_origin(first_date: date, last_date: date, horizon_days: int,
                      min_history_days: int) -> Origin:
    """The production replay: choose on the latest complete label window
    [last - H, last), trained on the one before it; the chosen model is then refitted on
    the latest window and scores as of `last_date`."""
    horizon = timedelta(days=horizon_days)
    need = min_history_days + 2 * horizon_days
    require_history(need, (last_date - first_date).days, detail=(
        f"{min_history_days} days of features, then train and validation windows of "
        f"{horizon_days} days"))
    return Origin(last_date - 2 * horizon, last_date - horizon, None, horizon_days)


# --- intervals and verdicts ----------------------------------------------------------


def defined(statistic: Callable[..., float], *args, **kwargs) -> tuple[float | None,
                                                                       str | None]:
    """(value, None) when `statistic` gives a finite number, else (None, reason).

    A statistic signals "undefined" by raising ValueError (its message is the reason) or
    by returning NaN/inf, as scikit-learn's metrics do with a warning (e.g. ROC-AUC with
    one class), whose message is then the reason.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(statistic(*args, **kwargs))
        except (ValueError, ZeroDivisionError) as error:
            return None, str(error) or type(error).__name__
    if not math.isfinite(value):
        said = [str(w.message) for w in caught]
        return None, said[-1] if said else "undefined on this data (not a finite number)"
    return value, None


class Resampler:
    """Bootstrap resamples of row indices: of rows, of clusters of rows (every row of a
    drawn customer comes along), or of moving blocks of consecutive rows (time series,
    rows in time order).

    All resamples are drawn up front from one seed, so the model and every baseline are
    judged on exactly the same resamples. Warehouse reads return rows in no fixed order:
    pass the rows' unit ids as `keys` (or `clusters`) and the resamples draw the same
    units whatever the order, so the same data give the same intervals.
    """

    def __init__(self, n_rows: int, n_samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                 clusters: Sequence | np.ndarray | None = None,
                 block_length: int | None = None,
                 keys: Sequence | np.ndarray | None = None) -> None:
        if clusters is not None and block_length is not None:
            raise ValueError("resample by clusters or by blocks, not both")
        if keys is not None and clusters is None:
            keys = np.asarray(keys)
            if len(np.unique(keys.astype(str) if keys.dtype == object else keys)) != len(keys):
                raise ValueError("keys must be unique per row; use clusters for groups")
            clusters = keys
        self.n_rows = int(n_rows)
        self.n_samples = int(n_samples)
        rng = np.random.default_rng(seed)
        self.samples: list[np.ndarray] = []
        if self.n_rows == 0:
            return
        if clusters is not None:
            codes, _ = _factorize(np.asarray(clusters))
            # rows grouped by cluster: cluster c holds order[starts[c]:starts[c] + sizes[c]]
            order = np.argsort(codes, kind="stable")
            sizes = np.bincount(codes)
            starts = np.cumsum(sizes) - sizes
            n_clusters = sizes.size
            for _ in range(self.n_samples):
                drawn = rng.integers(0, n_clusters, n_clusters)
                # the drawn clusters' rows, concatenated, without a Python loop
                drawn_sizes = sizes[drawn]
                out_starts = np.cumsum(drawn_sizes) - drawn_sizes
                shift = np.repeat(starts[drawn] - out_starts, drawn_sizes)
                self.samples.append(order[np.arange(drawn_sizes.sum()) + shift])
        elif block_length is not None:
            length = max(1, min(int(block_length), self.n_rows))
            n_blocks = math.ceil(self.n_rows / length)
            starts_max = self.n_rows - length + 1
            for _ in range(self.n_samples):
                starts = rng.integers(0, starts_max, n_blocks)
                rows = (starts[:, None] + np.arange(length)[None, :]).ravel()
                self.samples.append(rows[: self.n_rows])
        else:
            for _ in range(self.n_samples):
                self.samples.append(rng.integers(0, self.n_rows, self.n_rows))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(values.astype(str) if values.dtype == object else values,
                               return_inverse=True)
    return codes.ravel(), uniques


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


Statistic = Callable[[np.ndarray], float]


def compare(metric: str, model: Statistic, baselines: Mapping[str, Statistic | None],
            resampler: Resampler, *, higher_is_better: bool = True,
            is_primary: bool = False, split: str = "test", cutoff: date | None = None,
            level: float = INTERVAL_LEVEL) -> list[Metric]:
    """One Metric per baseline (or one without a baseline when `baselines` is empty):
    the model's value and the baseline's on all rows, each with its bootstrap interval,
    the interval of model minus baseline, and the verdict.

    `model` and each baseline map an index array of rows to the statistic on those rows
    (e.g. ``lambda rows: roc_auc_score(y[rows], p[rows])``); a baseline of None is one
    that cannot be computed here. A statistic may be undefined (see `defined`): on all
    rows that makes the metric None with the reason; in more than 10% of resamples it
    leaves the interval undefined.
    """
    everything = np.arange(resampler.n_rows)
    value, reason = (defined(model, everything) if resampler.n_rows
                     else (None, "no rows to evaluate"))
    model_draws = _draws(model, resampler) if value is not None else None
    model_ci = _ci(model_draws, level)
    rows: list[Metric] = []
    for name, baseline in (baselines.items() if baselines else [(None, None)]):
        base_value = base_reason = None
        base_ci = diff_ci = (None, None)
        if name is not None and baseline is None:
            base_reason = "baseline not available on this data"
        elif baseline is not None:
            base_value, base_reason = (defined(baseline, everything) if resampler.n_rows
                                       else (None, "no rows to evaluate"))
            if base_value is not None:
                base_draws = _draws(baseline, resampler)
                base_ci = _ci(base_draws, level)
                if model_draws is not None:
                    diff_ci = _ci(_paired_difference(model_draws, base_draws), level)
        rows.append(Metric(
            metric=metric, value=value, baseline=name, baseline_value=base_value,
            split=split, higher_is_better=higher_is_better, is_primary=is_primary,
            cutoff=cutoff, ci_low=model_ci[0], ci_high=model_ci[1],
            baseline_ci_low=base_ci[0], baseline_ci_high=base_ci[1],
            diff_ci_low=diff_ci[0], diff_ci_high=diff_ci[1],
            undefined_reason=reason or (f"baseline: {base_reason}" if base_reason else None),
            n_units=resampler.n_rows))
    return rows


def _draws(statistic: Statistic, resampler: Resampler) -> np.ndarray:
    """The statistic on every resample; NaN where it is undefined."""
    return np.array([defined(statistic, rows)[0] if len(rows) else None
                     for rows in resampler.samples], dtype=float)


def _paired_difference(model: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    return model - baseline


def _ci(draws: np.ndarray | None, level: float) -> tuple[float | None, float | None]:
    if draws is None or draws.size == 0:
        return None, None
    finite = draws[np.isfinite(draws)]
    if finite.size < (1.0 - MAX_UNDEFINED_SHARE) * draws.size:
        return None, None
    return _interval(finite, level)
