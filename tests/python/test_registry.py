"""ml.registry: the record every training run writes."""
from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ml.registry import (Metric, TrainingRun, Window, load_model, run_columns_sql, run_of,
                         with_run)


def make_run(model_auc: float, baseline_auc: float,
             diff_ci: tuple[float, float] | None = None) -> TrainingRun:
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    return TrainingRun(
        model_name="churn",
        train_window=Window(date(2019, 10, 1), date(2019, 11, 1)),
        label_window=Window(date(2019, 11, 1), date(2019, 12, 1)),
        n_train=100, n_test=50, params={"max_depth": 4, "seed": 7},
        metrics=[
            Metric("pr_auc", model_auc, "recency_rule", baseline_auc, is_primary=True,
                   diff_ci_low=diff_ci[0] if diff_ci else None,
                   diff_ci_high=diff_ci[1] if diff_ci else None),
            Metric("brier", 0.10, "recency_rule", 0.20, higher_is_better=False),
        ],
        feature_importance={"recency_days": 0.7, "frequency": 0.3},
        model=model,
    )


def test_record_holds_windows_metrics_importance_and_a_loadable_model() -> None:
    frame = make_run(0.8, 0.6).to_frame(trained_at=datetime(2019, 12, 1, 3, 0))
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["model_name"] == "churn"
    assert str(row["train_end"].date()) == "2019-11-01"
    assert (row["n_train"], row["n_test"]) == (100, 50)
    metrics = {m["metric"]: m for m in json.loads(row["metrics_json"])}
    assert metrics["pr_auc"]["beats_baseline"] is True
    assert metrics["brier"]["beats_baseline"] is True  # lower is better
    importance = json.loads(row["feature_importance_json"])
    assert [f["feature"] for f in importance] == ["recency_days", "frequency"]
    assert "scikit-learn" in json.loads(row["library_versions_json"])
    assert not row["is_below_baseline"]
    model = load_model(row["model_artifact"])
    assert list(model.predict([[0.0], [3.0]])) == [0, 1]


def test_guardrail_flags_only_a_primary_metric_worse_with_confidence() -> None:
    assert make_run(0.55, 0.60, (-0.08, -0.02)).is_below_baseline()
    # a point loss inside the noise is inconclusive, not a failure
    assert not make_run(0.55, 0.60, (-0.09, 0.01)).is_below_baseline()
    assert not make_run(0.55, 0.60).is_below_baseline()  # no interval: no verdict
    assert make_run(0.65, 0.60, (0.01, 0.09)).metrics[0].verdict() == "better"


def test_run_id_differs_between_runs_and_is_stable_for_one() -> None:
    run = make_run(0.8, 0.6)
    first, second = datetime(2019, 12, 1), datetime(2019, 12, 2)
    assert run.run_id(first) == run.run_id(first) != run.run_id(second)


def test_scores_carry_the_latest_run_of_their_model() -> None:
    runs = pd.DataFrame({
        "model_name": ["clv_bgnbd", "clv_xgboost", "clv_bgnbd"],
        "run_id": ["old", "xgb", "new"],
        "trained_at": pd.to_datetime(["2019-12-01", "2019-12-03", "2019-12-02"]),
        "is_below_baseline": [False, True, False],
    })
    record = run_of(runs, "clv_bgnbd")
    assert record["run_id"] == "new"
    scores = with_run(pd.DataFrame({"user_id": [1, 2]}), record)
    scores = with_run(scores, run_of(runs, "clv_xgboost"), prefix="xgboost_")
    assert scores["run_id"].tolist() == ["new", "new"]
    assert scores["xgboost_run_id"].tolist() == ["xgb", "xgb"]
    assert scores["is_model_below_baseline"].tolist() == [False, False]
    assert scores["is_xgboost_below_baseline"].tolist() == [True, True]
    with pytest.raises(ValueError, match="no run of 'churn'"):
        run_of(runs, "churn")


def test_run_columns_in_sql_equal_the_pandas_ones() -> None:
    record = {"run_id": "it's-1", "is_below_baseline": True}
    scores = pd.DataFrame({"user_id": [1, 2]})
    in_sql = duckdb.sql(f"select *, {', '.join(run_columns_sql(record))} from scores").df()
    pd.testing.assert_frame_equal(in_sql, with_run(scores, record), check_dtype=False)


def test_guardrail_fails_in_dbt_only_when_the_latest_evaluation_is_worse(
        synth_warehouse, tmp_path) -> None:
    """On a copy of the built warehouse: quiet as built; an inconclusive loss passes; a
    loss whose interval excludes 0 fails the test, or warns with
    ml_guardrail_severity: warn."""
    import shutil

    import duckdb

    from dbt_project import run_dbt

    database = tmp_path / "wh.duckdb"
    shutil.copy(synth_warehouse.database, database)
    events = synth_warehouse.dataset.events_glob
    select = ["test", "--select", "assert_ml_models_beat_their_baselines"]

    quiet = run_dbt(select, database, events)
    assert quiet.returncode == 0 and "PASS=1" in quiet.stdout, quiet.stdout[-3000:]

    def record(run_id: str, at: str, low: float, high: float, verdict: str) -> None:
        with duckdb.connect(str(database)) as con:
            con.execute(f"""
                insert into ml_model_runs (run_id, model_name, run_kind, status,
                    trained_at, is_below_baseline)
                values ('{run_id}', 'churn', 'evaluation', 'trained',
                        timestamp '{at}', {verdict == 'worse'})""")
            con.execute(f"""
                insert into ml_model_metrics (metric_id, run_id, model_name, run_kind,
                    metric, split, cutoff, value, baseline, baseline_value, diff_ci_low,
                    diff_ci_high, verdict, higher_is_better, is_primary, beats_baseline)
                values (uuid(), '{run_id}', 'churn', 'evaluation', 'pr_auc', 'test',
                        date '2100-01-01', 0.40, 'recency_rule', 0.60, {low}, {high},
                        '{verdict}', true, true, false)""")

    record("inconclusive-run", "2100-01-01", -0.3, 0.05, "inconclusive")
    inconclusive = run_dbt(select, database, events)
    assert inconclusive.returncode == 0 and "PASS=1" in inconclusive.stdout

    record("worse-run", "2100-01-02", -0.3, -0.1, "worse")
    failed = run_dbt(select, database, events)
    assert failed.returncode != 0 and "ERROR=1" in failed.stdout, failed.stdout[-3000:]
    warned = run_dbt([*select, "--vars", "{ml_guardrail_severity: warn}"], database, events)
    assert warned.returncode == 0 and "WARN=1" in warned.stdout, warned.stdout[-3000:]


def test_registry_rebuilt_keeps_one_row_per_key(synth_warehouse, tmp_path) -> None:
    """A second build (e.g. `make evaluate` after `make build`) merges the same runs
    again: every registry table keeps one row per key, NULL cutoffs included."""
    import shutil

    from dbt_project import run_dbt

    database = tmp_path / "wh.duckdb"
    shutil.copy(synth_warehouse.database, database)
    events = synth_warehouse.dataset.events_glob
    again = run_dbt(["build", "--select", "models/ml/registry"], database, events)
    assert again.returncode == 0 and "ERROR=0" in again.stdout, again.stdout[-3000:]
