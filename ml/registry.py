"""The model registry: what every training run records about itself.

A dbt Python model that trains returns `run_record(...)`: a one-row frame with the run's
windows, row counts, parameters, library versions, metrics beside their baselines, feature
importances and the fitted model itself. The SQL models in models/ml/registry unpack these
rows from every training model into `ml_model_runs`, `ml_model_metrics` and
`ml_feature_importance`, so "how good is the churn model, versus what, on which window" is
one query. Scoring models load the fitted model back with `load_model`.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import pickle
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from importlib import metadata
from typing import Any, Mapping

import pandas as pd

# Libraries whose versions decide what a model computes.
TRACKED_LIBRARIES = ("duckdb", "numpy", "pandas", "scikit-learn", "scipy", "statsmodels",
                     "xgboost-cpu", "dbt-core", "dbt-duckdb")


@dataclass(frozen=True)
class Metric:
    """One evaluation figure of a run, beside the same figure for its baseline.

    `split` names the data it was measured on ("validation", "test"); `cutoff` is the
    test cutoff of a rolling-origin evaluation; `higher_is_better` says which direction
    wins; `is_primary` marks the metric the guardrail compares. The `*_ci_*` fields are
    bootstrap intervals (ml/evaluation.py) of the model's value, the baseline's and
    their difference (model minus baseline); `verdict()` reads the last.

    An undefined value (no positives, nothing estimable) is None with `undefined_reason`,
    never NaN: a NaN passed in becomes None with a generic reason.
    """
    metric: str
    value: float | None
    baseline: str | None = None
    baseline_value: float | None = None
    split: str = "test"
    higher_is_better: bool = True
    is_primary: bool = False
    cutoff: date | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    baseline_ci_low: float | None = None
    baseline_ci_high: float | None = None
    diff_ci_low: float | None = None
    diff_ci_high: float | None = None
    undefined_reason: str | None = None
    n_units: int | None = None

    def __post_init__(self) -> None:
        for name in ("value", "baseline_value", "ci_low", "ci_high", "baseline_ci_low",
                     "baseline_ci_high", "diff_ci_low", "diff_ci_high"):
            number = getattr(self, name)
            if number is not None and not math.isfinite(float(number)):
                object.__setattr__(self, name, None)
                if name in ("value", "baseline_value") and self.undefined_reason is None:
                    object.__setattr__(self, "undefined_reason",
                                       f"{name} undefined on this data")

    def beats_baseline(self) -> bool | None:
        """The point comparison: True when the model is at least as good as its
        baseline; None without a baseline or with an undefined value."""
        if self.baseline_value is None or self.value is None:
            return None
        if self.higher_is_better:
            return self.value >= self.baseline_value
        return self.value <= self.baseline_value

    def verdict(self) -> str | None:
        """better / worse / inconclusive from the interval of the difference; None
        without one (no baseline, undefined, or no interval computed)."""
        return verdict(self.diff_ci_low, self.diff_ci_high, self.higher_is_better)


def verdict(diff_low: float | None, diff_high: float | None,
            higher_is_better: bool = True) -> str | None:
    """``better`` when the interval of model minus baseline lies above 0 (in the metric's
    good direction), ``worse`` when it lies below, else ``inconclusive``; None without an
    interval."""
    if diff_low is None or diff_high is None:
        return None
    if not higher_is_better:
        diff_low, diff_high = -diff_high, -diff_low
    if diff_low > 0:
        return "better"
    if diff_high < 0:
        return "worse"
    return "inconclusive"


@dataclass(frozen=True)
class Window:
    """A half-open time window [start, end) in UTC dates."""
    start: date | None
    end: date | None


# Registry statuses of a run. A skipped run has no model; its scoring models write
# empty tables and ml.report says why.
TRAINED = "trained"
SKIPPED_INSUFFICIENT_HISTORY = "skipped_insufficient_history"
# What a run is for: `production` trains once on the latest window and scores;
# `evaluation` replays the procedure on earlier test cutoffs (dbt selector `evaluate`).
RUN_KINDS = ("production", "evaluation")


@dataclass
class TrainingRun:
    """Everything a training run reports. Build it while training, then `to_frame()`.

    `drift` holds one {"feature", "psi", ...} row per feature (ml/drift.py) and
    `calibration` the reliability-table rows (ml/calibration.py).
    """
    model_name: str
    train_window: Window
    label_window: Window
    n_train: int
    n_test: int
    params: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    feature_importance: dict[str, float] = field(default_factory=dict)
    model: Any = None
    run_kind: str = "production"
    status: str = TRAINED
    status_reason: str | None = None
    drift: list[dict[str, Any]] = field(default_factory=list)
    calibration: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.run_kind not in RUN_KINDS:
            raise ValueError(f"run_kind must be one of {RUN_KINDS}, not {self.run_kind!r}")

    def primary_metrics(self) -> list[Metric]:
        return [m for m in self.metrics if m.is_primary]

    def is_below_baseline(self) -> bool:
        """The guardrail: a primary metric whose interval says the model is worse than
        its baseline. An inconclusive or undefined comparison is not a failure."""
        return any(m.verdict() == "worse" for m in self.primary_metrics())

    def run_id(self, trained_at: datetime) -> str:
        key = json.dumps([self.model_name, self.run_kind, trained_at.isoformat(),
                          self.params], sort_keys=True, default=str)
        return hashlib.md5(key.encode()).hexdigest()

    def to_frame(self, trained_at: datetime | None = None) -> pd.DataFrame:
        """The one-row registry record (JSON columns hold the nested parts)."""
        trained_at = trained_at or datetime.now(timezone.utc).replace(tzinfo=None)
        return pd.DataFrame([{
            "run_id": self.run_id(trained_at),
            "model_name": self.model_name,
            "run_kind": self.run_kind,
            "status": self.status,
            "status_reason": self.status_reason,
            "trained_at": trained_at,
            "train_start": _as_timestamp(self.train_window.start),
            "train_end": _as_timestamp(self.train_window.end),
            "label_start": _as_timestamp(self.label_window.start),
            "label_end": _as_timestamp(self.label_window.end),
            "n_train": int(self.n_train),
            "n_test": int(self.n_test),
            "params_json": json.dumps(self.params, sort_keys=True, default=str),
            "library_versions_json": json.dumps(library_versions(), sort_keys=True),
            "metrics_json": json.dumps([_metric_row(m) for m in self.metrics]),
            "feature_importance_json": json.dumps(
                [{"feature": k, "importance": _stable(v)}
                 for k, v in sorted(self.feature_importance.items(),
                                    key=lambda item: -item[1])]),
            "drift_json": json.dumps(_json_rows(self.drift)),
            "calibration_json": json.dumps(_json_rows(self.calibration)),
            "is_below_baseline": self.is_below_baseline(),
            "model_artifact": dump_model(self.model) if self.model is not None else None,
        }])


def skipped_run(model_name: str, reason: str, params: Mapping[str, Any] | None = None,
                run_kind: str = "production") -> TrainingRun:
    """The registry record of a model that could not train on these data: status
    ``skipped_insufficient_history`` and the exact need in `reason` (e.g. "needs 67 days
    of history, has 30"). No model, no metrics."""
    return TrainingRun(model_name=model_name, train_window=Window(None, None),
                       label_window=Window(None, None), n_train=0, n_test=0,
                       params=dict(params or {}), run_kind=run_kind,
                       status=SKIPPED_INSUFFICIENT_HISTORY, status_reason=reason)


def is_trained(record: Mapping[str, Any]) -> bool:
    """Whether a registry record holds a fitted model (older records have no status)."""
    return str(record.get("status") or TRAINED) == TRAINED


def _metric_row(metric: Metric) -> dict[str, Any]:
    row = asdict(metric)
    for name in ("value", "baseline_value", "ci_low", "ci_high", "baseline_ci_low",
                 "baseline_ci_high", "diff_ci_low", "diff_ci_high"):
        row[name] = None if row[name] is None else _stable(row[name])
    row["cutoff"] = None if metric.cutoff is None else str(metric.cutoff)
    row["beats_baseline"] = metric.beats_baseline()
    row["verdict"] = metric.verdict()
    return row


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for a JSON column: floats rounded as `_stable`, NaN as null, dates as text."""
    clean = []
    for row in rows:
        out = {}
        for key, value in row.items():
            if isinstance(value, float):
                value = _stable(value) if math.isfinite(value) else None
            elif isinstance(value, (date, datetime)):
                value = str(value)
            elif hasattr(value, "item"):  # numpy scalars
                value = value.item()
                if isinstance(value, float):
                    value = _stable(value) if math.isfinite(value) else None
            out[key] = value
        clean.append(out)
    return clean


def _stable(value: float) -> float:
    """A figure rounded to 9 decimals: parallel sums upstream may differ in their last
    bits between two builds, and the same data must give the same record."""
    return round(float(value), 9)


def _as_timestamp(value: date | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries in TRACKED_LIBRARIES (missing ones omitted)."""
    versions = {}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def dump_model(model: Any) -> str:
    """A fitted model as base64 text, storable in a VARCHAR column."""
    return base64.b64encode(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)).decode()


def load_model(artifact: str) -> Any:
    """The model `dump_model` stored. Only load artifacts this warehouse wrote."""
    return pickle.loads(base64.b64decode(artifact))


def latest_record(runs: pd.DataFrame) -> pd.Series:
    """The most recent row of a training model's output (normally its only row)."""
    if runs.empty:
        raise ValueError("the training model holds no run")
    return runs.sort_values("trained_at").iloc[-1]


def run_of(runs: pd.DataFrame, model_name: str) -> pd.Series:
    """The latest record of `model_name` in a training model's output that holds the runs
    of several models."""
    rows = runs[runs["model_name"] == model_name]
    if "run_kind" in rows:
        rows = rows[rows["run_kind"].fillna("production") == "production"]
    if rows.empty:
        raise ValueError(f"the training model holds no run of {model_name!r}")
    return latest_record(rows)


def with_run(scores: pd.DataFrame, record: Mapping[str, Any],
             prefix: str = "") -> pd.DataFrame:
    """`scores` with the run_id and guardrail flag of the training run they come from,
    as `{prefix}run_id` and `is_{prefix or 'model_'}below_baseline`."""
    flag = f"is_{prefix or 'model_'}below_baseline"
    return scores.assign(**{f"{prefix}run_id": str(record["run_id"]),
                            flag: bool(record["is_below_baseline"])})


def run_columns_sql(record: Mapping[str, Any]) -> tuple[str, str]:
    """`with_run`'s two columns as SQL select items (run_id, is_model_below_baseline), for
    a model that returns a DuckDB relation: constants in the query, rather than one
    Python string per row."""
    run_id = str(record["run_id"]).replace("'", "''")
    flag = "true" if bool(record["is_below_baseline"]) else "false"
    return f"'{run_id}' as run_id", f"{flag} as is_model_below_baseline"
