"""ml.propensity: metrics, baselines, sampling and the training runs on small frames; the
purchase-propensity models on the shared generated warehouse against their baselines,
the time split and the planted purchase process."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from dbt_project import query
from ml.propensity import (BASELINES, TASKS, fit_classifier, precision_at_top, predict,
                           propensity_metrics, read_sample, rule_baseline, score_propensity,
                           train_propensity, train_task)
from ml.registry import load_model

# --------------------------------------------------------------------------- small frames

ONE_THREAD = {"n_jobs": 1, "n_estimators": 60}  # threads only cost time on frames this small
CATEGORIES = ("electronics", "apparel", "kids", None)


def make_rows(task: str, role: str, n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Feature rows shaped like the task's SQL model. The label depends on counts (which
    the logistic baseline sees) and, non-linearly, on the category and the hour (which
    only the classifier sees): electronics at night never buys."""
    spec = TASKS[task]
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.poisson(2, n).astype(float) for name in spec["numeric"]})
    frame["hour_of_day"] = rng.integers(0, 24, n).astype(float)
    category = rng.choice(np.array(CATEGORIES, dtype=object), n)
    frame[spec["categorical"][0]] = category
    counts = frame[list(spec["counts"])].to_numpy().sum(axis=1)
    logit = -2.0 + 0.15 * (counts - counts.mean())
    logit = np.where(category == "kids", logit + 2.0, logit)
    logit = np.where((category == "electronics") & (frame["hour_of_day"] < 12), -8.0, logit)
    frame["is_purchased"] = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame[spec["key"]] = [f"{task}-{role}-{seed}-{i}" for i in range(n)]
    frame["session_id"] = [f"s-{role}-{seed}-{i}" for i in range(n)]
    frame["user_id"] = np.arange(n) + 10_000
    if task == "cart":
        frame["product_id"] = rng.integers(1_000_000, 1_000_100, n)
    day = {"train": "2019-11-10", "test": "2019-12-10", "score": "2019-12-31"}[role]
    frame["predicted_at"] = pd.Timestamp(day) + pd.to_timedelta(rng.integers(0, 80_000, n),
                                                                unit="s")
    frame["cutoff_at"] = pd.Timestamp("2019-12-01")
    frame["data_end_at"] = pd.Timestamp("2019-12-31 23:59:00")
    frame["ml_role"] = role
    if role == "score":
        frame["is_purchased"] = None
    return frame


def test_precision_at_top_counts_boundary_ties_by_their_mean_rate() -> None:
    y = np.array([1, 0] + [0] * 38)  # 40 rows: the top 5% is 2 rows
    assert precision_at_top(y, np.array([9.0, 8.0] + [1.0] * 38)) == pytest.approx(0.5)
    assert precision_at_top(y, np.array([9.0] + [1.0] * 39)) == pytest.approx(
        (1 + 0 / 39) / 2)
    # a constant score's precision is the positive rate, whatever the row order
    assert precision_at_top(y, np.ones(40)) == pytest.approx(1 / 40)
    assert precision_at_top(y[::-1], np.ones(40)) == pytest.approx(1 / 40)


def test_metrics_of_a_perfect_and_an_uninformative_probability() -> None:
    y = np.array([0, 0, 0, 1])
    perfect = propensity_metrics(y, np.array([0.0, 0.0, 0.0, 1.0]))
    assert perfect["roc_auc"] == perfect["pr_auc"] == 1.0
    assert perfect["brier"] == 0.0 and perfect["precision_top_5pct"] == 1.0
    flat = propensity_metrics(y, np.full(4, 0.25))
    assert flat["roc_auc"] == 0.5 and flat["pr_auc"] == pytest.approx(0.25)
    assert flat["brier"] == pytest.approx(0.75 * 0.25 ** 2 + 0.25 * 0.75 ** 2)
    assert flat["precision_top_5pct"] == pytest.approx(0.25)


def test_rule_baseline_is_the_train_rate_of_each_rule_value() -> None:
    train = pd.DataFrame({"prefix_carts": [0, 0, 0, 0, 2, 1],
                          "is_purchased": [0, 0, 0, 1, 1, 0]})
    test = pd.DataFrame({"prefix_carts": [0, 3]})
    assert rule_baseline(train, test, "session").tolist() == [0.25, 0.5]
    # a rule value the train rows lack falls back to the overall train rate
    only_carts = train[train["prefix_carts"] > 0]
    assert rule_baseline(only_carts, test, "session").tolist() == [0.5, 0.5]


@pytest.mark.parametrize("task", ["cart", "session"])
def test_training_run_reports_every_metric_beside_both_baselines(task: str) -> None:
    train, test = make_rows(task, "train", seed=1), make_rows(task, "test", seed=2)
    run = train_task(train, test, task, seed=3, params=ONE_THREAD)
    assert run.model_name == TASKS[task]["model_name"]
    assert (run.n_train, run.n_test) == (1500, 1500)
    assert (str(run.train_window.end), str(run.label_window.start),
            str(run.label_window.end)) == ("2019-12-01", "2019-12-01", "2020-01-01")
    keys = [(m.metric, m.split) for m in run.metrics]
    assert len(keys) == len(set(keys)) == 9  # the registry key is unique
    assert {m.baseline for m in run.metrics} == {*BASELINES, "majority_class"}
    assert {(m.metric, m.baseline) for m in run.primary_metrics()} == {
        ("pr_auc", "has_cart_rule"), ("pr_auc", "logistic_counts")}
    accuracy = [m for m in run.metrics if m.metric == "accuracy"]
    assert len(accuracy) == 1 and accuracy[0].baseline == "majority_class"
    rate = float(test["is_purchased"].mean())
    assert accuracy[0].baseline_value == pytest.approx(max(rate, 1 - rate))
    # the planted category x hour effect is visible only to the classifier
    pr_auc = {m.baseline: m for m in run.metrics if m.metric == "pr_auc"}
    assert pr_auc["logistic_counts"].value > pr_auc["logistic_counts"].baseline_value + 0.03
    assert not run.is_below_baseline()
    params = json.loads(run.to_frame().loc[0, "params_json"])
    assert params["task"] == task and params["positive_rate_test"] == pytest.approx(rate)


def test_cart_rule_is_constant_because_every_cart_session_has_a_cart() -> None:
    train, test = make_rows("cart", "train", seed=4), make_rows("cart", "test", seed=5)
    train["session_carts_so_far"] = np.maximum(train["session_carts_so_far"], 1)
    test["session_carts_so_far"] = np.maximum(test["session_carts_so_far"], 1)
    run = train_task(train, test, "cart", seed=3, params=ONE_THREAD)
    rule = {m.metric: m.baseline_value for m in run.metrics if m.split == "test"
            and m.baseline == "has_cart_rule"}
    assert rule["roc_auc"] == 0.5
    assert rule["pr_auc"] == pytest.approx(test["is_purchased"].mean())


def test_predictions_are_blind_to_labels_and_deterministic() -> None:
    train, test = make_rows("session", "train", seed=6), make_rows("session", "test", seed=7)
    model = fit_classifier(train, "session", 5, ONE_THREAD)
    first = predict(model, test)
    scrambled = test.assign(is_purchased=~test["is_purchased"].astype(bool))
    np.testing.assert_array_equal(first, predict(model, scrambled))
    again = predict(fit_classifier(train, "session", 5, ONE_THREAD), test)
    np.testing.assert_array_equal(first, again)
    for spec in TASKS.values():
        features = {*spec["numeric"], *spec["categorical"], *spec["counts"]}
        assert not features & {"is_purchased", "is_purchased_in_session",
                               "first_purchased_at", "label_known_at", "ml_role"}


def test_unseen_and_missing_categories_are_scored() -> None:
    train, test = make_rows("cart", "train", seed=8), make_rows("cart", "score", seed=9)
    model = fit_classifier(train, "cart", 5, ONE_THREAD)
    test.loc[:9, "category_l1"] = "never_seen"
    test.loc[10:19, "category_l1"] = None
    assert np.isfinite(predict(model, test)).all()


def test_training_needs_both_classes_and_both_windows() -> None:
    train, test = make_rows("cart", "train", seed=1), make_rows("cart", "test", seed=2)
    with pytest.raises(ValueError, match="no test rows"):
        train_task(train, test.iloc[:0], "cart", seed=3, params=ONE_THREAD)
    with pytest.raises(ValueError, match="single class"):
        train_task(train, test.assign(is_purchased=False), "cart", seed=3, params=ONE_THREAD)
    with pytest.raises(ValueError, match="without a label"):
        train_task(train.assign(is_purchased=None), test, "cart", seed=3, params=ONE_THREAD)


def test_read_sample_is_a_seeded_capped_sample_of_one_role() -> None:
    connection = duckdb.connect()
    frame = pd.concat([make_rows("cart", "train", n=500, seed=1),
                       make_rows("cart", "test", n=300, seed=2)], ignore_index=True)
    connection.register("features", frame)
    relation = connection.table("features")
    capped = read_sample(relation, "cart_event_id", "train", 100, seed=42)
    assert len(capped) == 100 and set(capped["ml_role"]) == {"train"}
    assert capped["cart_event_id"].is_unique
    again = read_sample(relation, "cart_event_id", "train", 100, seed=42)
    assert list(capped["cart_event_id"]) == list(again["cart_event_id"])
    other = read_sample(relation, "cart_event_id", "train", 100, seed=43)
    assert set(capped["cart_event_id"]) != set(other["cart_event_id"])
    everything = read_sample(relation, "cart_event_id", "test", 10_000, seed=42)
    assert sorted(everything["cart_event_id"]) == sorted(
        frame.loc[frame["ml_role"] == "test", "cart_event_id"])
    connection.close()


def test_runs_round_trip_through_the_registry_and_score_open_rows() -> None:
    frames = {task: {role: make_rows(task, role, seed=seed)
                     for role, seed in (("train", 11), ("test", 12))}
              for task in ("cart", "session")}
    runs = train_propensity(frames["cart"], frames["session"], seed=1, params=ONE_THREAD)
    assert [run.model_name for run in runs] == [
        "purchase_propensity_cart", "purchase_propensity_session"]
    for run, task in zip(runs, ("cart", "session")):
        model = load_model(run.to_frame().loc[0, "model_artifact"])
        rows = make_rows(task, "score", n=200, seed=13)
        scores = score_propensity(model, rows)
        assert len(scores) == 200 and scores["prediction_id"].is_unique
        assert set(scores["task"]) == {task}
        assert scores["purchase_probability"].between(0, 1).all()
        assert scores["is_top_5pct"].sum() == 10
        top = scores.loc[scores["is_top_5pct"], "purchase_probability"].min()
        assert top >= scores.loc[~scores["is_top_5pct"], "purchase_probability"].max()
        assert scores["product_id"].isna().all() == (task == "session")
        empty = score_propensity(model, rows.iloc[:0])
        assert empty.empty and list(empty.columns) == list(scores.columns)
