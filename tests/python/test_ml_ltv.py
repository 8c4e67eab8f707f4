"""ml.ltv: normalized Gini, spend metrics and both CLV variants on small simulated
frames; the CLV runs on the shared generated warehouse against the baseline and the
planted BG/NBD state."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import roc_auc_score

from dbt_project import query
from ml.ltv import (LTV_BASELINE, LTV_FEATURES, bgnbd_summary, normalized_gini, score_ltv,
                    snapshot_role, spend_metrics, train_ltv)
from ml.registry import load_model, run_of, with_run

# --------------------------------------------------------------------------- small frames

SNAPSHOTS = (("train", 31), ("test", 61), ("score", 92))
HORIZON = 30
START = pd.Timestamp("2019-10-01")


def simulate_purchases(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Purchase days (day 0..91) of n customers drawn from a BG/NBD process (dropout
    after each repeat purchase), with Gamma spend per day: user_id, day, spend."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.6, 1 / 12.0, n)
    p = rng.beta(1.0, 4.0, n)
    value = rng.gamma(4.0, 1 / 0.05, n)  # mean spend per purchase day of each customer
    rows = []
    for user in range(n):
        day = rng.uniform(0, 60)
        first = True
        while day < 92:
            rows.append((user, int(day), rng.gamma(6.0, value[user] / 6.0)))
            if not first and rng.random() < p[user]:
                break
            first = False
            day += rng.exponential(1 / lam[user])
    frame = pd.DataFrame(rows, columns=["user_id", "day", "spend"])
    return frame.groupby(["user_id", "day"], as_index=False)["spend"].sum()


def snapshots_from(purchases: pd.DataFrame) -> pd.DataFrame:
    """The int_customer_features_snapshots columns ml.ltv reads, built in pandas (the
    behaviour features are noise: these customers have no sessions)."""
    frames = []
    for role, cut in SNAPSHOTS:
        before = purchases[purchases["day"] < cut]
        after = purchases[(purchases["day"] >= cut) & (purchases["day"] < cut + HORIZON)]
        last_h = before[before["day"] >= cut - HORIZON]
        g = before.sort_values("day").groupby("user_id")
        frame = pd.DataFrame({
            "first": g["day"].min(), "last": g["day"].max(), "purchase_days": g.size(),
            "monetary_total": g["spend"].sum(), "first_spend": g["spend"].first()})
        frame["spend_last_horizon"] = last_h.groupby("user_id")["spend"].sum()
        frame["purchase_days_last_horizon"] = last_h.groupby("user_id").size()
        frame["label_spend"] = after.groupby("user_id")["spend"].sum()
        frame = frame.fillna({"spend_last_horizon": 0.0, "purchase_days_last_horizon": 0,
                              "label_spend": 0.0}).reset_index()
        for name in LTV_FEATURES:
            if name not in frame:
                frame[name] = 0.0
        frame["recency_days"] = cut - frame["last"]
        frame["customer_age_days"] = cut - frame["first"]
        frame["monetary_mean"] = frame["monetary_total"] / frame["purchase_days"]
        frame["bgnbd_frequency"] = frame["purchase_days"] - 1
        frame["bgnbd_recency_days"] = frame["last"] - frame["first"]
        frame["bgnbd_monetary_value"] = ((frame["monetary_total"] - frame["first_spend"])
                                         / frame["bgnbd_frequency"].replace(0, np.nan))
        frame["snapshot_role"] = role
        frame["snapshot_date"] = START + pd.Timedelta(days=cut)
        frame["first_purchase_date"] = START + pd.to_timedelta(frame["first"], unit="D")
        frame["horizon_days"] = HORIZON
        if role == "score":
            frame["label_spend"] = np.nan
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_normalized_gini_of_perfect_constant_reversed_and_tied_rankings() -> None:
    actual = np.array([0.0, 0.0, 10.0, 30.0])
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(1.0)
    assert normalized_gini(actual, np.ones(4)) == pytest.approx(0.0)
    assert normalized_gini(actual, -actual) == pytest.approx(-1.0)
    # ties are averaged, not broken by row order: swapping tied rows changes nothing
    tied = np.array([5.0, 5.0, 1.0, 1.0])
    assert normalized_gini(actual, tied) == pytest.approx(
        normalized_gini(actual[::-1], tied[::-1]))
    assert np.isnan(normalized_gini(np.zeros(3), np.ones(3)))  # no revenue to rank


def test_spend_metrics_against_a_known_prediction() -> None:
    actual = np.array([0.0, 10.0, 30.0])
    metrics = spend_metrics(actual, np.array([5.0, 10.0, 45.0]))
    assert metrics["mae"] == pytest.approx(20 / 3)
    assert metrics["total_revenue_abs_rel_error"] == pytest.approx(20 / 40)
    assert metrics["spearman"] == pytest.approx(1.0)
    assert spend_metrics(actual, np.zeros(3))["spearman"] == 0.0


def test_bgnbd_summary_maps_snapshot_columns_in_days() -> None:
    frame = pd.DataFrame({"user_id": [1, 2], "bgnbd_frequency": [0, 2],
                          "bgnbd_recency_days": [0, 12], "customer_age_days": [5, 20],
                          "bgnbd_monetary_value": [np.nan, 25.0]})
    summary = bgnbd_summary(frame)
    assert summary[["frequency", "recency", "T"]].to_numpy().tolist() == [
        [0, 0, 5], [2, 12, 20]]
    assert np.isnan(summary.loc[0, "monetary_value"])


def test_snapshot_frame_puts_a_purchase_on_the_snapshot_day_in_the_label() -> None:
    purchases = pd.DataFrame({"user_id": [1, 1], "day": [10, 61], "spend": [5.0, 7.0]})
    test = snapshot_role(snapshots_from(purchases), "test")
    assert test.loc[0, "purchase_days"] == 1 and test.loc[0, "recency_days"] == 51
    assert test.loc[0, "label_spend"] == 7.0


@pytest.fixture(scope="module")
def simulated_runs():
    snapshots = snapshots_from(simulate_purchases())
    return snapshots, train_ltv(snapshots, seed=1, params={"n_jobs": 1})


def test_both_variants_are_recorded_beside_the_baseline(simulated_runs) -> None:
    snapshots, runs = simulated_runs
    assert [run.model_name for run in runs] == ["clv_bgnbd", "clv_xgboost"]
    for run in runs:
        assert {m.metric for m in run.metrics} == {
            "normalized_gini", "spearman", "mae", "total_revenue_abs_rel_error"}
        assert {m.baseline for m in run.metrics} == {LTV_BASELINE}
        assert {m.metric for m in run.primary_metrics()} == {"normalized_gini"}
        assert {m.split for m in run.metrics} == {"holdout"}
        assert str(run.label_window.start) == "2019-12-01"
    # on data drawn from BG/NBD, BG/NBD + GG out-ranks "past spend repeats"
    gini = next(m for m in runs[0].metrics if m.metric == "normalized_gini")
    assert gini.value > gini.baseline_value
    assert not runs[0].is_below_baseline()


def test_scores_carry_expectations_and_both_runs(simulated_runs) -> None:
    snapshots, runs = simulated_runs
    records = pd.concat([run.to_frame() for run in runs], ignore_index=True)
    bgnbd, xgboost = run_of(records, "clv_bgnbd"), run_of(records, "clv_xgboost")
    score = snapshot_role(snapshots, "score")
    scores = score_ltv(load_model(bgnbd["model_artifact"]),
                       load_model(xgboost["model_artifact"]), score)
    scores = with_run(with_run(scores, bgnbd), xgboost, prefix="xgboost_")
    assert len(scores) == len(score) and scores["user_id"].is_unique
    assert scores["p_alive"].between(0, 1).all()
    assert (scores["expected_spend"] >= 0).all()
    assert (scores["xgboost_expected_spend"] >= 0).all()
    np.testing.assert_allclose(scores["expected_spend"],
                               scores["expected_purchases"] * scores["expected_avg_spend"])
    assert scores["run_id"].iloc[0] == bgnbd["run_id"] != scores["xgboost_run_id"].iloc[0]
    assert {"is_model_below_baseline", "is_xgboost_below_baseline"} <= set(scores)
    # one-time buyers are alive for sure under BG/NBD
    assert (scores.loc[scores["frequency"] == 0, "p_alive"] == 1).all()


# --------------------------------------------------------------------------- warehouse

MIN_P_ALIVE_AUC_REPEAT_BUYERS = 0.65


def test_clv_variants_beat_the_past_spend_baseline(synth_warehouse) -> None:
    rows = query(synth_warehouse.database, """
        select model_name, value, baseline_value
        from ml_model_metrics
        where model_name in ('clv_bgnbd', 'clv_xgboost') and metric = 'normalized_gini'""")
    assert {r[0] for r in rows} == {"clv_bgnbd", "clv_xgboost"}
    for model_name, value, baseline_value in rows:
        assert value > baseline_value, (model_name, value, baseline_value)


def test_p_alive_tracks_the_planted_alive_state(synth_warehouse) -> None:
    """P(alive) of the production BG/NBD against the planted is_alive_end (humans).

    BG/NBD puts P(alive) = 1 for every one-time buyer, while the generator lets a
    customer drop out after any purchase (the first included), so the ranking is only
    informative among repeat buyers; over all customers the correlation is positive.
    """
    users = pd.read_parquet(synth_warehouse.dataset.truth_dir / "users.parquet")
    users = users[users["actor_type"] == "human"]
    scores = pd.DataFrame(query(synth_warehouse.database,
                                "select user_id, frequency, p_alive from ml_customer_ltv"),
                          columns=["user_id", "frequency", "p_alive"]).merge(users,
                                                                             on="user_id")
    alive = scores["is_alive_end"].astype(float)
    correlation, p_value = pearsonr(scores["p_alive"], alive)
    assert correlation > 0 and p_value < 0.01, (correlation, p_value)
    repeat = scores["frequency"] > 0
    auc = roc_auc_score(alive[repeat], scores.loc[repeat, "p_alive"])
    assert auc >= MIN_P_ALIVE_AUC_REPEAT_BUYERS, auc


def test_too_short_a_history_is_a_clear_error() -> None:
    import pandas as pd
    import pytest

    from ml.ltv import snapshot_windows

    only_scores = pd.DataFrame({
        "snapshot_role": ["score"], "snapshot_date": [pd.Timestamp("2019-10-03")],
        "horizon_days": [30], "first_purchase_date": [pd.Timestamp("2019-10-01")],
    })
    with pytest.raises(ValueError, match="no customer in the test, train snapshot"):
        snapshot_windows(only_scores)
