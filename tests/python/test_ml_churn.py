"""ml.churn: metrics, risk bands, reasons, the procedure and its runs on small frames;
the churn model on the shared generated warehouse against its baselines and planted
truth."""
from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from dbt_project import query
from ml.calibration import brier_score, expected_calibration_error
from ml.churn import (BASELINES, CHURN_FEATURES, _compare_churn, bgnbd_baseline_fit,
                      bgnbd_no_purchase_baseline, churn_metrics, empty_churn_scores,
                      evaluate_churn, fit_churn_classifier, fit_churn_procedure,
                      out_of_fold_churn, predict_churn, risk_bands, score_churn,
                      top_decile_lift, top_reasons, train_churn)
from ml.customer_snapshots import snapshot_role
from ml.evaluation import InsufficientHistory, Resampler, train_or_skip
from ml.metrics import ProbabilityStatistics, RankStatistics
from ml.registry import SKIPPED_INSUFFICIENT_HISTORY, TrainingRun, Window, load_model

# --------------------------------------------------------------------------- small frames

ONE_THREAD = {"n_jobs": 1}
FAST = {"n_jobs": 1, "n_estimators": 40}  # for the tests of the procedure, not its skill


def make_snapshot(day: str, role: str, n: int, rng: np.random.Generator,
                  horizon: int = 30, labelled: bool = True) -> pd.DataFrame:
    """Snapshot rows shaped like int_customer_features_snapshots: churn is driven by
    days_since_last_visit and recency_days, the rest is noise."""
    frame = pd.DataFrame({name: rng.poisson(3, n).astype(float) for name in CHURN_FEATURES})
    frame["days_since_last_visit"] = rng.integers(1, 60, n).astype(float)
    frame["recency_days"] = frame["days_since_last_visit"] + rng.integers(0, 10, n)
    frame["customer_age_days"] = frame["recency_days"] + rng.integers(0, 20, n)
    frame["purchase_days"] = 1 + rng.poisson(0.7, n)
    logit = (frame["days_since_last_visit"] - 25) / 6
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame["user_id"] = np.arange(n) + 1000
    frame["snapshot_role"] = role
    frame["snapshot_date"] = pd.Timestamp(day)
    frame["horizon_days"] = horizon
    frame["first_purchase_date"] = pd.Timestamp(day) - pd.to_timedelta(
        frame["customer_age_days"], unit="D")
    frame["bgnbd_frequency"] = frame["purchase_days"] - 1
    frame["bgnbd_recency_days"] = np.where(
        frame["bgnbd_frequency"] > 0, frame["customer_age_days"] - frame["recency_days"], 0)
    frame["bgnbd_monetary_value"] = np.where(frame["bgnbd_frequency"] > 0, 50.0, np.nan)
    frame["is_churned"] = churned if labelled else None
    frame["label_spend"] = np.where(churned, 0.0, 40.0) if labelled else np.nan
    return frame


def make_snapshots(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """The production roles: train 2019-11-01, test 2019-12-01, score 2020-01-01 (H 30)."""
    rng = np.random.default_rng(seed)
    roles = (("train", "2019-11-01"), ("test", "2019-12-01"), ("score", "2020-01-01"))
    return pd.concat([make_snapshot(day, role, n, rng, labelled=role != "score")
                      for role, day in roles], ignore_index=True)


LAST_CUTOFF = date(2019, 12, 18)


def make_evaluation_snapshots(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """The evaluation dates for H 14, 3 cutoffs a week apart, the last on LAST_CUTOFF:
    seven weekly snapshots from LAST_CUTOFF - 42 days."""
    rng = np.random.default_rng(seed)
    days = [LAST_CUTOFF - timedelta(days=7 * k) for k in range(6, -1, -1)]
    return pd.concat([make_snapshot(str(day), "evaluation", n, rng, horizon=14)
                      for day in days], ignore_index=True)


def test_top_decile_lift_counts_boundary_ties_by_their_mean_rate() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    # top 10% = 1 row; the two highest scores tie and hold one positive of two
    assert top_decile_lift(y, np.array([9, 9, 1, 1, 1, 1, 1, 1, 1, 1.0])) == pytest.approx(
        (1 / 2) / 0.2)
    assert top_decile_lift(y, np.array([9, 8, 1, 1, 1, 1, 1, 1, 1, 1.0])) == pytest.approx(5.0)
    # a constant score has lift 1
    assert top_decile_lift(y, np.ones(10)) == pytest.approx(1.0)


def test_churn_metrics_of_a_perfect_and_an_uninformative_score() -> None:
    y = np.array([0, 0, 1, 1])
    perfect = churn_metrics(y, np.array([0.0, 0.0, 1.0, 1.0]))
    assert perfect["roc_auc"] == perfect["pr_auc"] == 1.0
    assert perfect["brier"] == 0.0 and perfect["top_decile_lift"] == pytest.approx(2.0)
    flat = churn_metrics(y, np.full(4, 0.5))
    assert flat["roc_auc"] == 0.5 and flat["brier"] == pytest.approx(0.25)
    # a score that is not a probability takes its Brier score from `probability`
    ranked = churn_metrics(y, np.array([1, 2, 30, 40.0]), probability=np.array([0, 0, 1, 1.0]))
    assert ranked["roc_auc"] == 1.0 and ranked["brier"] == 0.0


def test_risk_bands_are_deciles_by_rank() -> None:
    probability = np.linspace(0.99, 0.0, 20)  # descending: the first row is the riskiest
    decile, band = risk_bands(probability)
    assert list(decile[:2]) == [10, 10] and list(decile[-2:]) == [1, 1]
    assert np.bincount(decile)[1:].tolist() == [2] * 10
    assert band[0] == "high" and band[-1] == "low"
    assert list(band[decile == 4]) == ["medium"] * 2
    assert list(band[decile == 8]) == ["high"] * 2
    assert list(band[decile == 3]) == ["low"] * 2 and list(band[decile == 7]) == ["medium"] * 2


def test_top_reasons_are_the_largest_positive_contributions() -> None:
    features = ["recency_days", "sessions", "views", "carts"]
    contributions = np.array([
        [0.5, -0.2, 0.9, 0.1, 3.0],    # last column: the bias, ignored
        [-0.1, -0.2, -0.3, 0.4, 3.0],  # one feature pushes up
        [-1.0, -1.0, -1.0, -1.0, 9.0],  # none pushes up
    ])
    assert top_reasons(contributions, features) == [
        ["views", "recency_days", "carts"],
        ["carts", None, None],
        [None, None, None],
    ]
    assert top_reasons(contributions[:, :4], features, k=1) == [["views"], ["carts"], [None]]


def test_rank_and_probability_statistics_equal_the_usual_metrics_on_resamples() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    score = np.round(y + rng.normal(0, 1.0, 300), 1)  # ties on purpose
    probability = np.clip(0.5 + (score - score.mean()) / 6, 0, 1)
    ranks, probabilities = RankStatistics(y, score), ProbabilityStatistics(y, probability)
    for rows in Resampler(300, n_samples=5, seed=1).samples + [np.arange(300)]:
        ys, ss, ps = y[rows], score[rows], probability[rows]
        assert ranks.roc_auc(rows) == pytest.approx(roc_auc_score(ys, ss))
        assert ranks.average_precision(rows) == pytest.approx(average_precision_score(ys, ss))
        assert ranks.average_precision(rows, 0) == pytest.approx(
            average_precision_score(1 - ys, -ss))
        assert ranks.top_share_lift(rows) == pytest.approx(top_decile_lift(ys, ss))
        assert probabilities.brier(rows) == pytest.approx(brier_score(ys, ps))
        assert probabilities.ece(rows) == pytest.approx(expected_calibration_error(ys, ps))


def test_an_undefined_metric_is_null_with_a_reason() -> None:
    y = np.ones(50, dtype=int)  # every customer churned: ROC-AUC has one class
    score = np.linspace(0, 1, 50)
    baselines = {name: (score[::-1], score[::-1]) for name in BASELINES}
    metrics = _compare_churn(y, score, {"": score}, baselines, Resampler(50, 20), "test",
                             date(2019, 12, 1))
    auc = [m for m in metrics if m.metric == "roc_auc"]
    assert len(auc) == 2 and all(m.value is None and m.verdict() is None for m in auc)
    assert "one class" in auc[0].undefined_reason
    run = TrainingRun("churn", Window(None, None), Window(None, None), 1, 1, {}, metrics)
    assert not run.is_below_baseline()


def test_production_run_chooses_calibrates_and_scores() -> None:
    snapshots = make_snapshots()
    run = train_churn(snapshots, seed=3, n_bootstrap=30, params=ONE_THREAD)
    assert run.model_name == "churn" and run.run_kind == "production"
    assert run.n_train == 800 and run.n_test == 400  # refitted on train and test
    assert str(run.train_window.end) == "2019-11-01"
    assert (str(run.label_window.start), str(run.label_window.end)) == (
        "2019-12-01", "2019-12-31")
    assert {m.split for m in run.metrics} == {"validation"}
    assert {m.baseline for m in run.metrics if m.metric == "roc_auc"} == set(BASELINES)
    keys = [(m.metric, m.split, m.cutoff, m.baseline) for m in run.metrics]
    assert len(keys) == len(set(keys))  # the registry key is unique
    assert {m.metric for m in run.primary_metrics()} == {"roc_auc"}
    recency = next(m for m in run.primary_metrics() if m.baseline == "recency_rule")
    assert recency.value > 0.8 and recency.ci_low < recency.value < recency.ci_high
    assert {r["feature"] for r in run.drift} == set(CHURN_FEATURES)
    assert {r["stage"] for r in run.calibration} == {"uncalibrated"}
    assert run.params["chosen"] in run.params["candidate_validation_roc_auc"]
    frame = run.to_frame()
    assert json.loads(frame.loc[0, "params_json"])["horizon_days"] == 30
    model = load_model(frame.loc[0, "model_artifact"])
    assert model["calibrator"].method == "platt"
    scores = score_churn(model, snapshot_role(snapshots, "score"))
    assert len(scores) == 400 and scores["user_id"].is_unique
    assert scores["churn_probability"].between(0, 1).all()
    np.testing.assert_allclose(scores["churn_probability"],
                               model["calibrator"].predict(
                                   scores["churn_probability_uncalibrated"]))
    assert set(scores["churn_risk_band"]) == {"low", "medium", "high"}
    assert str(scores["as_of_date"].iloc[0]) == "2020-01-01"
    # the planted driver is the commonest top reason of the high-risk customers
    high = scores[scores["churn_risk_band"] == "high"]
    assert high["top_reason_1"].mode()[0] == "days_since_last_visit"
    assert set(scores["reason_method"]) == {"tree_shap"}
    # exact reasons for the riskiest 50 only, the same as when everyone is exact; the rest
    # approximate
    some = score_churn(model, snapshot_role(snapshots, "score"), exact_reasons_top_n=50)
    exact = some["reason_method"] == "tree_shap"
    assert exact.sum() == 50 and (some["reason_method"][~exact] == "saabas_approximation").all()
    assert some.loc[exact, "churn_probability_uncalibrated"].min() >= (
        some.loc[~exact, "churn_probability_uncalibrated"].max())
    reasons = ["top_reason_1", "top_reason_2", "top_reason_3"]
    pd.testing.assert_frame_equal(some.loc[exact, reasons], scores.loc[exact, reasons])
    pd.testing.assert_frame_equal(some.drop(columns=[*reasons, "reason_method"]),
                                  scores.drop(columns=[*reasons, "reason_method"]))
    # a skipped run's empty scores have the same columns and types
    empty = empty_churn_scores()
    assert empty.empty
    assert empty.drop(columns=["run_id", "is_model_below_baseline"]).dtypes.to_dict() == (
        scores.dtypes.to_dict())


def test_the_choice_reads_the_validation_window_only() -> None:
    snapshots = make_snapshots(seed=2)
    train, validation = snapshot_role(snapshots, "train"), snapshot_role(snapshots, "test")
    first = fit_churn_procedure(train, validation, 5, FAST)
    # scrambling the validation labels changes what is chosen and calibrated
    flipped = validation.assign(is_churned=~validation["is_churned"].astype(bool))
    second = fit_churn_procedure(train, flipped, 5, FAST)
    assert first.candidate_scores != second.candidate_scores


def test_the_refit_and_its_calibration_read_both_label_windows() -> None:
    snapshots = make_snapshots(seed=3)
    train, validation = snapshot_role(snapshots, "train"), snapshot_role(snapshots, "test")
    # nobody churns in the train window: the published level is the two windows' rate,
    # not the validation window's alone
    quiet = train.assign(is_churned=False)
    both_rate = pd.concat([quiet, validation])["is_churned"].astype(float).mean()
    choice = fit_churn_procedure(quiet, validation, 5, FAST)
    _, published = choice.predict(snapshot_role(snapshots, "score"))
    assert validation["is_churned"].mean() - both_rate > 0.2
    assert abs(published.mean() - both_rate) < 0.05


def test_out_of_fold_keeps_each_customers_rows_in_one_fold() -> None:
    # labels are noise and every customer appears twice (two snapshots): a model that had
    # seen the customer's other row would recall the label (ROC-AUC 0.87 when rows are
    # split without regard to the customer)
    rng = np.random.default_rng(0)
    one = pd.DataFrame({name: rng.normal(size=300) for name in CHURN_FEATURES})
    one = one.assign(user_id=np.arange(300), is_churned=rng.random(300) < 0.5)
    twice = pd.concat([one, one], ignore_index=True)
    raw = out_of_fold_churn(twice, 3, {**FAST, "max_depth": 5})
    assert abs(roc_auc_score(twice["is_churned"], raw) - 0.5) < 0.1


def test_evaluation_replays_the_procedure_at_each_cutoff_blind_to_test_labels() -> None:
    snapshots = make_evaluation_snapshots(n=200)
    run = evaluate_churn(snapshots, seed=1, step_days=7, n_cutoffs=3, n_bootstrap=10,
                         params=FAST)
    cutoffs = [str(LAST_CUTOFF - timedelta(days=7 * k)) for k in (2, 1, 0)]
    assert run.run_kind == "evaluation" and run.params["cutoffs"] == cutoffs
    assert {str(m.cutoff) for m in run.metrics} == set(cutoffs)
    assert {m.split for m in run.metrics} == {"test"}
    for cutoff in cutoffs:
        here = [m for m in run.metrics if str(m.cutoff) == cutoff]
        assert {(m.metric, m.baseline) for m in here if m.metric == "roc_auc"} == {
            ("roc_auc", b) for b in BASELINES}
        assert {"ece", "ece_uncalibrated", "brier", "brier_uncalibrated",
                "churn_prevalence"} <= {m.metric for m in here}
        stages = {r["stage"] for r in run.calibration if r["cutoff"] == cutoff}
        assert stages == {"uncalibrated", "calibrated"}
    # the last test snapshot is read for the figures only: flipping its labels moves the
    # figures, not what was chosen
    flipped = snapshots.copy()
    last = pd.to_datetime(flipped["snapshot_date"]).dt.date == LAST_CUTOFF
    flipped.loc[last, "is_churned"] = ~flipped.loc[last, "is_churned"].astype(bool)
    again = evaluate_churn(flipped, seed=1, step_days=7, n_cutoffs=3, n_bootstrap=10,
                           params=FAST)
    assert again.params["chosen_on_validation"] == run.params["chosen_on_validation"]
    auc = {(str(m.cutoff), m.baseline): m.value for m in run.metrics if m.metric == "roc_auc"}
    auc_again = {(str(m.cutoff), m.baseline): m.value
                 for m in again.metrics if m.metric == "roc_auc"}
    assert auc_again[(cutoffs[0], "recency_rule")] == auc[(cutoffs[0], "recency_rule")]
    assert auc_again[(cutoffs[-1], "recency_rule")] != auc[(cutoffs[-1], "recency_rule")]


def test_too_short_a_history_skips_with_the_exact_need() -> None:
    snapshots = make_evaluation_snapshots(n=50)
    recent = snapshots[pd.to_datetime(snapshots["snapshot_date"]).dt.date
                       >= LAST_CUTOFF - timedelta(days=7)].copy()
    recent["first_purchase_date"] = pd.Timestamp(LAST_CUTOFF - timedelta(days=20))
    with pytest.raises(InsufficientHistory, match="needs 70 days of history, has 34"):
        evaluate_churn(recent, seed=1, step_days=7, n_cutoffs=3, params=ONE_THREAD)
    run = train_or_skip("churn", lambda: evaluate_churn(recent, 1, 7, 3), run_kind="evaluation")
    assert run.status == SKIPPED_INSUFFICIENT_HISTORY and run.run_kind == "evaluation"
    production = make_snapshots(n=50)
    production["first_purchase_date"] = pd.Timestamp("2019-11-20")
    with pytest.raises(InsufficientHistory, match="needs 75 days of history, has 42"):
        train_churn(production, seed=1, params=ONE_THREAD)
    assert train_or_skip("churn", lambda: train_churn(pd.DataFrame(), 1)).status == (
        SKIPPED_INSUFFICIENT_HISTORY)


def test_training_is_deterministic_and_blind_to_label_columns() -> None:
    snapshots = make_snapshots(seed=1)
    model = fit_churn_classifier(snapshot_role(snapshots, "train"), 5, ONE_THREAD)
    first = predict_churn(model, snapshot_role(snapshots, "test"))
    # labels and future spend of the rows being scored cannot move their scores
    scrambled = snapshots.copy()
    test_rows = scrambled["snapshot_role"] == "test"
    scrambled.loc[test_rows, "label_spend"] = 1e6
    flipped = ~scrambled.loc[test_rows, "is_churned"].astype(bool)
    scrambled.loc[test_rows, "is_churned"] = flipped
    model = fit_churn_classifier(snapshot_role(scrambled, "train"), 5, ONE_THREAD)
    second = predict_churn(model, snapshot_role(scrambled, "test"))
    np.testing.assert_array_equal(first, second)
    assert not {"is_churned", "label_spend", "label_purchase_days"} & set(CHURN_FEATURES)


# --------------------------------------------------------------------------- warehouse

# AUC of the churn score against the planted dropout state. The label is "no purchase in
# 14 days", which most living customers also meet (their purchase rate is low), so the
# score ranks deadness well but not perfectly; the threshold leaves room for the
# fixture's sampling noise.
MIN_AUC_VS_PLANTED_DROPOUT = 0.70


def _snapshots(database) -> pd.DataFrame:
    rows = query(database, "select * from int_customer_features_snapshots")
    columns = [r[0] for r in query(database, "describe int_customer_features_snapshots")]
    return pd.DataFrame(rows, columns=columns)


def test_snapshot_features_stop_before_and_labels_start_on_the_snapshot_date(
        synth_warehouse) -> None:
    """Recomputed from fct_purchases: features strictly before, labels in the horizon."""
    mismatches = query(synth_warehouse.database, """
        with purchases as (
            select s.user_id, s.snapshot_role,
                   count(distinct p.purchase_date) filter (
                       where p.purchase_date < s.snapshot_date) as purchase_days,
                   coalesce(sum(p.price) filter (
                       where p.purchase_date >= s.snapshot_date
                         and p.purchase_date < s.snapshot_date + s.horizon_days), 0)
                       as label_spend
            from int_customer_features_snapshots as s
            inner join fct_purchases as p on s.user_id = p.user_id
            group by all
        )
        select count(*)
        from int_customer_features_snapshots as s
        inner join purchases using (user_id, snapshot_role)
        where s.purchase_days != purchases.purchase_days
           or (s.is_label_complete
               and abs(s.label_spend - purchases.label_spend) > 0.005)
    """)[0][0]
    assert mismatches == 0
    counts = dict(query(synth_warehouse.database, """
        select snapshot_role, count(*) from int_customer_features_snapshots group by 1"""))
    buyers = query(synth_warehouse.database,
                   "select count(distinct user_id) from fct_purchases")[0][0]
    assert counts["score"] == buyers  # every buyer to date is scored
    assert counts["train"] < counts["test"] < counts["score"]


def test_churn_model_beats_both_baselines_at_every_test_cutoff(synth_warehouse) -> None:
    """The latest evaluation: ROC-AUC (primary) at three cutoffs, never worse than a
    baseline, and confidently better than the recency rule."""
    rows = query(synth_warehouse.database, """
        with latest as (
            select run_id from ml_model_runs
            where model_name = 'churn' and run_kind = 'evaluation' and status = 'trained'
            order by trained_at desc limit 1
        )
        select cutoff, baseline, value, baseline_value, diff_ci_low, verdict
        from ml_model_metrics inner join latest using (run_id)
        where metric = 'roc_auc' and is_primary and split = 'test'""")
    assert len({r[0] for r in rows}) == 3 and {r[1] for r in rows} == set(BASELINES)
    for cutoff, baseline, value, baseline_value, low, verdict in rows:
        assert verdict != "worse", (cutoff, baseline, value, baseline_value)
        if baseline == "recency_rule":
            assert verdict == "better", (cutoff, value, baseline_value, low)
    flags = query(synth_warehouse.database,
                  "select distinct is_model_below_baseline from ml_churn_scores")
    assert flags == [(False,)]


def test_calibration_drift_and_prevalence_are_in_the_registry(synth_warehouse) -> None:
    database = synth_warehouse.database
    stages = query(database, """
        select count(distinct cutoff), count(distinct stage)
        from ml_model_calibration c inner join ml_model_runs r using (run_id)
        where r.model_name = 'churn' and r.run_kind = 'evaluation'""")[0]
    assert stages == (3, 2)
    ece = dict(query(database, """
        select metric, avg(value) from ml_model_metrics
        where model_name = 'churn' and run_kind = 'evaluation'
          and metric in ('ece', 'ece_uncalibrated', 'churn_prevalence')
        group by 1"""))
    assert set(ece) == {"ece", "ece_uncalibrated", "churn_prevalence"}
    assert 0.5 < ece["churn_prevalence"] < 0.95 and ece["ece"] < 0.1
    drift = query(database, """
        select count(distinct feature) from ml_feature_drift d
        inner join ml_model_runs r using (run_id)
        where r.model_name in ('churn', 'clv_xgboost') and r.run_kind = 'production'""")
    assert drift[0][0] == len(CHURN_FEATURES)


def test_churn_score_ranks_the_planted_dropout_state(synth_warehouse) -> None:
    """AUC of the evaluated model's score on the test snapshot against 'dropped out
    before the cutoff' (planted), among human customers; and of the production scores
    against 'dropped out by the end'."""
    users = pd.read_parquet(synth_warehouse.dataset.truth_dir / "users.parquet")
    users = users[users["actor_type"] == "human"]
    snapshots = _snapshots(synth_warehouse.database)
    train, test = snapshot_role(snapshots, "train"), snapshot_role(snapshots, "test")
    seed = 42
    model = fit_churn_classifier(train, seed, ONE_THREAD)
    test = test.assign(score=predict_churn(model, test))
    merged = test.merge(users, on="user_id")
    cutoff = pd.Timestamp(test["snapshot_date"].iloc[0]).tz_localize("UTC")
    dead = merged["dropout_at"].notna() & (merged["dropout_at"] < cutoff)
    auc_cutoff = roc_auc_score(dead, merged["score"])
    assert auc_cutoff >= MIN_AUC_VS_PLANTED_DROPOUT, auc_cutoff
    # the model ranks the hidden state better than the recency rule does
    assert auc_cutoff > roc_auc_score(dead, merged["recency_days"])

    scores = pd.DataFrame(query(synth_warehouse.database,
                                "select user_id, churn_probability from ml_churn_scores"),
                          columns=["user_id", "churn_probability"]).merge(users, on="user_id")
    auc_end = roc_auc_score(~scores["is_alive_end"].astype(bool), scores["churn_probability"])
    assert auc_end >= MIN_AUC_VS_PLANTED_DROPOUT, auc_end


# --------------------------------------------------------------------------- degenerate BG/NBD

def test_bgnbd_baseline_falls_back_to_the_nbd_when_bgnbd_is_degenerate() -> None:
    """No repeat buyer, and a no-dropout boundary: the baseline's probabilities are
    still defined, and the fit status says which model gave them."""
    rng = np.random.default_rng(4)
    frame = make_snapshot("2019-12-01", "test", 50, rng)
    none = frame.assign(bgnbd_frequency=0, bgnbd_recency_days=0)
    quiet, status = bgnbd_baseline_fit(none, 1e-3)
    assert status.startswith("bg/nbd degenerate: no repeat customer") and "-> nbd" in status
    assert np.all((quiet > 1 - 1e-6) & (quiet <= 1))
    np.testing.assert_allclose(bgnbd_no_purchase_baseline(none, 1e-3), quiet)
    # everyone bought on the last day of the window: unpenalised, a/b -> infinity
    boundary = frame.head(4).assign(bgnbd_frequency=[2, 3, 4, 5], bgnbd_recency_days=10,
                                    customer_age_days=10)
    quiet, status = bgnbd_baseline_fit(boundary, 0.0)
    assert "-> infinity" in status and status.endswith("-> nbd")
    assert np.all((quiet > 0) & (quiet < 1)) and np.all(np.diff(quiet) < 0)


def test_a_degenerate_bgnbd_baseline_does_not_fail_the_run() -> None:
    snapshots = make_snapshots(seed=5).assign(bgnbd_frequency=0, bgnbd_recency_days=0)
    run = train_churn(snapshots, seed=3, n_bootstrap=10, params=FAST)
    assert "degenerate" in run.params["bgnbd_baseline_fit_status"]
    bgnbd = next(m for m in run.primary_metrics() if m.baseline == "bgnbd_p_no_purchase")
    assert bgnbd.baseline_value is not None
