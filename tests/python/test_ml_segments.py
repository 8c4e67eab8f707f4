"""ml.segments: scaling, effect sizes, k by silhouette, stability and names on planted
groups of customers; the customer clusters on the shared generated warehouse against the
RFM named segments and the planted buyer state."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from dbt_project import query
from ml.evaluation import Resampler
from ml.registry import SKIPPED_INSUFFICIENT_HISTORY, load_model
from ml.segments import (CLUSTER_FEATURES, RFM_BASELINE, _epsilon_on_rows, _eta_on_rows,
                         cluster_names, empty_clusters, epsilon_squared, eta_squared,
                         evaluate_clusters, evaluate_clusters_or_skip, fit_clusters,
                         score_clusters, separation_metrics, train_clusters, transform)

# --------------------------------------------------------------------------- small frames

# Three planted kinds of customer (medians of each feature): recent heavy buyers,
# lapsed one-time buyers and cooling occasional ones. Each feature is log-normal around
# its median, so the groups are blobs in the log scale the clustering works in.
GROUPS = {
    "champions": {"recency_days": 3, "orders": 8, "monetary_total": 3000,
                  "days_since_last_visit": 1, "sessions": 60, "carts": 25},
    "lapsed": {"recency_days": 70, "orders": 1, "monetary_total": 60,
               "days_since_last_visit": 60, "sessions": 3, "carts": 1},
    "cooling": {"recency_days": 25, "orders": 2, "monetary_total": 400,
                "days_since_last_visit": 8, "sessions": 15, "carts": 4},
}
NEXT_SPEND = {"champions": 900.0, "lapsed": 0.0, "cooling": 120.0}


def planted_customers(n: int = 900, seed: int = 0, role: str = "test") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = np.array(list(GROUPS))
    group = names[rng.integers(0, len(names), n)]
    frame = pd.DataFrame({"user_id": np.arange(n) + 10_000, "planted_group": group})
    for feature in CLUSTER_FEATURES:
        median = np.array([GROUPS[g][feature] for g in group], dtype=float)
        value = np.exp(np.log1p(median) + rng.normal(0, 0.25, n)) - 1
        frame[feature] = np.maximum(np.round(value), 0 if feature != "orders" else 1)
    frame["snapshot_role"] = role
    frame["snapshot_date"] = pd.Timestamp("2019-12-01" if role == "test" else "2020-01-01")
    # the RFM grid sees recency and orders only; here it splits on recency alone
    frame["rfm_segment"] = np.where(frame["recency_days"] < 15, "Champions", "Hibernating")
    spend = np.array([NEXT_SPEND[g] for g in group])
    frame["label_spend"] = np.where(spend > 0, spend * rng.lognormal(0, 0.5, n), 0.0)
    frame["is_label_complete"] = role == "test"
    return frame


def test_transform_is_log1p_standardised_and_rejects_bad_values() -> None:
    frame = planted_customers(300)
    x, mean, sd = transform(frame)
    assert x.shape == (300, len(CLUSTER_FEATURES))
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(mean[0], np.log1p(frame["recency_days"]).mean())
    # new rows use the fitted scaling, not their own
    again, _, _ = transform(frame.iloc[:10], mean, sd)
    np.testing.assert_allclose(again, x[:10])
    with pytest.raises(ValueError, match="negative"):
        transform(frame.assign(sessions=-1))
    with pytest.raises(ValueError, match="null"):
        transform(frame.assign(carts=np.nan))


def test_eta_and_epsilon_squared_of_perfect_and_no_separation() -> None:
    values = np.array([1.0, 1, 5, 5])
    assert eta_squared(values, np.array(["a", "a", "b", "b"])) == pytest.approx(1.0)
    assert eta_squared(values, np.array(["a", "b", "a", "b"])) == pytest.approx(0.0)
    assert np.isnan(eta_squared(np.ones(4), np.array(["a", "a", "b", "b"])))
    assert epsilon_squared(np.arange(20.0), np.repeat([0, 1], 10)) > 0.7
    assert epsilon_squared(np.arange(20.0), np.tile([0, 1], 10)) < 0.05


def test_k_is_chosen_by_silhouette_and_finds_the_planted_groups() -> None:
    frame = planted_customers(900, seed=1)
    fitted = fit_clusters(frame, (2, 6), seed=5, silhouette_sample=500,
                          stability_seeds=2, n_init=2)
    assert fitted["k"] == 3, fitted["silhouettes"]
    assert fitted["silhouettes"][3] == max(fitted["silhouettes"].values())
    assert adjusted_rand_score(frame["planted_group"], fitted["labels"]) > 0.95
    assert min(fitted["stability_ari"]) > 0.95


def test_cluster_names_describe_the_planted_groups_and_are_unique() -> None:
    frame = planted_customers(900, seed=2)
    names = cluster_names(frame, frame["planted_group"].map(
        {"champions": 0, "lapsed": 1, "cooling": 2}).to_numpy())
    assert names[0] == "Recent repeat high-spend buyers"
    assert names[1] == "Lapsed one-time low-spend buyers"
    assert len(set(names.values())) == 3
    # two identical groups get told apart, not merged under one name
    twin = frame["planted_group"].map({"champions": 0, "lapsed": 1, "cooling": 1})
    twin = np.where((twin == 1) & (frame["user_id"] % 2 == 0), 2, twin)
    twins = cluster_names(frame, twin)
    assert len(set(twins.values())) == 3


def test_training_run_compares_clusters_with_rfm_segments_on_next_revenue() -> None:
    snapshots = pd.concat([planted_customers(900, seed=3),
                           planted_customers(1000, seed=4, role="score")],
                          ignore_index=True)
    run = train_clusters(snapshots, seed=7, k_range=(2, 5), silhouette_sample=500,
                         stability_seeds=2, n_samples=50)
    assert run.model_name == "customer_clusters" and run.params["k"] == 3
    assert run.n_train == 900 and run.params["production_customers"] == 1000
    assert (str(run.label_window.start), str(run.label_window.end)) == (
        "2019-12-01", "2019-12-31")
    (primary,) = run.primary_metrics()
    assert (primary.metric, primary.baseline) == ("eta2_log_next_revenue", RFM_BASELINE)
    assert {m.split for m in run.metrics} == {"validation"}
    # next spend follows the planted group, which recency alone only partly reveals
    assert primary.value > primary.baseline_value + 0.1, primary
    assert primary.verdict() == "better" and primary.ci_low < primary.value < primary.ci_high
    assert not run.is_below_baseline()
    assert {r["feature"] for r in run.drift} == set(CLUSTER_FEATURES)
    by_name = {m.metric: m for m in run.metrics}
    assert by_name["stability_ari_min"].value > 0.95
    assert by_name["silhouette"].value > by_name["silhouette"].baseline_value
    assert sum(run.feature_importance.values()) == pytest.approx(1.0)
    model = load_model(run.to_frame().loc[0, "model_artifact"])
    score = snapshots[snapshots["snapshot_role"] == "score"]
    out = score_clusters(model, score)
    assert len(out) == 1000 and out["user_id"].is_unique
    assert set(out["cluster_name"]) == set(model["names"].values())
    assert adjusted_rand_score(score["planted_group"], out["cluster_id"]) > 0.95


def test_training_refuses_a_test_snapshot_without_complete_labels() -> None:
    snapshots = pd.concat([planted_customers(300, seed=5).assign(is_label_complete=False),
                           planted_customers(300, seed=6, role="score")])
    with pytest.raises(ValueError, match="incomplete"):
        train_clusters(snapshots, seed=1, k_range=(2, 4))


def evaluation_snapshots(days: int = 92, seed: int = 10) -> pd.DataFrame:
    """Planted customers at the three weekly cutoffs of a `days`-day extract ending on
    2019-12-31 (14-day revenue windows), shaped like
    int_customer_cluster_evaluation_snapshots."""
    last = pd.Timestamp("2019-12-31")
    frames = []
    for number in (1, 2, 3):
        rows = planted_customers(600, seed=seed + number)
        rows["cutoff_number"] = number
        rows["snapshot_date"] = last + pd.Timedelta(days=1 - 14 - 7 * (3 - number))
        frames.append(rows)
    frame = pd.concat(frames, ignore_index=True)
    frame["first_event_date"] = last - pd.Timedelta(days=days - 1)
    frame["last_event_date"] = last
    frame["is_label_complete"] = True
    return frame


def test_fast_effect_sizes_equal_the_reference_ones_on_resampled_customers() -> None:
    rng = np.random.default_rng(3)
    spend = np.where(rng.random(300) < 0.6, 0.0, rng.lognormal(3, 1, 300))
    groups = rng.integers(0, 4, 300)
    rows = Resampler(300, n_samples=3, seed=2).samples
    for sample in [np.arange(300), *rows]:
        assert _eta_on_rows(spend, groups)(sample) == pytest.approx(
            eta_squared(spend[sample], groups[sample]), abs=1e-12)
        assert _epsilon_on_rows(spend, groups)(sample) == pytest.approx(
            epsilon_squared(spend[sample], groups[sample]), abs=1e-12)


def test_a_constant_revenue_leaves_the_separation_undefined_with_a_reason() -> None:
    metrics = separation_metrics(np.zeros(100), np.repeat([0, 1], 50),
                                 np.tile(["a", "b"], 50), Resampler(100, 20, seed=1),
                                 "test")
    assert all(m.value is None and "constant" in m.undefined_reason for m in metrics)
    assert all(m.verdict() is None for m in metrics)


def test_evaluation_refits_at_each_cutoff_and_compares_with_rfm() -> None:
    snapshots = evaluation_snapshots()
    run = evaluate_clusters(snapshots, seed=7, k_range=(2, 5), horizon_days=14,
                            step_days=7, n_cutoffs=3, silhouette_sample=500, n_samples=50)
    assert run.run_kind == "evaluation" and run.model is None
    cutoffs = ["2019-12-04", "2019-12-11", "2019-12-18"]
    assert sorted(run.params["chosen_per_cutoff"]) == cutoffs
    assert all(c["k"] == 3 for c in run.params["chosen_per_cutoff"].values())
    primary = run.primary_metrics()
    assert sorted(str(m.cutoff) for m in primary) == cutoffs
    assert all(m.verdict() == "better" and m.split == "test" for m in primary)
    assert {m.metric for m in run.metrics} == {"eta2_log_next_revenue", "eta2_next_revenue",
                                               "epsilon2_next_revenue"}
    # the labels of a cutoff never reach its clusters: scrambling them moves the
    # separation only (k, chosen without labels, stays)
    scrambled = snapshots.assign(label_spend=np.random.default_rng(0).permutation(
        snapshots["label_spend"].to_numpy()))
    other = evaluate_clusters(scrambled, seed=7, k_range=(2, 5), horizon_days=14,
                              step_days=7, n_cutoffs=3, silhouette_sample=500,
                              n_samples=20)
    assert {c: v["k"] for c, v in other.params["chosen_per_cutoff"].items()} == {
        c: v["k"] for c, v in run.params["chosen_per_cutoff"].items()}
    assert max(m.value for m in other.primary_metrics()) < 0.05


def test_short_history_skips_the_clusters_with_the_exact_need() -> None:
    run = evaluate_clusters_or_skip(evaluation_snapshots(days=30), seed=1, k_range=(2, 4),
                                    horizon_days=14, step_days=7, n_cutoffs=3)
    assert run.status == SKIPPED_INSUFFICIENT_HISTORY and run.run_kind == "evaluation"
    assert run.status_reason.startswith("needs 42 days of history, has 30")
    empty = evaluate_clusters_or_skip(evaluation_snapshots().iloc[:0], seed=1,
                                      k_range=(2, 4), horizon_days=14, step_days=7,
                                      n_cutoffs=3)
    assert empty.status == SKIPPED_INSUFFICIENT_HISTORY
    few = pd.concat([planted_customers(30, seed=5),
                     planted_customers(300, seed=6, role="score")], ignore_index=True)
    from ml.evaluation import InsufficientHistory
    with pytest.raises(InsufficientHistory, match="needs 50 customers"):
        train_clusters(few, seed=1, k_range=(2, 4))


def test_an_empty_cluster_frame_has_the_scores_columns_and_dtypes() -> None:
    snapshots = pd.concat([planted_customers(300, seed=3),
                           planted_customers(300, seed=4, role="score")],
                          ignore_index=True)
    run = train_clusters(snapshots, seed=7, k_range=(2, 4), silhouette_sample=300,
                         stability_seeds=1, n_samples=20)
    scores = score_clusters(run.model, snapshots[snapshots["snapshot_role"] == "score"])
    empty = empty_clusters()
    assert empty.empty and list(empty.columns) == list(scores.columns)
    for column in ("user_id", "cluster_id"):
        assert empty[column].dtype.kind == scores[column].dtype.kind, column


# --------------------------------------------------------------------------- warehouse

def test_clusters_are_stable_and_registered_beside_the_rfm_segments(synth_warehouse) -> None:
    metrics = {row[0]: row[1:] for row in query(synth_warehouse.database, """
        select metric, value, baseline, baseline_value, is_primary
        from ml_model_metrics
        where model_name = 'customer_clusters' and run_kind = 'production'""")}
    assert set(metrics) == {"eta2_log_next_revenue", "eta2_next_revenue",
                            "epsilon2_next_revenue", "silhouette", "stability_ari_mean",
                            "stability_ari_min"}
    assert metrics["eta2_log_next_revenue"][3] is True
    assert metrics["eta2_log_next_revenue"][1] == RFM_BASELINE
    assert metrics["stability_ari_min"][0] > 0.9
    # clusters are compact in their own space; RFM segments there are not
    assert metrics["silhouette"][0] > metrics["silhouette"][2]
    # the clustered customers are exactly fct_customer_rfm's buyers, cross-tabbed once
    counts = query(synth_warehouse.database, """
        select (select count(*) from ml_customer_clusters),
               (select count(*) from fct_customer_rfm),
               (select sum(customers) from rpt_customer_cluster_segments),
               (select count(*) from rpt_customer_cluster_segments
                where rfm_segment = 'not in fct_customer_rfm'),
               (select sum(revenue_share) from ml_customer_cluster_profiles)""")[0]
    assert counts[0] == counts[1] == counts[2] and counts[3] == 0
    assert counts[4] == pytest.approx(1.0)
    # the evaluation: three cutoffs, each with intervals; never confidently below RFM
    evaluation = query(synth_warehouse.database, """
        select cutoff, value, ci_low, ci_high, diff_ci_low, verdict
        from ml_model_metrics
        where model_name = 'customer_clusters' and run_kind = 'evaluation'
          and is_primary""")
    assert len(evaluation) == 3
    assert all(low <= value <= high and verdict in ("better", "inconclusive")
               for _, value, low, high, _, verdict in evaluation)


def test_clusters_separate_the_planted_buyer_state_better_than_rfm(
        synth_warehouse) -> None:
    """Planted truth: the generator's alive-at-the-end state and purchase rate of each
    human customer. Measured on the 2M demo: eta^2 of alive 0.134 by cluster vs 0.063
    by RFM segment; of log purchase rate 0.249 vs 0.299 (RFM's recency x frequency grid
    tracks the rate itself more closely)."""
    users = pd.read_parquet(synth_warehouse.dataset.truth_dir / "users.parquet")
    users = users[users["actor_type"] == "human"]
    rows = pd.DataFrame(query(synth_warehouse.database, """
        select clusters.user_id, clusters.cluster_id, rfm.segment
        from ml_customer_clusters as clusters
        inner join fct_customer_rfm as rfm using (user_id)"""),
        columns=["user_id", "cluster_id", "segment"]).merge(users, on="user_id")
    alive = rows["is_alive_end"].astype(float).to_numpy()
    assert eta_squared(alive, rows["cluster_id"]) > eta_squared(alive, rows["segment"])
    rate = np.log(rows["lambda_per_day"].to_numpy() + 1e-6)
    assert eta_squared(rate, rows["cluster_id"]) > 0.1
