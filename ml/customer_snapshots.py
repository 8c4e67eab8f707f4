"""Customer snapshots and their windows, shared by the churn and CLV models.

Rows come from `int_customer_features_snapshots` (production: roles ``train`` = cutoff -
H, ``test`` = cutoff, ``score`` = the day after the last event date) or
`int_customer_features_evaluation_snapshots` (role ``evaluation``: the train, validation
and test dates of every rolling-origin cutoff). Features come from the days strictly
before `snapshot_date`, labels from [snapshot_date, snapshot_date + H).

In the protocol's words (docs/evaluation.md, ml.evaluation.Origin), a model tuned at an
origin is fitted on the snapshot at `origin.train` (labels end at `origin.validation`),
chooses on the snapshot at `origin.validation` (labels end at `origin.test`), is refitted
on that validation snapshot (the latest complete labels) and then predicts the snapshot
at `origin.test` (evaluation) or the score snapshot (production).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from ml.evaluation import InsufficientHistory, Origin, evaluation_origins, require_history

__all__ = ["MIN_HISTORY_DAYS", "MOVES_WITH_SNAPSHOT_DATE", "ProductionWindows",
           "evaluation_windows", "plus_days", "production_windows", "snapshot_at",
           "snapshot_role"]

# Features that grow with the snapshot date for the same customers (days since the first
# purchase or visit): between the training and the scoring snapshot they shift by the
# horizon by construction, which is not drift (ml/drift.py).
MOVES_WITH_SNAPSHOT_DATE = ("customer_age_days", "tenure_days")

# Days of purchases before the first training snapshot: fewer, and the training
# snapshot holds too few customers (and too short histories) to fit on.
MIN_HISTORY_DAYS = 14


def plus_days(day: date, days: int) -> date:
    """`day` + `days` calendar days."""
    return day + timedelta(days=int(days))


def _as_date(value: object) -> date:
    return pd.Timestamp(value).date()


def snapshot_role(snapshots: pd.DataFrame, role: str) -> pd.DataFrame:
    """The rows of one snapshot role, sorted by user_id (a stable order for fitting)."""
    rows = snapshots[snapshots["snapshot_role"] == role]
    return rows.sort_values("user_id", kind="stable").reset_index(drop=True)


def snapshot_at(snapshots: pd.DataFrame, day: date) -> pd.DataFrame:
    """The rows of the snapshot taken on `day`, sorted by user_id."""
    dates = pd.to_datetime(snapshots["snapshot_date"]).dt.date
    rows = snapshots[dates == day]
    return rows.sort_values("user_id", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class ProductionWindows:
    """The production snapshots' dates: `origin` (train = the train snapshot, validation =
    the test snapshot, whose labels are the latest complete ones), the score date, the
    first purchase date in the data and the horizon."""
    origin: Origin
    score: date
    first_date: date
    horizon_days: int


def production_windows(snapshots: pd.DataFrame) -> ProductionWindows:
    """The windows of int_customer_features_snapshots rows.

    Raises InsufficientHistory (ml.evaluation) when the data hold fewer than
    MIN_HISTORY_DAYS days of purchases before the training snapshot, or no customer in
    the train or test snapshot: e.g. "needs 43 days of history, has 30" for 14-day labels
    (14 days, then the train and validation label windows, which end a day before the
    score date with the default cutoff).
    """
    if snapshots.empty:
        raise InsufficientHistory(1, 0, "customers with a purchase",
                                  "no purchase in the data")
    horizon = int(snapshots["horizon_days"].iloc[0])
    first = _as_date(snapshots["first_purchase_date"].min())
    dates = {role: _as_date(day) for role, day in
             snapshots.groupby("snapshot_role")["snapshot_date"].max().items()}
    score = dates.get("score") or plus_days(max(dates.values()), 1)
    gap = (score - plus_days(dates["test"], horizon)).days if "test" in dates else 1
    need = MIN_HISTORY_DAYS + 2 * horizon + max(gap, 0)
    detail = (f"{MIN_HISTORY_DAYS} days of purchases before the training snapshot, then "
              f"train and validation label windows of {horizon} days")
    require_history(need, (score - first).days, detail=detail)
    missing = sorted({"train", "test"} - set(dates))
    if missing:  # only with an explicit ml_cutoff_date near the start of the data
        raise InsufficientHistory(need, (score - first).days, detail=(
            f"no customer in the {' and '.join(missing)} snapshot; {detail}"))
    origin = Origin(dates["train"], dates["test"], None, horizon)
    return ProductionWindows(origin, score, first, horizon)


def evaluation_windows(snapshots: pd.DataFrame, step_days: int,
                       n_cutoffs: int) -> list[Origin]:
    """The rolling-origin replays of int_customer_features_evaluation_snapshots rows, one
    Origin per test cutoff (ml.evaluation.evaluation_origins), the last one's labels
    ending on the last event date.

    Raises InsufficientHistory when the first training snapshot would have fewer than
    MIN_HISTORY_DAYS days of purchases before it.
    """
    if snapshots.empty:
        raise InsufficientHistory(1, 0, "customers with a purchase",
                                  "no customer before any evaluation snapshot")
    horizon = int(snapshots["horizon_days"].iloc[0])
    first = _as_date(snapshots["first_purchase_date"].min())
    # The latest snapshot is the last test cutoff, whose labels end on the last date.
    end = plus_days(_as_date(snapshots["snapshot_date"].max()), horizon)
    return evaluation_origins(first, end, horizon, step_days, n_cutoffs, MIN_HISTORY_DAYS)
