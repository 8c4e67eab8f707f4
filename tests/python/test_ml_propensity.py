"""ml.propensity: metrics, baselines, sampling and the training runs on small frames; the
purchase-propensity models on the shared generated warehouse against their baselines,
the time split and the planted purchase process."""
from __future__ import annotations

import json
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from dbt_project import query
from ml.calibration import brier_score, expected_calibration_error
from ml.evaluation import InsufficientHistory, Resampler
from ml.propensity import (BASELINES, LABEL, TASKS, _compare_all, _weights_of,
                           empty_scores, evaluate_propensity, evaluate_task,
                           fit_classifier, fit_procedure, logistic_baseline,
                           precision_at_top, predict, propensity_metrics, read_rows,
                           read_sample, rule_baseline, score_propensity, train_propensity,
                           train_task, weighted_metric, window_filters)
from ml.registry import SKIPPED_INSUFFICIENT_HISTORY, is_trained, load_model

# --------------------------------------------------------------------------- small frames

ONE_THREAD = {"n_jobs": 1, "n_estimators": 40}  # threads only cost time on frames this small
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


GRID_SMALL = {"min_child_weight": (5.0, 30.0), "monotone_prior_purchases": (False, True),
              "n_estimators": (20, 40)}
SAMPLES = 50  # bootstrap resamples in unit tests


def make_timeline(task: str, days: int = 60, per_day: int = 120, seed: int = 0,
                  end: str = "2020-01-01") -> pd.DataFrame:
    """`make_rows` spread over `days` days before `end`, with label_known_at (1 to 30
    hours after the prediction), is_label_complete and the SQL roles of a 14-day
    cutoff, like the task's feature model."""
    n = days * per_day
    frame = make_rows(task, "train", n=n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    data_end = pd.Timestamp(end) - pd.Timedelta(minutes=1)
    start = pd.Timestamp(end) - pd.Timedelta(days=days)
    frame["predicted_at"] = start + pd.to_timedelta(rng.integers(0, days * 86_400, n),
                                                    unit="s")
    frame["label_known_at"] = frame["predicted_at"] + pd.to_timedelta(
        rng.integers(3_600, 30 * 3_600, n), unit="s")
    frame["is_label_complete"] = frame["label_known_at"] <= data_end
    frame["data_end_at"] = data_end
    frame["cutoff_at"] = data_end.normalize() - pd.Timedelta(days=14)
    cutoff = frame["cutoff_at"]
    frame["ml_role"] = np.select(
        [frame["label_known_at"] <= cutoff,
         (frame["predicted_at"] >= cutoff) & frame["is_label_complete"],
         frame["is_label_complete"]],
        ["train", "validation", "embargo"], "score")
    frame[LABEL] = frame[LABEL].where(frame["is_label_complete"], None)
    return frame


def relation_of(frame: pd.DataFrame):
    connection = duckdb.connect()
    connection.register("features", frame)
    return connection, connection.table("features")


@pytest.mark.parametrize("metric", ["pr_auc", "roc_auc", "precision_top_5pct", "brier",
                                    "ece"])
def test_weighted_metrics_equal_the_metric_on_the_resampled_rows(metric: str) -> None:
    """The bootstrap computes each resample as a weighted pass over one sort; it must
    equal scikit-learn's metric (or calibration's) on the drawn rows, ties included."""
    rng = np.random.default_rng(0)
    n = 400
    y = (rng.random(n) < 0.2).astype(int)
    score = np.round(np.clip(0.2 + 0.3 * y + rng.normal(0, 0.2, n), 0, 1), 1)  # ties
    resampler = Resampler(n, n_samples=5, seed=1, clusters=rng.integers(0, 80, n))
    statistic = weighted_metric(metric, y, score, _weights_of(resampler))
    reference = {
        "pr_auc": average_precision_score, "roc_auc": roc_auc_score,
        "precision_top_5pct": precision_at_top, "brier": brier_score,
        "ece": expected_calibration_error}[metric]
    for rows in [np.arange(n), *resampler.samples]:
        assert statistic(rows) == pytest.approx(reference(y[rows], score[rows]), abs=1e-12)


def test_an_undefined_metric_is_null_with_its_reason() -> None:
    y = np.zeros(300, dtype=int)
    score = np.linspace(0, 1, 300)
    metrics = _compare_all(y, score, score, {"logistic_counts": score},
                           Resampler(300, n_samples=20, seed=0), "test", None)
    by_key = {(m.metric, m.baseline): m for m in metrics}
    pr_auc = by_key[("pr_auc", "logistic_counts")]
    assert pr_auc.value is None and "no positive rows" in pr_auc.undefined_reason
    assert pr_auc.verdict() is None
    assert by_key[("brier", "uncalibrated")].value == pytest.approx(
        float(np.mean(score ** 2)))


@pytest.mark.parametrize("task", ["cart", "session"])
def test_production_run_tunes_calibrates_and_reports_validation_metrics(task: str) -> None:
    timeline = make_timeline(task, seed=1)
    frames = {role: timeline[timeline["ml_role"] == role].reset_index(drop=True)
              for role in ("train", "validation", "score")}
    run = train_task(frames["train"], frames["validation"], task, seed=3,
                     score=frames["score"], n_samples=SAMPLES, grid=GRID_SMALL)
    assert run.model_name == TASKS[task]["model_name"] and run.run_kind == "production"
    assert run.n_train == len(frames["train"]) + len(frames["validation"])
    assert {m.split for m in run.metrics} == {"validation"}
    keys = [(m.metric, m.baseline) for m in run.metrics]
    assert len(keys) == len(set(keys)) == 5 * len(BASELINES)
    assert {(m.metric, m.baseline) for m in run.primary_metrics()} == {
        ("pr_auc", b) for b in BASELINES}
    assert all(m.ci_low is not None and m.diff_ci_low is not None for m in run.metrics)
    # the planted category x hour effect is visible only to the classifier
    pr_auc = {m.baseline: m for m in run.metrics if m.metric == "pr_auc"}
    assert pr_auc["logistic_counts"].verdict() == "better"
    assert run.params["min_child_weight"] in GRID_SMALL["min_child_weight"]
    assert run.params["n_estimators"] in GRID_SMALL["n_estimators"]
    assert len(run.params["grid"]) == 8
    assert run.model["calibrator"] is not None
    assert {r["stage"] for r in run.calibration} == {"uncalibrated"}
    assert {r["feature"] for r in run.drift} == set(TASKS[task]["numeric"])
    record = run.to_frame()
    scores = score_propensity(load_model(record.loc[0, "model_artifact"]), frames["score"])
    assert len(scores) == len(frames["score"])
    # published = the isotonic map of the raw probability, so it keeps the raw order
    order = np.argsort(scores["raw_probability"].to_numpy(), kind="stable")
    assert (np.diff(scores["purchase_probability"].to_numpy()[order]) >= -1e-12).all()
    assert not np.allclose(scores["purchase_probability"], scores["raw_probability"])


def test_the_logistic_regression_is_published_unless_xgboost_is_confidently_better() -> None:
    """Labels linear in the log counts: xgboost cannot be confidently better than the
    logistic regression on validation, so the simpler model is the one refitted,
    calibrated and published (and the run says so)."""
    timeline = make_timeline("session", days=50, seed=11)
    counts = np.log1p(timeline[list(TASKS["session"]["counts"])].to_numpy(float)).sum(1)
    logit = -3.0 + 0.8 * (counts - counts.mean())
    labels = np.random.default_rng(12).random(len(timeline)) < 1 / (1 + np.exp(-logit))
    timeline[LABEL] = np.where(timeline["is_label_complete"], labels, None)
    train = timeline[timeline["ml_role"] == "train"]
    validation = timeline[timeline["ml_role"] == "validation"]
    fitted = fit_procedure(train, validation, "session", 1, GRID_SMALL, n_samples=SAMPLES)
    assert fitted["params"]["family"] == "logistic_counts"
    low = fitted["validation"]["xgboost_vs_logistic"][2]
    assert not low > 0
    model = fitted["model"]
    assert model["family"] == "logistic_counts" and model["calibrator"] is not None
    np.testing.assert_allclose(predict(model, validation),
                               logistic_baseline(fitted["refit_rows"], validation, "session"))
    scores = score_propensity(model, timeline[timeline["ml_role"] == "score"])
    assert scores["purchase_probability"].between(0, 1).all()


def test_the_choice_and_the_calibrator_ignore_the_test_windows() -> None:
    """Scrambling the labels of the last test window changes its test metrics, never a
    chosen parameter: each replay chooses and calibrates on its own validation window,
    which ends at its cutoff. (A later replay's validation window may hold an earlier
    replay's test window: that is the rolling origin.)"""
    timeline = make_timeline("session", days=60, seed=2)
    last_test = pd.Timestamp("2019-12-25")
    scrambled = timeline.copy()
    in_test = scrambled["predicted_at"] >= last_test
    scrambled.loc[in_test, LABEL] = np.random.default_rng(9).random(in_test.sum()) < 0.5
    runs = []
    for frame in (timeline, scrambled):
        connection, relation = relation_of(frame)
        runs.append(evaluate_task(relation, "session", seed=3, max_rows=100_000,
                                  horizon_days=14, step_days=7, n_cutoffs=3,
                                  n_samples=SAMPLES, grid=GRID_SMALL))
        connection.close()
    original, changed = runs
    assert original.run_kind == "evaluation"
    chosen = {c: {k: v for k, v in p.items() if k != "positive_rate_test"}
              for c, p in original.params["chosen_per_cutoff"].items()}
    assert chosen == {c: {k: v for k, v in p.items() if k != "positive_rate_test"}
                      for c, p in changed.params["chosen_per_cutoff"].items()}
    assert sorted(chosen) == ["2019-12-11", "2019-12-18", "2019-12-25"]
    for cutoff, params in chosen.items():
        assert params["validation_start"] == str(
            (pd.Timestamp(cutoff) - pd.Timedelta(days=14)).date())
    value = {(m.metric, m.baseline, m.cutoff): m.value for m in original.metrics}
    other = {(m.metric, m.baseline, m.cutoff): m.value for m in changed.metrics}
    assert value.keys() == other.keys()
    for key in value:
        assert (value[key] == other[key]) == (key[2] < last_test.date()), key
    assert {m.cutoff for m in original.metrics} == {
        pd.Timestamp(c).date() for c in chosen}
    assert {m.split for m in original.metrics} == {"test"}
    assert {(r["cutoff"], r["stage"]) for r in original.calibration} == {
        (c, s) for c in chosen for s in ("uncalibrated", "calibrated")}


def test_windows_keep_labels_apart_with_an_embargo() -> None:
    timeline = make_timeline("cart", days=40, seed=4)
    connection, relation = relation_of(timeline)
    v, c, t = date(2019, 12, 4), date(2019, 12, 18), date(2019, 12, 25)
    rows = {name: read_rows(relation, "cart_event_id", where, 100_000, 1)
            for name, where in window_filters(v, c, t).items()}
    connection.close()
    assert (rows["train"]["label_known_at"] <= pd.Timestamp(v)).all()
    assert (rows["validation"]["predicted_at"] >= pd.Timestamp(v)).all()
    assert (rows["validation"]["label_known_at"] <= pd.Timestamp(c)).all()
    assert rows["test"]["predicted_at"].between(pd.Timestamp(c), pd.Timestamp(t)).all()
    straddling = timeline[(timeline["predicted_at"] < pd.Timestamp(v))
                          & (timeline["label_known_at"] > pd.Timestamp(v))]
    assert len(straddling) > 0
    assert not set(straddling["cart_event_id"]) & set(
        pd.concat([rows["train"], rows["validation"]])["cart_event_id"])


def test_short_history_skips_both_runs_with_the_exact_need() -> None:
    short = make_timeline("cart", days=20, seed=5)
    connection, relation = relation_of(short)
    [evaluation] = evaluate_propensity({"cart": relation}, seed=1, max_rows=10_000,
                                       horizon_days=14, step_days=7, n_cutoffs=3,
                                       n_samples=SAMPLES, grid=GRID_SMALL)
    assert evaluation.status == SKIPPED_INSUFFICIENT_HISTORY
    assert evaluation.run_kind == "evaluation"
    assert evaluation.status_reason.startswith("needs 42 days of history, has 20")
    with pytest.raises(RuntimeError, match="ml_strict"):
        evaluate_propensity({"cart": relation}, seed=1, max_rows=10_000, horizon_days=14,
                            step_days=7, n_cutoffs=3, strict=True)
    connection.close()
    tiny = make_timeline("session", days=15, seed=6)
    connection, relation = relation_of(tiny)
    [production] = train_propensity({"session": relation}, seed=1, max_rows=10_000,
                                    n_samples=SAMPLES, grid=GRID_SMALL)
    connection.close()
    assert production.status == SKIPPED_INSUFFICIENT_HISTORY
    assert production.status_reason.startswith("needs 21 days of history, has 15")
    assert not is_trained(production.to_frame().iloc[0])
    # a window with one class is a shortage of rows, not a crash
    frames = make_timeline("session", seed=7)
    train = frames[frames["ml_role"] == "train"]
    with pytest.raises(InsufficientHistory, match="positive validation rows"):
        fit_procedure(train, frames[frames["ml_role"] == "validation"].assign(
            is_purchased=False), "session", 1, GRID_SMALL)


def test_an_empty_score_frame_has_the_scores_columns_and_dtypes() -> None:
    timeline = make_timeline("cart", seed=8)
    model = fit_classifier(timeline[timeline["ml_role"] == "train"], "cart", 1, ONE_THREAD)
    scores = score_propensity(model, timeline[timeline["ml_role"] == "score"])
    empty = empty_scores()
    assert empty.empty and list(empty.columns) == list(scores.columns)
    for column in ("user_id", "purchase_probability", "raw_probability", "is_top_5pct",
                   "product_id"):
        assert empty[column].dtype == scores[column].dtype, column


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


# --------------------------------------------------------------------------- warehouse

K = 5  # var propensity_session_prefix_events (default)


def _one(database, sql: str):
    return query(database, sql)[0][0]


def test_features_see_only_events_up_to_the_prediction_point(synth_warehouse) -> None:
    """Recomputed from the sessionised events: each cart's running counts are those of
    the events up to it, each session row sees exactly its first k events and none of
    them is a purchase, and the user history stops before the session started."""
    database = synth_warehouse.database
    assert _one(database, """
        with carts as (
            select f.*, e.event_number_in_raw_session as cart_number
            from int_cart_events_features as f
            inner join int_events_sessionized as e on f.cart_event_id = e.event_id
        ),
        recomputed as (
            select carts.cart_event_id,
                   count(*) as events_so_far,
                   count(*) filter (where e.event_type = 'view') as views_so_far,
                   count(*) filter (where e.event_type = 'purchase') as purchases_so_far,
                   count(*) filter (where e.event_type = 'cart'
                                    and e.product_id = carts.product_id) as product_carts
            from carts
            inner join int_events_sessionized as e
                on carts.session_id = e.session_id
               and e.event_number_in_raw_session <= carts.cart_number
            group by 1
        )
        select count(*)
        from carts inner join recomputed using (cart_event_id)
        where carts.session_events_so_far != recomputed.events_so_far
           or carts.session_views_so_far != recomputed.views_so_far
           or carts.session_purchases_so_far != recomputed.purchases_so_far
           or carts.product_carts_so_far != recomputed.product_carts
    """) == 0
    assert _one(database, f"""
        with seen as (
            select f.session_id,
                   count(e.event_id) as events_seen,
                   count(e.event_id) filter (where e.event_type = 'purchase') as purchases,
                   max(f.prefix_views) as prefix_views,
                   count(e.event_id) filter (where e.event_type = 'view') as views
            from int_session_prefix_features as f
            inner join int_events_sessionized as e
                on f.session_id = e.session_id and e.event_at <= f.predicted_at
            group by 1
        )
        select count(*) from seen
        where events_seen != {K} or purchases != 0 or prefix_views != views
    """) == 0
    # every session with k events before its first purchase has a row, and no other
    assert _one(database, f"""
        with ranked as (
            select session_id, event_type,
                   row_number() over (partition by session_id
                                      order by event_number_in_raw_session) as event_rank
            from int_events_sessionized
        ),
        eligible as (
            select session_id from ranked group by 1
            having count(*) >= {K}
               and coalesce(min(event_rank) filter (where event_type = 'purchase'),
                            {K + 1}) > {K}
        )
        select count(*) from eligible
        full outer join int_session_prefix_features as f
            on eligible.session_id = f.session_id
        where eligible.session_id is null or f.session_id is null
    """) == 0
    for table, key in (("int_cart_events_features", "cart_event_id"),
                       ("int_session_prefix_features", "session_id")):
        assert _one(database, f"""
            with history as (
                select f.{key}, f.user_prior_purchases,
                       count(p.purchase_id) filter (
                           where p.purchased_at < s.session_started_at) as recomputed
                from {table} as f
                inner join fct_sessions as s using (session_id)
                left join fct_purchases as p on f.user_id = p.user_id
                group by 1, 2
            )
            select count(*) from history where user_prior_purchases != recomputed
        """) == 0


def test_the_split_is_by_time_and_every_row_has_a_role(synth_warehouse) -> None:
    database = synth_warehouse.database
    counts = {}
    for table in ("int_cart_events_features", "int_session_prefix_features"):
        roles = dict(query(database, f"select ml_role, count(*) from {table} group by 1"))
        assert roles["train"] > roles["validation"] > 1000, roles
        counts[table] = roles
        assert _one(database, f"""
            select count(*) from {table}
            where (ml_role = 'train' and label_known_at > cutoff_at)
               or (ml_role = 'validation' and (predicted_at < cutoff_at
                                               or label_known_at > data_end_at))
               or (ml_role = 'score' and (is_label_complete or is_purchased is not null))
        """) == 0
    runs = query(database, """
        select model_name, run_kind, train_end, label_start, label_end, n_train, n_test,
               params_json
        from ml_model_runs where model_name like 'purchase_propensity_%'""")
    assert sorted((r[0], r[1]) for r in runs) == [
        ("purchase_propensity_cart", "evaluation"), ("purchase_propensity_cart", "production"),
        ("purchase_propensity_session", "evaluation"),
        ("purchase_propensity_session", "production")]
    for name, kind, train_end, label_start, label_end, n_train, n_test, params in runs:
        table = ("int_cart_events_features" if name.endswith("cart")
                 else "int_session_prefix_features")
        cutoff, data_end = query(database, f"""
            select max(cutoff_at), max(data_end_at) from {table}""")[0]
        day_after = (pd.Timestamp(data_end).normalize() + pd.Timedelta(days=1))
        params = json.loads(params)
        if kind == "production":
            assert train_end == label_start == cutoff
            roles = counts[table]
            # the sample cap (200k rows per role) does not bind at this size; the
            # production model is refitted on train + validation
            assert (n_train, n_test) == (roles["train"] + roles["validation"],
                                         roles["validation"])
            assert params["max_rows_per_role"] == 200_000
            assert params["min_child_weight"] in (5.0, 30.0)
            assert params["n_estimators"] in (50, 100)
        else:
            # three weekly test windows: the last 21 days of predictions
            assert label_end == day_after
            assert label_start == day_after - pd.Timedelta(days=21)
            chosen = params["chosen_per_cutoff"]
            assert len(chosen) == 3
            for test_cutoff, choice in chosen.items():
                assert pd.Timestamp(choice["validation_start"]) == (
                    pd.Timestamp(test_cutoff) - pd.Timedelta(days=14))
                assert choice["n_train"] > choice["n_validation"] > choice["n_test"] > 500


def test_both_models_beat_the_rule_and_are_calibrated_at_every_cutoff(
        synth_warehouse) -> None:
    """At each of the three weekly test cutoffs: PR-AUC (primary) confidently above the
    "has a cart so far" rule, never confidently below the logistic regression on counts;
    the published (calibrated) probabilities within 0.03 of the observed rates (ECE)."""
    database = synth_warehouse.database
    rows = query(database, """
        select model_name, metric, cutoff, baseline, value, baseline_value, verdict,
               ci_low, ci_high, diff_ci_low, diff_ci_high
        from ml_model_metrics
        where model_name like 'purchase_propensity_%' and run_kind = 'evaluation'""")
    by_key = {(r[0], r[1], r[2], r[3]): r for r in rows}
    cutoffs = sorted({r[2] for r in rows})
    assert len(cutoffs) == 3 and all(r[7] is not None for r in rows)
    for model_name in ("purchase_propensity_cart", "purchase_propensity_session"):
        for cutoff in cutoffs:
            rule = by_key[(model_name, "pr_auc", cutoff, "has_cart_rule")]
            assert rule[6] == "better", rule
            logistic = by_key[(model_name, "pr_auc", cutoff, "logistic_counts")]
            assert logistic[6] in ("better", "inconclusive"), logistic
            ece = by_key[(model_name, "ece", cutoff, "uncalibrated")]
            assert ece[4] <= 0.03, ece
    # the session rule has information; the cart rule cannot (every cart session has one)
    rule_auc = {(r[0], r[2]): r[5] for r in rows
                if r[1] == "roc_auc" and r[3] == "has_cart_rule"}
    assert all(rule_auc[("purchase_propensity_cart", c)] == 0.5 for c in cutoffs)
    assert all(rule_auc[("purchase_propensity_session", c)] > 0.55 for c in cutoffs)
    # reliability tables per task, cutoff and stage; bins count every test row
    stages = query(database, """
        select task_name, cutoff, stage, sum(n_rows)
        from ml_model_calibration
        where model_name like 'purchase_propensity_%' and cutoff is not null
        group by all""")
    assert len(stages) == 2 * 3 * 2
    n_units = {(r[0], r[2]): n for r in query(database, """
        select model_name, metric, cutoff, n_units from ml_model_metrics
        where run_kind = 'evaluation' and metric = 'ece'
          and model_name like 'purchase_propensity_%'""") for n in [r[3]]}
    assert {n for _, _, _, n in stages} <= set(n_units.values())
    flags = query(database, """
        select task, count(*), bool_or(is_model_below_baseline),
               bool_and(purchase_probability between 0 and 1),
               bool_or(purchase_probability <> raw_probability),
               -- an isotonic map is a step function (few scores: a session still open
               -- at the very end may be one of two)
               count(*) < 50
               or count(distinct purchase_probability) < count(distinct raw_probability)
        from ml_purchase_propensity group by 1""")
    # the session task scores only the sessions still open at the end of the data: the
    # 600k test data may have none (its evaluation at every cutoff is checked above)
    assert {task for task, *_ in flags} in ({"cart"}, {"cart", "session"})
    assert all(flag is False and bounded and mapped and steps
               for _, _, flag, bounded, mapped, steps in flags)
    drift = query(database, """
        select task_name, count(*) from ml_feature_drift
        where model_name like 'purchase_propensity_%' group by 1""")
    scored = {task for task, *_ in flags}
    assert dict(drift) == {task: len(TASKS[task]["numeric"]) for task in scored}


# What the generator plants (docs/generator.md): purchases happen only in intent visits,
# each bought target right after its view (and cart) in the same visit; a user's visit is
# a transaction with probability q = lambda / (browse_rate + lambda / pi_s); scrapers
# (20-150 views 1-4 s apart) never cart or buy. Measured on the 2M-event demo: 98.0% of
# converted carts convert in their own session; Spearman of the model's test scores with
# q is 0.71 (cart) and 0.55 (session), and q alone ranks the labels with AUC 0.82 and
# 0.88. Scraper test sessions (never a purchase) average a probability of 0.016 (demo)
# and 0.023 (this fixture), against 0.043 and 0.047 from the logistic regression on
# counts, which cannot see the bots' speed; humans average 0.041 and 0.046. The model
# does not rank scrapers below non-buying humans (AUC 0.56 demo, 0.45 fixture): most
# humans have no purchase history, so this is a claim about the bots' mean, not a rank.
MIN_IN_SESSION_SHARE = 0.95
MIN_SPEARMAN_WITH_PLANTED_Q = 0.35
MIN_AUC_OF_PLANTED_Q = 0.70


def _frame(database, sql: str) -> pd.DataFrame:
    connection = duckdb.connect(str(database), read_only=True)
    try:
        return connection.sql(sql).df()
    finally:
        connection.close()


def test_models_follow_the_planted_purchase_process(synth_warehouse) -> None:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from ml.propensity import logistic_baseline

    truth = synth_warehouse.dataset.truth_dir
    users = pd.read_parquet(truth / "users.parquet")
    pi_s = synth_warehouse.dataset.manifest["truth_model"]["intent_session_conversion"]
    humans = users[users["actor_type"] == "human"].assign(
        q=lambda u: u["lambda_per_day"] / (u["browse_rate_per_day"]
                                           + u["lambda_per_day"] / pi_s))
    scrapers = set(users.loc[users["actor_type"] == "scraper", "user_id"])
    tables = {"cart": "int_cart_events_features", "session": "int_session_prefix_features"}
    scored = {}
    for task, table in tables.items():
        rows = _frame(synth_warehouse.database,
                      f"select * from {table} where ml_role in ('train', 'validation')")
        train = rows[rows["ml_role"] == "train"]
        test = rows[rows["ml_role"] == "validation"]
        model = fit_classifier(train, task, 42, {"n_jobs": 1})
        scored[task] = test.assign(score=predict(model, test),
                                   logistic=logistic_baseline(train, test, task))
        merged = scored[task].merge(humans, on="user_id")
        y = merged["is_purchased"].astype(int)
        # the labels follow the planted process, and the model ranks it
        assert roc_auc_score(y, merged["q"]) >= MIN_AUC_OF_PLANTED_Q, task
        rho = spearmanr(merged["q"], merged["score"]).statistic
        assert rho >= MIN_SPEARMAN_WITH_PLANTED_Q, (task, rho)

    carts = scored["cart"]
    converted = carts[carts["is_purchased"].astype(bool)]
    assert converted["is_purchased_in_session"].mean() >= MIN_IN_SESSION_SHARE
    # scrapers never cart or buy: no cart rows, no positive session, and the classifier
    # (which sees the time between events) gives them a lower mean probability than the
    # humans get and well below what the logistic baseline gives them
    assert not set(carts["user_id"]) & scrapers
    sessions = scored["session"]
    bots = sessions["user_id"].isin(scrapers)
    assert bots.sum() >= 20 and not sessions.loc[bots, "is_purchased"].astype(bool).any()
    human_mean = sessions.loc[sessions["user_id"].isin(humans["user_id"]), "score"].mean()
    bot_mean = sessions.loc[bots, "score"].mean()
    assert bot_mean < human_mean
    assert bot_mean < 0.75 * sessions.loc[bots, "logistic"].mean()
