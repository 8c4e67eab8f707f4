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

    `split` names the data it was measured on (e.g. "test"); `higher_is_better` says
    which direction wins; `is_primary` marks the metric the guardrail compares.
    """
    metric: str
    value: float
    baseline: str | None = None
    baseline_value: float | None = None
    split: str = "test"
    higher_is_better: bool = True
    is_primary: bool = False

    def beats_baseline(self) -> bool | None:
        """True when the model is at least as good as its baseline; None without one."""
        if self.baseline_value is None:
            return None
        if self.higher_is_better:
            return self.value >= self.baseline_value
        return self.value <= self.baseline_value


@dataclass(frozen=True)
class Window:
    """A half-open time window [start, end) in UTC dates."""
    start: date | None
    end: date | None


@dataclass
class TrainingRun:
    """Everything a training run reports. Build it while training, then `to_frame()`."""
    model_name: str
    train_window: Window
    label_window: Window
    n_train: int
    n_test: int
    params: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    feature_importance: dict[str, float] = field(default_factory=dict)
    model: Any = None

    def primary_metrics(self) -> list[Metric]:
        return [m for m in self.metrics if m.is_primary]

    def is_below_baseline(self) -> bool:
        """The guardrail: any primary metric worse than its baseline."""
        return any(m.beats_baseline() is False for m in self.primary_metrics())

    def run_id(self, trained_at: datetime) -> str:
        key = json.dumps([self.model_name, trained_at.isoformat(), self.params],
                         sort_keys=True, default=str)
        return hashlib.md5(key.encode()).hexdigest()

    def to_frame(self, trained_at: datetime | None = None) -> pd.DataFrame:
        """The one-row registry record (JSON columns hold the nested parts)."""
        trained_at = trained_at or datetime.now(timezone.utc).replace(tzinfo=None)
        return pd.DataFrame([{
            "run_id": self.run_id(trained_at),
            "model_name": self.model_name,
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
            "is_below_baseline": self.is_below_baseline(),
            "model_artifact": dump_model(self.model) if self.model is not None else None,
        }])


def _metric_row(metric: Metric) -> dict[str, Any]:
    row = asdict(metric)
    row["value"] = _stable(metric.value)
    row["baseline_value"] = (None if metric.baseline_value is None
                             else _stable(metric.baseline_value))
    row["beats_baseline"] = metric.beats_baseline()
    return row


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
