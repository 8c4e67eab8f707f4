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
    TRAFFIC,
    ElasticityModel,
    _holdouts,
    cluster_robust_inference,
    combine_demand,
    empty_category_frame,
    empty_product_frame,
    empty_recommendations,
    estimate_category_elasticities,
    estimate_product_elasticities,
    evaluate_price_elasticity,
    fit_ppml_fe,
    informative_products,
    prepare_cells,
    price_recommendations,
    price_scenarios,
    shrink_to_category,
    shuffle_within,
    traffic_cells,
    train_price_elasticity,
    with_run_columns,
)
from ml.evaluation import InsufficientHistory, train_or_skip
from ml.registry import SKIPPED_INSUFFICIENT_HISTORY, is_trained


def simulate_cells(elasticities: dict[str, float], products: int = 150, days: int = 40,
                   seed: int = 0, views_mean: float = 30.0,
                   traffic: dict[str, float] | None = None) -> pd.DataFrame:
    """Product x day cells drawn like the generator: a price random walk around a base
    price, views Poisson(mean x popularity x day effect x (p / base) ** t) with t the
    category's `traffic` elasticity (default 0: views independent of price), purchases
    Binomial(views, c0 (p / base) ** e x day and product effects)."""
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
        t = (traffic or {}).get(name, 0.0)
        views = rng.poisson(views_mean * pop[:, None] * day_fx[None, :] * np.exp(t * logm))
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
    target = prods.loc[prods["elasticity"].notna()].sort_values("total").iloc[-1]
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


def test_traffic_cells_fill_zero_view_days_and_carry_the_last_price():
    cells = pd.DataFrame({
        "product_id": [1, 1, 1, 1, 2, 2, 3, 3, 3],
        "event_date": ["2019-10-01", "2019-10-03", "2019-10-04", "2019-10-04",
                       "2019-10-01", "2019-10-02", "2019-10-01", "2019-10-02",
                       "2019-10-03"],
        "price": [10.0, 12.0, 0.0, 12.0, 5.0, 5.0, 0.0, 7.0, 8.0],
        "category_l1": "a", "views": [4, 2, 1, 3, 1, 1, 5, 1, 1], "purchases": 0})
    out = traffic_cells(cells)
    # product 2 has a single price: no information on the slope, left out
    assert out["product_id"].unique().tolist() == [1, 3]
    one = out.loc[out["product_id"] == 1]
    # the zero-view day 2 is kept at the carried price; day 4's glitch views are traffic
    assert one["views"].tolist() == [4, 0, 2, 4]
    assert np.exp(one["log_price"]).tolist() == pytest.approx([10, 10, 12, 12])
    # a first day with only a displayed 0 takes the next day's price
    three = out.loc[out["product_id"] == 3]
    assert np.exp(three["log_price"]).tolist() == pytest.approx([7, 7, 8])
    assert three["views"].tolist() == [5, 1, 1]


def _both_fits(raw: pd.DataFrame):
    conv = informative_products(prepare_cells(raw))
    traffic = traffic_cells(raw)
    c, c_fits = estimate_category_elasticities(conv)
    t, t_fits = estimate_category_elasticities(traffic, model=TRAFFIC)
    return t, c, combine_demand(t_fits, c_fits)


def test_traffic_conversion_and_demand_are_each_recovered():
    raw = simulate_cells({"a": -1.5}, products=300, days=40, seed=11, traffic={"a": -0.8})
    t, c, d = (frame.iloc[0] for frame in _both_fits(raw))
    for row, truth in ((t, -0.8), (c, -1.5), (d, -2.3)):
        assert row["elasticity"] == pytest.approx(truth, abs=3 * row["std_error"])
    assert t["std_error"] < c["std_error"]  # views are plentiful, purchases are not
    # the demand's variance is the joint one: both variances and twice their covariance
    assert d["std_error"] ** 2 == pytest.approx(
        t["std_error"] ** 2 + c["std_error"] ** 2 + 2 * d["covariance"], rel=1e-9)


def test_joint_standard_error_matches_the_spread_over_samples():
    estimates, errors = [], []
    # 150 products: with few (effective) clusters the cluster-robust errors are too small
    # (about 20% at 60 products here), as for any clustered sandwich
    for seed in range(20):
        raw = simulate_cells({"a": -1.2}, products=150, days=20, seed=100 + seed,
                             traffic={"a": -0.5})
        d = _both_fits(raw)[2].iloc[0]
        estimates.append(d["elasticity"])
        errors.append(d["std_error"])
    # 20 draws: the sample sd is within +-35% of the truth with probability ~0.97
    assert np.std(estimates, ddof=1) == pytest.approx(np.mean(errors), rel=0.35)
    assert np.mean(estimates) == pytest.approx(-1.7, abs=3 * np.mean(errors) / np.sqrt(20))


def test_traffic_placebo_is_about_zero():
    raw = simulate_cells({"a": -1.0}, products=200, seed=13, traffic={"a": -1.2})
    traffic = traffic_cells(raw)
    shuffled = traffic.assign(log_price=shuffle_within(
        traffic["log_price"].to_numpy(), traffic["product_id"].to_numpy(), 42))
    real, _ = estimate_category_elasticities(traffic, model=TRAFFIC)
    placebo, _ = estimate_category_elasticities(shuffled, model=TRAFFIC)
    assert real["elasticity"].iloc[0] == pytest.approx(-1.2, abs=0.15)
    assert abs(placebo["elasticity"].iloc[0]) < 3 * placebo["std_error"].iloc[0]


def test_validation_fit_takes_products_and_prices_from_training_days_only():
    from ml.elasticity import _raw_cells
    raw = simulate_cells({"a": -1.5}, products=60, days=40, seed=12)
    late = raw["product_id"] == raw["product_id"].iloc[0]
    before = pd.to_datetime(raw["event_date"]) < pd.Timestamp("2019-10-25")
    raw.loc[late & before, "price"] = 20.0  # one price before the cutoff,
    raw.loc[late & ~before, "price"] = 25.0  # another after it
    cells = _raw_cells(raw, None, 0)
    dates = cells["event_date"]
    conversion, traffic = _holdouts(cells.loc[dates < "2019-10-25"],
                                    cells.loc[dates >= "2019-10-25"], 0)
    target = raw["product_id"].iloc[0]
    # the later price gives the product no price variation in the training days: it is
    # not fitted, so not scored
    assert target not in set(conversion["product_id"]) | set(traffic["product_id"])
    assert conversion["product_id"].nunique() > 40 and traffic["product_id"].nunique() > 40


def _noisy_products(spread: float, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 400
    truth = -1.0 + rng.normal(0.0, spread, n)
    se = np.where(np.arange(n) % 2 == 0, 0.05, 2.0)
    return pd.DataFrame({"product_id": np.arange(n), "category_l1": "a",
                         "elasticity": truth + rng.normal(0.0, se), "std_error": se}), truth


def test_partial_pooling_keeps_precise_products_and_shrinks_noisy_ones():
    products, truth = _noisy_products(spread=0.5)
    extra = pd.DataFrame({"product_id": [999], "category_l1": ["a"], "elasticity": [np.nan],
                          "std_error": [np.nan]})
    category = pd.DataFrame({"category_l1": ["a"], "elasticity": [-1.0], "std_error": [0.02]})
    out = shrink_to_category(pd.concat([products, extra]), category).set_index("product_id")
    assert out["tau"].iloc[0] == pytest.approx(0.5, abs=0.1)
    precise, noisy = products["std_error"] < 1, products["std_error"] > 1
    assert (out.loc[products.loc[precise, "product_id"], "own_weight"] > 0.95).all()
    assert (out.loc[products.loc[noisy, "product_id"], "own_weight"] < 0.1).all()
    pooled = out.loc[products["product_id"], "pooled_elasticity"].to_numpy()
    own = products["elasticity"].to_numpy()
    # pooling beats the own estimates on the noisy products by far, and loses nothing
    # on the precise ones
    assert np.mean((pooled - truth)[noisy] ** 2) < 0.2 * np.mean((own - truth)[noisy] ** 2)
    assert np.mean((pooled - truth)[precise] ** 2) < 1.1 * np.mean((own - truth)[precise] ** 2)
    # a product without its own estimate: the category's, with the spread as uncertainty
    assert out.loc[999, "pooled_elasticity"] == pytest.approx(-1.0)
    assert out.loc[999, "pooled_std_error"] == pytest.approx(
        np.hypot(out["tau"].iloc[0], 0.02))


def test_partial_pooling_without_a_real_spread_gives_the_category():
    products, _ = _noisy_products(spread=0.0, seed=1)
    category = pd.DataFrame({"category_l1": ["a"], "elasticity": [-1.0], "std_error": [0.02]})
    out = shrink_to_category(products, category)
    assert out["tau"].iloc[0] < 0.05
    assert (out["pooled_elasticity"] - -1.0).abs().max() < 0.1


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
    raw = simulate_cells({"a": -2.0, "b": -0.8}, days=60, seed=8, traffic={"a": -0.6})
    planted = pd.DataFrame({"category_l1": ["a", "b"], "traffic_elasticity": [-0.6, 0.0],
                            "conversion_elasticity": [-2.0, -0.8],
                            "demand_elasticity": [-2.6, -0.8]})
    run = train_price_elasticity(raw, cutoff_date="2019-11-15", horizon_days=15, seed=42,
                                 planted=planted)
    primary = run.primary_metrics()
    assert len(primary) == 1 and primary[0].metric == "poisson_deviance"
    assert primary[0].split == "validation" and primary[0].baseline == "no_price_effect"
    assert primary[0].verdict() == "better" and not run.is_below_baseline()
    assert primary[0].ci_low <= primary[0].value <= primary[0].ci_high
    assert {d["feature"] for d in run.drift} == {"log_price", "log_views"}
    by_name = {(m.metric, m.split): m for m in run.metrics}
    traffic_dev = by_name[("traffic_poisson_deviance", "validation")]
    assert not traffic_dev.is_primary and traffic_dev.verdict() == "better"
    metrics = {key: m.value for key, m in by_name.items()}
    assert metrics[("conversion_elasticity__a", "full")] == pytest.approx(-2.0, abs=0.2)
    assert metrics[("traffic_elasticity__a", "full")] == pytest.approx(-0.6, abs=0.1)
    assert metrics[("traffic_elasticity__b", "full")] == pytest.approx(0.0, abs=0.1)
    assert metrics[("demand_elasticity__a", "full")] == pytest.approx(-2.6, abs=0.25)
    for kind in ("demand", "traffic", "conversion"):
        assert metrics[(f"mean_abs_{kind}_elasticity", "placebo")] < 0.2
        assert (f"{kind}_elasticity__b", "placebo") in metrics
        assert metrics[(f"max_abs_{kind}_elasticity_error", "planted_truth")] < 0.25
    assert metrics[("demand_elasticity_error__a", "planted_truth")] == pytest.approx(
        metrics[("demand_elasticity__a", "full")] + 2.6)
    # every product gets a pooled demand elasticity; no selection on significance
    products = run.model.products
    assert products["elasticity"].notna().all() and len(products) == 300
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
    for kind in ("demand", "conversion"):
        b = by_name[(f"{kind}_elasticity__b", "full")]
        assert b.value is None and "not estimable" in b.undefined_reason
        assert by_name[(f"{kind}_elasticity__a", "full")].value is not None
    # views carry the traffic side whether or not anything sold
    assert by_name[("traffic_elasticity__b", "full")].value is not None
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

def _scenario_input(elasticity, std_error, price=100.0, units=2.0) -> pd.DataFrame:
    n = len(elasticity)
    return pd.DataFrame({"product_id": np.arange(1, n + 1), "category_l1": "a",
                         "current_price": price, "units_per_day": units,
                         "revenue_per_day": price * units, "elasticity": elasticity,
                         "std_error": std_error, "elasticity_source": "product"})


def test_scenarios_give_units_revenue_and_their_intervals():
    out = price_scenarios(_scenario_input([-2.0], [0.0]), band=0.1)
    assert out["price_change"].tolist() == pytest.approx([-0.1, -0.05, 0.0, 0.05, 0.1])
    assert out["candidate_price"].tolist() == pytest.approx([90, 95, 100, 105, 110])
    m = 1 + out["price_change"].to_numpy()
    assert out["expected_units_per_day"].to_numpy() == pytest.approx(2 * m ** -2.0)
    assert out["expected_revenue_per_day"].to_numpy() == pytest.approx(200 * m ** -1.0)
    assert out["expected_margin_per_day"].isna().all()  # no cost ratio: no margin
    assert out.loc[out["price_change"] == 0, "expected_gain_per_day"].item() == 0
    uncertain = price_scenarios(_scenario_input([-2.0], [0.3]), band=0.1)
    low = uncertain.iloc[0]  # -10%: units at e -+ 1.96 x 0.3
    assert low["expected_units_per_day_low"] == pytest.approx(2 * 0.9 ** (-2 + 1.96 * 0.3),
                                                              rel=1e-3)
    assert low["expected_units_per_day_high"] == pytest.approx(
        2 * 0.9 ** (-2 - 1.96 * 0.3), rel=1e-3)
    for name in ("units", "revenue"):
        col = f"expected_{name}_per_day"
        assert (uncertain[f"{col}_low"] <= uncertain[col]).all()
        assert (uncertain[col] <= uncertain[f"{col}_high"]).all()
    assert (uncertain["gain_ci_low"] <= uncertain["gain_ci_high"]).all()
    # without a standard error there is no interval, so no scenario at all
    assert price_scenarios(_scenario_input([-2.0], [np.nan])).empty


def test_a_change_is_recommended_only_when_its_gain_interval_excludes_zero():
    out = price_scenarios(_scenario_input([-2.0, -1.05, -0.3], [0.1, 0.5, 0.1]), band=0.1)
    chosen = out.loc[out["is_recommended"]].set_index("product_id")
    assert len(chosen) == 3 and out.groupby("product_id")["is_best"].sum().eq(1).all()
    # elastic, tight interval: lower to the edge, and say it is the edge
    assert chosen.loc[1, "recommendation"] == "lower"
    assert chosen.loc[1, "recommended_price"] == pytest.approx(90.0)
    assert chosen.loc[1, "gain_ci_low"] > 0 and chosen.loc[1, "is_optimum_at_band_edge"]
    # about unit-elastic with a wide interval: the best guess is not clearly better: keep
    assert chosen.loc[2, "recommendation"] == "keep"
    assert chosen.loc[2, "price_change"] == 0 and chosen.loc[2, "recommended_price"] == 100
    best = out.loc[out["is_best"] & (out["product_id"] == 2)].iloc[0]
    assert best["gain_ci_low"] < 0 < best["gain_ci_high"]
    # inelastic: raise
    assert chosen.loc[3, "recommendation"] == "raise"
    assert chosen.loc[3, "recommended_price"] == pytest.approx(110.0)


def test_margin_objective_can_have_its_optimum_inside_the_band():
    # e = -3, cost 0.65 x price: the Lerner price is e c / (1 + e) = 0.975 x price
    out = price_scenarios(_scenario_input([-3.0], [0.05]), band=0.1, n_points=21,
                          cost_ratio=0.65)
    assert (out["objective"] == "margin").all()
    assert out["expected_margin_per_day"].notna().all()
    best = out.loc[out["is_best"]].iloc[0]
    grid = 1 + out["price_change"].to_numpy()
    assert 1 + best["price_change"] == pytest.approx(
        grid[np.argmax((grid - 0.65) * grid ** -3.0)])
    assert -0.03 <= best["price_change"] <= -0.02 and not best["is_optimum_at_band_edge"]
    with pytest.raises(ValueError):
        price_scenarios(_scenario_input([-3.0], [0.05]), cost_ratio=1.2)
    with pytest.raises(ValueError):
        price_scenarios(_scenario_input([-3.0], [0.05]), n_points=4)


def test_price_recommendations_use_the_pooled_product_or_the_category_with_its_spread():
    categories = empty_category_frame().reindex([0, 1])
    categories["category_l1"] = ["a", "b"]
    categories[["elasticity", "std_error", "traffic_tau", "conversion_tau"]] = [
        [-2.0, 0.1, 0.3, 0.4], [np.nan, np.nan, np.nan, np.nan]]
    products = empty_product_frame().reindex([0])
    products[["product_id", "category_l1", "elasticity", "std_error"]] = [[1, "a", -0.4, 0.1]]
    model = ElasticityModel(categories=categories, products=products, placebo=categories,
                            last_date=None)
    current = pd.DataFrame({"product_id": [1, 2, 3], "category_l1": ["a", "a", "b"],
                            "current_price": 10.0, "units_per_day": 1.0,
                            "revenue_per_day": 10.0})
    rec = price_recommendations(model, current).loc[lambda d: d["is_recommended"]]
    rec = rec.set_index("product_id")
    # 1: its own pooled estimate; 2: never estimated, its category's; 3: no estimate at all
    assert rec.index.tolist() == [1, 2]
    assert rec["elasticity_source"].tolist() == ["product", "category"]
    sd = (rec.loc[2, "elasticity_ci_high"] - rec.loc[2, "elasticity_ci_low"]) / (2 * 1.96)
    assert sd == pytest.approx(np.sqrt(0.1 ** 2 + 0.3 ** 2 + 0.4 ** 2), rel=1e-3)
    assert rec.loc[1, "recommendation"] == "raise" and rec.loc[2, "recommendation"] == "lower"


# --------------------------------------------------------------------------------------
# Planted truth on the shared synthetic warehouse (600k events, 92 days)
# --------------------------------------------------------------------------------------

# What the 600k fixture supports. Its categories have 300-2,200 purchases and conversion
# standard errors of 0.10-0.30 (0.18 and 0.22 for the two largest, with the planted abuse
# buying beside the shoppers), so +-0.3 can be under two standard errors: +-0.3 is
# asserted for the conversion and demand estimates whose standard error is at most 0.1
# (+-0.3 is three of them); every estimate must be within 3 standard errors (traffic: plus 0.1,
# the products' own traffic elasticities scatter around the category's, and bots view
# whatever the price), and the 95% intervals may miss the truth at most twice in eleven.
# Traffic is estimated from plentiful views: +-0.3 in every category. The issue's +-0.3
# for all three in every category is checked on the 2M demo (pricing docs).
TOLERANCE = 0.3
KINDS = {"traffic": "traffic_", "conversion": "conversion_", "demand": ""}


@pytest.fixture(scope="module")
def estimates(synth_warehouse) -> pd.DataFrame:
    columns = ["category_l1", "purchases", "has_enough_data", "is_model_below_baseline",
               *(f"{prefix}{stat}" for prefix in KINDS.values()
                 for stat in ("elasticity", "std_error", "ci_low", "ci_high")),
               *(f"placebo_{prefix}{stat}" for prefix in KINDS.values()
                 for stat in ("elasticity", "std_error"))]
    rows = query(synth_warehouse.database,
                 f"select {', '.join(columns)} from ml_price_elasticity")
    est = pd.DataFrame(rows, columns=columns)
    truth = pd.read_parquet(synth_warehouse.dataset.truth_dir / "categories.parquet")
    truth = truth.rename(columns={"elasticity": "truth_conversion",
                                  "traffic_elasticity": "truth_traffic",
                                  "demand_elasticity": "truth_demand"})
    return est.merge(truth[["category_l1", "truth_conversion", "truth_traffic",
                            "truth_demand"]], on="category_l1", how="inner")


@pytest.mark.parametrize("kind", list(KINDS))
def test_planted_category_elasticities_recovered(estimates, kind):
    est = estimates.loc[estimates["has_enough_data"]]
    assert len(est) == 11
    prefix = KINDS[kind]
    miss = (est[f"{prefix}elasticity"] - est[f"truth_{kind}"]).abs()
    se = est[f"{prefix}std_error"]
    if kind == "traffic":
        assert (miss <= TOLERANCE).all(), est
        assert (miss <= 3 * se + 0.1).all(), est
        return
    precise = se <= TOLERANCE / 3
    assert (miss[precise] <= TOLERANCE).all(), est
    assert (miss <= 3 * se).all(), est
    # 95% intervals: at most two of eleven may miss the truth (P ~ 0.98 under correct
    # coverage)
    truth = est[f"truth_{kind}"]
    covered = (est[f"{prefix}ci_low"] <= truth) & (truth <= est[f"{prefix}ci_high"])
    assert covered.sum() >= len(est) - 2, est


def test_placebo_and_guardrail(synth_warehouse, estimates):
    est = estimates.loc[estimates["has_enough_data"]]
    # placebo: about zero, i.e. within sampling noise
    for prefix in KINDS.values():
        z = est[f"placebo_{prefix}elasticity"].abs() / est[f"placebo_{prefix}std_error"]
        assert (z < 3).all(), est
        assert est[f"placebo_{prefix}elasticity"].abs().mean() < 0.25
    assert not est["is_model_below_baseline"].any()
    rows = query(synth_warehouse.database, """
        select metric, split, value, baseline_value, beats_baseline, is_primary
        from ml_model_metrics
        where model_name = 'price_elasticity' and run_kind = 'production'
    """)
    metrics = {(r[0], r[1]): r for r in rows}
    primary = metrics[("poisson_deviance", "validation")]
    assert primary[5] and primary[4] and primary[2] < primary[3]
    traffic = metrics[("traffic_poisson_deviance", "validation")]
    assert not traffic[5] and traffic[4] and traffic[2] < traffic[3]
    cutoffs = query(synth_warehouse.database, """
        select cutoff, verdict, ci_low, value, ci_high from ml_model_metrics
        where model_name = 'price_elasticity' and run_kind = 'evaluation' and is_primary
    """)
    assert len(cutoffs) == 3
    assert all(v != "worse" and lo <= x <= hi for _, v, lo, x, hi in cutoffs), cutoffs
    assert metrics[("mean_abs_demand_elasticity", "placebo")][2] < 0.25
    assert metrics[("mean_abs_demand_elasticity", "full")][2] > 1.0


def test_recommendations_have_intervals_and_keep_where_the_gain_is_unclear(synth_warehouse):
    rows = query(synth_warehouse.database, """
        select count(*), count(distinct product_id), min(price_change), max(price_change),
               count(*) filter (where is_recommended),
               count(*) filter (where is_recommended and recommendation = 'keep'),
               count(*) filter (where is_recommended and recommendation <> 'keep'
                                and gain_ci_low <= 0),
               count(*) filter (where is_recommended and recommendation = 'keep'
                                and price_change <> 0),
               count(*) filter (where expected_revenue_per_day_low
                                > expected_revenue_per_day_high),
               count(*) filter (where candidate_price <= 0),
               count(distinct run_id)
        from rpt_price_recommendations
    """)
    (n, products, lo, hi, recommended, keep, unclear_change, keep_moved, inverted,
     nonpositive, runs) = rows[0]
    assert n == 5 * products and recommended == products and runs == 1
    assert lo == pytest.approx(-0.1) and hi == pytest.approx(0.1)
    # a change only where the gain's interval excludes 0; "keep" stays at today's price
    assert unclear_change == 0 and keep_moved == 0 and inverted == 0 and nonpositive == 0
    assert 0 < keep < products  # some clear, some not, on this data
