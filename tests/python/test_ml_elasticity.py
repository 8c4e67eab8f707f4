"""Price elasticity (ml/elasticity.py): the estimator on simulated frames, the placebo, the
recommendation rule, and the planted truth on the shared synthetic warehouse."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from dbt_project import query
from ml.elasticity import (
    ElasticityModel,
    empty_category_frame,
    empty_product_frame,
    empty_recommendations,
    evaluate_price_elasticity,
    cluster_robust_inference,
    estimate_category_elasticities,
    estimate_product_elasticities,
    fit_ppml_fe,
    optimal_price_ratio,
    prepare_cells,
    price_recommendations,
    recommend_prices,
    shuffle_within,
    train_price_elasticity,
    with_run_columns,
)
from ml.evaluation import InsufficientHistory, train_or_skip
from ml.registry import SKIPPED_INSUFFICIENT_HISTORY, is_trained


def simulate_cells(elasticities: dict[str, float], products: int = 150, days: int = 40,
                   seed: int = 0, views_mean: float = 30.0) -> pd.DataFrame:
    """Product x day cells drawn like the generator: a price random walk around a base
    price, views independent of price, purchases Binomial(views, c0 (p / base) ** e x day
    and product effects)."""
    rng = np.random.default_rng(seed)
    frames = []
    start = pd.Timestamp("2019-10-01")
    for k, (name, e) in enumerate(elasticities.items()):
        base = np.exp(rng.normal(4, 1, products))
        pop = np.exp(rng.normal(0, 0.5, products))
        conv = 0.02 * np.exp(rng.normal(0, 0.3, products))
        day_fx = np.exp(rng.normal(0, 0.2, days))
        steps = rng.choice([0.0, 0.0, 0.0, -0.15, 0.15], (products, days))
        logm = np.clip(np.cumsum(steps, axis=1), -0.4, 0.4)
        price = np.round(base[:, None] * np.exp(logm), 2)
        views = rng.poisson(views_mean * pop[:, None] * day_fx[None, :])
        prob = np.minimum(conv[:, None] * day_fx[None, :] * np.exp(e * logm), 0.97)
        purchases = rng.binomial(views, prob)
        pid = np.repeat(np.arange(products) + 1000 * (k + 1), days)
        frames.append(pd.DataFrame({
            "product_id": pid,
            "event_date": np.tile(start + pd.to_timedelta(np.arange(days), "D"), products),
            "price": price.ravel(),
            "category_l1": name,
            "views": views.ravel(),
            "carts": 0,
            "purchases": purchases.ravel(),
        }))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------

def test_ppml_recovers_known_elasticity_with_covering_interval():
    cells = prepare_cells(simulate_cells({"a": -1.8}, products=400, seed=1))
    est, _ = estimate_category_elasticities(cells)
    row = est.iloc[0]
    assert row["elasticity"] == pytest.approx(-1.8, abs=0.2)  # ~3 standard errors
    assert row["ci_low"] < -1.8 < row["ci_high"]
    assert 0 < row["std_error"] < 0.1


def test_ppml_matches_statsmodels_glm_with_dummies():
    cells = prepare_cells(simulate_cells({"a": -1.2}, products=25, days=15, seed=2))
    product = pd.factorize(cells["product_id"], sort=True)[0]
    day = pd.factorize(cells["event_date"], sort=True)[0]
    y = cells["purchases"].to_numpy(dtype=float)
    x = cells[["log_price"]].to_numpy()
    fit = fit_ppml_fe(y, x, cells["log_views"].to_numpy(), product, day)
    dummies = pd.get_dummies(pd.DataFrame({"p": product, "d": day}).astype(str),
                             drop_first=True).astype(float)
    exog = sm.add_constant(np.column_stack([x, dummies.to_numpy()]))
    glm = sm.GLM(y, exog, family=sm.families.Poisson(),
                 offset=cells["log_views"].to_numpy()).fit(
        cov_type="cluster", cov_kwds={"groups": product})
    assert fit.converged
    assert fit.beta[0] == pytest.approx(glm.params[1], abs=1e-6)
    inf = cluster_robust_inference(fit, y, x, product, day)
    # same sandwich; only the small-sample factor (N-1)/(N-K) differs (K counts dummies)
    n, k = len(y), exog.shape[1]
    assert inf["se"][0] == pytest.approx(glm.bse[1] / np.sqrt((n - 1) / (n - k)), rel=1e-3)


def test_all_zero_groups_are_dropped_not_fatal():
    cells = prepare_cells(simulate_cells({"a": -1.0}, products=30, days=10, seed=3))
    cells.loc[cells["product_id"] == cells["product_id"].iloc[0], "purchases"] = 0
    est, fits = estimate_category_elasticities(cells)
    assert np.isfinite(est["elasticity"].iloc[0])
    assert np.isneginf(fits["a"].product_effect.iloc[0])


def test_two_categories_and_category_fallback_for_missing_code():
    raw = simulate_cells({"x": -2.2, "y": -0.7}, seed=4)
    raw["category_l1"] = raw["category_l1"].where(raw["category_l1"] == "x", None)
    est, _ = estimate_category_elasticities(prepare_cells(raw))
    got = est.set_index("category_l1")["elasticity"]
    assert set(got.index) == {"x", "unknown"}
    assert got["x"] == pytest.approx(-2.2, abs=0.2)
    assert got["unknown"] == pytest.approx(-0.7, abs=0.2)


def test_product_level_estimate_matches_statsmodels_sandwich():
    cells = prepare_cells(simulate_cells({"a": -1.5}, products=60, days=60, seed=5,
                                         views_mean=80))
    _, fits = estimate_category_elasticities(cells)
    prods = estimate_product_elasticities(cells, fits)
    target = prods.loc[prods["elasticity"].notna()].sort_values("purchases").iloc[-1]
    one = cells.loc[cells["product_id"] == target["product_id"]].copy()
    one["gamma"] = one["event_date"].map(fits["a"].day_effect)
    glm = sm.GLM(one["purchases"].to_numpy(float), sm.add_constant(one["log_price"].to_numpy()),
                 family=sm.families.Poisson(),
                 offset=(one["log_views"] + one["gamma"]).to_numpy()).fit(cov_type="HC0")
    assert target["elasticity"] == pytest.approx(glm.params[1], abs=1e-6)
    # HC1 = HC0 x n / (n - 2) (statsmodels' GLM does not apply the factor)
    n = len(one)
    assert target["std_error"] == pytest.approx(glm.bse[1] * np.sqrt(n / (n - 2)), rel=1e-6)
    ok = prods["elasticity"].notna()
    assert prods.loc[ok, "elasticity"].median() == pytest.approx(-1.5, abs=0.3)


def test_single_price_products_have_no_own_estimate():
    cells = simulate_cells({"a": -1.0}, products=40, days=20, seed=6)
    first = cells["product_id"] == cells["product_id"].iloc[0]
    cells.loc[first, "price"] = 10.0
    cells = prepare_cells(cells)
    _, fits = estimate_category_elasticities(cells)
    prods = estimate_product_elasticities(cells, fits).set_index("product_id")
    assert np.isnan(prods.loc[cells["product_id"].iloc[0], "elasticity"])


# --------------------------------------------------------------------------------------
# Placebo and evaluation
# --------------------------------------------------------------------------------------

def test_shuffle_within_permutes_inside_groups_only_and_is_seeded():
    values = np.arange(12.0)
    groups = np.array([2, 1, 2, 1, 3, 3, 2, 1, 3, 2, 1, 3])
    out = shuffle_within(values, groups, seed=9)
    for g in np.unique(groups):
        assert sorted(out[groups == g]) == sorted(values[groups == g])
    assert np.array_equal(out, shuffle_within(values, groups, seed=9))
    assert not np.array_equal(out, values)


def test_placebo_gives_about_zero():
    cells = prepare_cells(simulate_cells({"a": -2.0}, seed=7))
    placebo = cells.assign(log_price=shuffle_within(cells["log_price"].to_numpy(),
                                                    cells["product_id"].to_numpy(), 42))
    est, _ = estimate_category_elasticities(placebo)
    row = est.iloc[0]
    assert abs(row["elasticity"]) < 0.2
    assert row["ci_low"] < 0 < row["ci_high"]


def test_training_run_beats_no_price_baseline_and_records_placebo():
    raw = simulate_cells({"a": -2.0, "b": -0.8}, days=60, seed=8)
    run = train_price_elasticity(raw, cutoff_date="2019-11-15", horizon_days=15, seed=42)
    primary = run.primary_metrics()
    assert len(primary) == 1 and primary[0].metric == "poisson_deviance"
    assert primary[0].split == "validation" and primary[0].baseline == "no_price_effect"
    assert primary[0].verdict() == "better" and not run.is_below_baseline()
    assert primary[0].ci_low <= primary[0].value <= primary[0].ci_high
    assert {d["feature"] for d in run.drift} == {"log_price", "log_views"}
    metrics = {(m.metric, m.split): m.value for m in run.metrics}
    assert metrics[("elasticity__a", "full")] == pytest.approx(-2.0, abs=0.2)
    assert metrics[("mean_abs_elasticity", "placebo")] < 0.2
    assert ("elasticity__b", "placebo") in metrics
    frame = run.to_frame()
    assert frame["model_name"].iloc[0] == "price_elasticity"
    assert str(frame["train_end"].iloc[0].date()) == "2019-11-15"


def test_training_run_without_price_effect_does_not_beat_baseline_by_much():
    raw = simulate_cells({"a": 0.0}, days=60, seed=10)
    run = train_price_elasticity(raw, horizon_days=15, seed=42)
    primary = run.primary_metrics()[0]
    assert primary.value == pytest.approx(primary.baseline_value, rel=0.01)
    assert primary.verdict() != "better"


def test_evaluation_scores_three_cutoffs_out_of_time():
    raw = simulate_cells({"a": -2.0, "b": -0.8}, days=60, seed=8)
    run = evaluate_price_elasticity(raw, horizon_days=14, step_days=7, n_cutoffs=3,
                                    n_bootstrap=50)
    assert run.run_kind == "evaluation" and run.model is None
    assert run.params["cutoffs"] == ["2019-11-02", "2019-11-09", "2019-11-16"]
    primary = run.primary_metrics()
    assert [m.cutoff.isoformat() for m in primary] == run.params["cutoffs"]
    assert all(m.split == "test" and m.verdict() == "better" for m in primary)
    # a cutoff's figure reads nothing after its window: change the later cells
    changed = raw.copy()
    later = pd.to_datetime(changed["event_date"]) >= pd.Timestamp("2019-11-16")
    changed.loc[later, "purchases"] = 0
    other = evaluate_price_elasticity(changed, horizon_days=14, step_days=7, n_cutoffs=3,
                                      n_bootstrap=50)
    assert other.primary_metrics()[0] == primary[0]
    assert other.primary_metrics()[2] != primary[2]


def test_short_cells_skip_and_publish_empty_tables():
    raw = simulate_cells({"a": -2.0}, days=20, seed=8)
    with pytest.raises(InsufficientHistory, match="needs 28 days of history, has 20"):
        train_price_elasticity(raw, horizon_days=14)
    with pytest.raises(InsufficientHistory, match="needs 42 days of history, has 20"):
        evaluate_price_elasticity(raw, horizon_days=14)
    run = train_or_skip("price_elasticity",
                        lambda: train_price_elasticity(raw, horizon_days=14))
    assert run.status == SKIPPED_INSUFFICIENT_HISTORY
    record = run.to_frame().iloc[0]
    assert not is_trained(record)
    con = duckdb.connect()
    for empty in (empty_category_frame(), empty_product_frame(), empty_recommendations()):
        out = with_run_columns(empty, record)
        assert out.empty and out.columns[0] == "run_id"
        con.register("scores", out)
        types = {r[0]: r[1] for r in con.sql("describe select * from scores").fetchall()}
        assert types["run_id"] == "VARCHAR" and "NULL" not in types.values(), types
        assert types["is_model_below_baseline"] == "BOOLEAN"


def test_a_category_without_enough_data_is_null_with_a_reason():
    raw = simulate_cells({"a": -2.0, "b": -0.8}, days=60, seed=8)
    raw.loc[raw["category_l1"] == "b", "purchases"] = 0
    run = train_price_elasticity(raw, horizon_days=14, n_bootstrap=20)
    by_name = {(m.metric, m.split): m for m in run.metrics}
    b = by_name[("elasticity__b", "full")]
    assert b.value is None and "not estimable" in b.undefined_reason
    assert by_name[("elasticity__a", "full")].value is not None
    assert not run.is_below_baseline()
    # nothing to score at all: the primary metric is undefined, not a failure
    raw.loc[:, "purchases"] = 0
    raw.loc[raw.index[:5], "purchases"] = 1
    empty = train_price_elasticity(raw, horizon_days=14, n_bootstrap=20)
    (primary,) = empty.primary_metrics()
    assert primary.value is None and primary.undefined_reason
    assert primary.verdict() is None and not empty.is_below_baseline()


# --------------------------------------------------------------------------------------
# Recommendations
# --------------------------------------------------------------------------------------

def test_band_edges_for_revenue():
    m = optimal_price_ratio(np.array([-2.5, -1.2, -0.8, -0.2, 0.3, -1.0, np.nan]), 0.1)
    assert m[:5].tolist() == pytest.approx([0.9, 0.9, 1.1, 1.1, 1.1])
    assert m[5] == 1.0 and np.isnan(m[6])


def test_margin_objective_uses_the_lerner_price_clipped_to_the_band():
    # e = -3, c = 0.5: m* = e c / (1 + e) = 0.75
    assert optimal_price_ratio(np.array([-3.0]), 0.3, 0.5)[0] == pytest.approx(0.75)
    assert optimal_price_ratio(np.array([-3.0]), 0.1, 0.5)[0] == pytest.approx(0.9)
    # e = -2, c = 0.7: m* = 1.4, so a cost-heavy product is raised although demand is
    # elastic (revenue alone would cut it)
    assert optimal_price_ratio(np.array([-2.0]), 0.1, 0.7)[0] == pytest.approx(1.1)
    assert optimal_price_ratio(np.array([-2.0]), 0.1)[0] == pytest.approx(0.9)
    assert optimal_price_ratio(np.array([-0.5]), 0.1, 0.3)[0] == pytest.approx(1.1)


@pytest.mark.parametrize("cost_ratio", [None, 0.0, 0.4, 0.8])
def test_optimum_matches_a_grid_search(cost_ratio):
    grid = np.linspace(0.85, 1.15, 3001)
    c = 0.0 if cost_ratio is None else cost_ratio
    for e in (-4.0, -2.2, -1.3, -0.9, -0.3):
        best = grid[np.argmax((grid - c) * grid ** e)]
        assert optimal_price_ratio(np.array([e]), 0.15, cost_ratio)[0] == \
            pytest.approx(best, abs=2e-4)


def test_recommend_prices_effects_and_uncertainty():
    products = pd.DataFrame({
        "product_id": [1, 2],
        "elasticity_used": [-2.0, -0.5],
        "elasticity_used_ci_low": [-2.4, -0.9],
        "elasticity_used_ci_high": [-1.6, -0.1],
    })
    current = pd.DataFrame({"product_id": [1, 2], "current_price": [100.0, 50.0],
                            "units_per_day": [2.0, 4.0], "revenue_per_day": [200.0, 200.0]})
    rec = recommend_prices(products, current, band=0.1).set_index("product_id")
    assert rec.loc[1, "price_change"] == pytest.approx(-0.1)
    assert rec.loc[1, "recommended_price"] == pytest.approx(90.0)
    assert rec.loc[1, "expected_units_change"] == pytest.approx(0.9 ** -2 - 1)
    assert rec.loc[1, "expected_revenue_change"] == pytest.approx(0.9 ** -1 - 1)
    assert rec.loc[2, "price_change"] == pytest.approx(0.1)
    assert rec.loc[2, "expected_revenue_change"] == pytest.approx(1.1 ** 0.5 - 1)
    for name in ("units", "revenue"):
        assert (rec[f"expected_{name}_change_low"] <= rec[f"expected_{name}_change"]).all()
        assert (rec[f"expected_{name}_change"] <= rec[f"expected_{name}_change_high"]).all()
    assert rec["is_direction_robust"].all()
    assert rec.loc[1, "expected_revenue_per_day_delta"] == pytest.approx(200 * (1 / 0.9 - 1))
    margin = recommend_prices(products, current, band=0.1, cost_ratio=0.7)
    assert margin["price_change"].tolist() == pytest.approx([0.1, 0.1])
    assert (margin["objective"] == "margin").all()
    with pytest.raises(ValueError):
        recommend_prices(products, current, cost_ratio=1.2)


def test_price_recommendations_fall_back_to_the_category():
    categories = pd.DataFrame({"category_l1": ["a", "b"], "elasticity": [-2.0, -0.1],
                               "ci_low": [-2.3, -0.5], "ci_high": [-1.7, 0.3]})
    products = pd.DataFrame({
        "product_id": [1, 2, 3], "category_l1": ["a", "a", "b"], "n_cells": [50, 50, 50],
        "n_prices": [3, 3, 3], "views": [900, 900, 900], "purchases": [80, 5, 80],
        "elasticity": [-0.6, -3.0, -1.0], "std_error": [0.1, 2.0, 2.0],
        "ci_low": [-0.8, -7.0, -5.0], "ci_high": [-0.4, 1.0, 3.0],
        "is_reliable": [True, False, False]})
    model = ElasticityModel(categories=categories, products=products, placebo=categories,
                            reliability={}, last_date=None)
    current = pd.DataFrame({"product_id": [1, 2, 3, 4], "category_l1": ["a", "a", "b", "a"],
                            "current_price": [10.0, 10.0, 10.0, 10.0],
                            "units_per_day": [1.0, 1.0, 1.0, 1.0],
                            "revenue_per_day": [10.0, 10.0, 10.0, 10.0]})
    rec = price_recommendations(model, current).set_index("product_id")
    # 1: own reliable (inelastic: raise); 2: category a (elastic: cut); 3: category b's CI
    # covers 0, no row; 4: never estimated, category a
    assert rec.index.tolist() == [1, 2, 4]
    assert rec["elasticity_source"].tolist() == ["product", "category", "category"]
    assert rec["price_change"].tolist() == pytest.approx([0.1, -0.1, -0.1])


# --------------------------------------------------------------------------------------
# Planted truth on the shared synthetic warehouse (600k events, 92 days)
# --------------------------------------------------------------------------------------

# What the 600k fixture supports. Most of its categories have 340-440 purchases and standard
# errors of 0.14-0.37, so +-0.3 would be under one standard error for some: +-0.3 is
# asserted for the categories with at least LARGE_CATEGORY_PURCHASES purchases (at seed 7:
# electronics and the unknown pseudo-category, SE <= 0.15); every category must be within
# 3 standard errors, and the 95% intervals may miss the truth at most twice in eleven. The
# issue's +-0.3 for every category holds on the 2M demo (README, Models: 11 of 11).
LARGE_CATEGORY_PURCHASES = 500
TOLERANCE = 0.3


@pytest.fixture(scope="module")
def estimates(synth_warehouse) -> pd.DataFrame:
    rows = query(synth_warehouse.database, """
        select category_l1, elasticity, std_error, ci_low, ci_high, placebo_elasticity,
               placebo_std_error, purchases, has_enough_data, is_model_below_baseline
        from ml_price_elasticity
    """)
    est = pd.DataFrame(rows, columns=["category_l1", "elasticity", "std_error", "ci_low",
                                      "ci_high", "placebo_elasticity", "placebo_std_error",
                                      "purchases",
                                      "has_enough_data", "is_model_below_baseline"])
    truth = pd.read_parquet(synth_warehouse.dataset.truth_dir / "categories.parquet")
    return est.merge(truth[["category_l1", "elasticity"]].rename(
        columns={"elasticity": "truth"}), on="category_l1", how="inner")


def test_planted_category_elasticities_recovered(estimates):
    est = estimates.loc[estimates["has_enough_data"]]
    assert len(est) == 11
    large = est.loc[est["purchases"] >= LARGE_CATEGORY_PURCHASES]
    assert len(large) >= 2
    assert ((large["elasticity"] - large["truth"]).abs() <= TOLERANCE).all(), large
    assert ((est["elasticity"] - est["truth"]).abs() <= 3 * est["std_error"]).all(), est
    # 95% intervals: at most two of eleven may miss the truth (P ~ 0.98 under correct
    # coverage)
    covered = (est["ci_low"] <= est["truth"]) & (est["truth"] <= est["ci_high"])
    assert covered.sum() >= len(est) - 2, est


def test_placebo_and_guardrail(synth_warehouse, estimates):
    est = estimates.loc[estimates["has_enough_data"]]
    # placebo: about zero, i.e. within sampling noise (placebo SE 0.08-0.26 here)
    z = est["placebo_elasticity"].abs() / est["placebo_std_error"]
    assert (z < 3).all(), est
    assert est["placebo_elasticity"].abs().mean() < 0.25
    assert not est["is_model_below_baseline"].any()
    rows = query(synth_warehouse.database, """
        select metric, split, value, baseline_value, beats_baseline, is_primary
        from ml_model_metrics
        where model_name = 'price_elasticity' and run_kind = 'production'
    """)
    metrics = {(r[0], r[1]): r for r in rows}
    primary = metrics[("poisson_deviance", "validation")]
    assert primary[5] and primary[4] and primary[2] < primary[3]
    cutoffs = query(synth_warehouse.database, """
        select cutoff, verdict, ci_low, value, ci_high from ml_model_metrics
        where model_name = 'price_elasticity' and run_kind = 'evaluation' and is_primary
    """)
    assert len(cutoffs) == 3
    assert all(v != "worse" and lo <= x <= hi for _, v, lo, x, hi in cutoffs), cutoffs
    assert metrics[("mean_abs_elasticity", "placebo")][2] < 0.25
    assert metrics[("mean_abs_elasticity", "full")][2] > 1.0


def test_recommendations_are_bounded_and_flagged(synth_warehouse):
    rows = query(synth_warehouse.database, """
        select count(*), min(price_change), max(price_change),
               count(*) filter (where elasticity_source = 'product'),
               count(*) filter (where recommended_price <= 0),
               count(distinct run_id)
        from rpt_price_recommendations
    """)
    n, lo, hi, own, nonpositive, runs = rows[0]
    assert n > 0 and runs == 1 and nonpositive == 0
    assert lo >= -0.1 - 1e-9 and hi <= 0.1 + 1e-9
