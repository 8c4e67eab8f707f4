"""Price elasticity of demand: log-log demand with product and day fixed effects.

Plain functions on arrays and frames, usable outside dbt. No I/O, no global state.

The data are *cells*: one row per product x day x price (a price spell within a day; the
SQL model int_product_price_spells_aggregated builds them), with the views and purchases
at that price. Per category_l1 the model is

    E[purchases_jdp] = views_jdp * exp(alpha_j + gamma_d + beta * log(price_jdp))

a log-log demand curve in expectation: beta is the elasticity of the purchase rate per
view with respect to price, alpha_j a product effect (absorbs the base price and
popularity), gamma_d a day effect (sale days, seasonality, traffic mix).

Why this estimator. The generator (ml/synth/skeleton.py) buys each intent target with
probability  c0 * (price / base_price) ** elasticity[category_l1]  at the price of the day
the visit starts; which products are viewed or targeted does not depend on the current
price. So E[purchases | views, price] is exactly views x exp(product + day + e log price)
(up to the 0.97 cap on the probability): a multiplicative model with many zero counts.
Poisson pseudo-maximum likelihood (PPML; Santos Silva & Tenreyro 2006) is consistent for
such a model whenever the conditional mean is right, whatever the distribution of the
counts (over-dispersion, zeros, Binomial instead of Poisson), whereas OLS of
log(purchases / views) must drop or fudge the zeros and is biased under
heteroskedasticity (Jensen). With the Poisson likelihood the product effects have a closed
form given the rest, so they are *concentrated out* (no dummy columns); the day effects
likewise. Standard errors are cluster-robust by product (the sandwich of the PPML score
with both fixed effects partialled out, computed by statsmodels' WLS on the residualised
regressor, which is the last IRLS step of the full model).

Product-level elasticities use the same model per product (its own intercept and slope)
with the day effects of its category's fit as a known offset, and a heteroskedasticity-
robust (HC1) sandwich; products without price variation carry no information on their
own elasticity and get the category's.

Prices are the ones shown in the cell (the exact price of the spell). Cells without
views or with a zero price (display glitches) are left out: a purchase there cannot be
related to a price that drove it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import statsmodels.api as sm

from ml.drift import feature_drift
from ml.evaluation import (BOOTSTRAP_SAMPLES, InsufficientHistory, Resampler, compare,
                           require_history, rolling_cutoffs)
from ml.registry import Metric, TrainingRun, Window

__all__ = [
    "MODEL_NAME",
    "PpmlFit",
    "ElasticityModel",
    "fit_ppml_fe",
    "cluster_robust_inference",
    "prepare_cells",
    "estimate_category_elasticities",
    "estimate_product_elasticities",
    "shuffle_within",
    "holdout_deviance",
    "poisson_deviance",
    "train_price_elasticity",
    "evaluate_price_elasticity",
    "holdout_cells",
    "deviance_metrics",
    "empty_category_frame",
    "empty_product_frame",
    "empty_recommendations",
    "with_run_columns",
    "category_elasticity_frame",
    "product_elasticity_frame",
    "optimal_price_ratio",
    "recommend_prices",
    "price_recommendations",
]

MODEL_NAME = "price_elasticity"
UNKNOWN_CATEGORY = "unknown"


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------

@dataclass
class PpmlFit:
    """A PPML fit with two sets of fixed effects.

    beta: slopes (k,); alpha: product effects by product code (-inf for products without
    purchases); gamma: day effects by day code (-inf for days without purchases); mu:
    fitted means of all input rows (0 where an effect is -inf); converged, iterations.
    """
    beta: np.ndarray
    alpha: np.ndarray
    gamma: np.ndarray
    mu: np.ndarray
    converged: bool
    iterations: int


def _group_sum(codes: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(codes, weights=weights, minlength=n)


def _safe_log(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(values)


def fit_ppml_fe(y: np.ndarray, x: np.ndarray, offset: np.ndarray, product: np.ndarray,
                day: np.ndarray, max_iter: int = 500, tol: float = 1e-9) -> PpmlFit:
    """Poisson PML of counts y on regressors x (n, k; k may be 0) with product and day fixed
    effects and a log-exposure offset.

    product, day: 0-based integer codes. The fixed effects are concentrated out (closed
    form given the rest), the slopes take Newton steps on the score with the product effect
    partialled out. Groups whose counts are all zero have effect -inf (their rows carry no
    information and get mu = 0). Cost per iteration O(n k^2); memory O(n k).
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
    offset = np.asarray(offset, dtype=np.float64)
    product = np.asarray(product, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    k = x.shape[1]
    n1 = int(product.max()) + 1 if len(y) else 0
    n2 = int(day.max()) + 1 if len(y) else 0
    log_sy1 = _safe_log(_group_sum(product, y, n1))
    log_sy2 = _safe_log(_group_sum(day, y, n2))
    # rows of all-zero groups never matter; keep them out of the sums
    live = np.isfinite(log_sy1[product]) & np.isfinite(log_sy2[day]) if len(y) else \
        np.zeros(0, dtype=bool)
    yl, xl, ol, pl, dl = y[live], x[live], offset[live], product[live], day[live]
    beta = np.zeros(k)
    alpha = np.where(np.isfinite(log_sy1), 0.0, -np.inf)
    gamma = np.where(np.isfinite(log_sy2), 0.0, -np.inf)
    converged = False
    iteration = 0
    for iteration in range(1, max_iter + 1):
        xb = xl @ beta + ol if k else ol.copy()
        for _ in range(3):
            eta = xb + gamma[dl]
            with np.errstate(invalid="ignore"):
                alpha = np.where(np.isfinite(log_sy1), log_sy1 - _safe_log(
                    _group_sum(pl, np.exp(eta), n1)), -np.inf)
                eta = xb + alpha[pl]
                gamma = np.where(np.isfinite(log_sy2), log_sy2 - _safe_log(
                    _group_sum(dl, np.exp(eta), n2)), -np.inf)
        mu = np.exp(xb + alpha[pl] + gamma[dl])
        if k == 0:
            resid = _group_sum(pl, yl - mu, n1)
            if np.nanmax(np.abs(resid)) < tol * max(1.0, yl.sum()):
                converged = True
                break
            continue
        # Newton step with the product effect partialled out (weighted by mu)
        w_sum = _group_sum(pl, mu, n1)
        w_sum[w_sum == 0] = 1.0
        xt = np.empty_like(xl)
        for j in range(k):
            xt[:, j] = xl[:, j] - (_group_sum(pl, mu * xl[:, j], n1) / w_sum)[pl]
        score = xt.T @ (yl - mu)
        info = (xt * mu[:, None]).T @ xt
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, score, rcond=None)[0]
        step = np.clip(step, -1.0, 1.0)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    xb_all = x @ beta + offset if k else offset.copy()
    with np.errstate(invalid="ignore"):
        mu_all = np.exp(xb_all + alpha[product] + gamma[day]) if len(y) else np.zeros(0)
    mu_all = np.where(live, mu_all, 0.0)
    return PpmlFit(beta=beta, alpha=alpha, gamma=gamma, mu=mu_all, converged=converged,
                   iterations=iteration)


def _residualize_two_way(v: np.ndarray, w: np.ndarray, g1: np.ndarray, g2: np.ndarray,
                         max_iter: int = 1000, tol: float = 1e-10) -> np.ndarray:
    """v minus its weighted projection on two sets of group dummies (alternating
    projections, Guimaraes & Portugal 2010). v: (n, k); w > 0."""
    n1, n2 = int(g1.max()) + 1, int(g2.max()) + 1
    s1 = _group_sum(g1, w, n1)
    s2 = _group_sum(g2, w, n2)
    s1[s1 == 0] = 1.0
    s2[s2 == 0] = 1.0
    out = v.astype(np.float64).copy()
    scale = max(1.0, float(np.max(np.abs(out)))) if out.size else 1.0
    for _ in range(max_iter):
        change = 0.0
        for j in range(out.shape[1]):
            m1 = _group_sum(g1, w * out[:, j], n1) / s1
            out[:, j] -= m1[g1]
            m2 = _group_sum(g2, w * out[:, j], n2) / s2
            out[:, j] -= m2[g2]
            change = max(change, float(np.max(np.abs(m1))), float(np.max(np.abs(m2))))
        if change < tol * scale:
            break
    return out


def cluster_robust_inference(fit: PpmlFit, y: np.ndarray, x: np.ndarray,
                             product: np.ndarray, day: np.ndarray,
                             alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Cluster-robust (by product) standard errors and confidence intervals of a
    `fit_ppml_fe` fit.

    The regressors are residualised on both fixed effects with weights mu (Frisch-Waugh-
    Lovell for the IRLS normal equations); statsmodels' WLS of the working response on
    them, with cov_type='cluster', is the PPML sandwich with the fixed effects
    partialled out (ppmlhdfe's variance). Returns {"beta", "se", "ci_low", "ci_high"}.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
    live = fit.mu > 0
    mu = fit.mu[live]
    g1 = np.unique(np.asarray(product)[live], return_inverse=True)[1]
    g2 = np.unique(np.asarray(day)[live], return_inverse=True)[1]
    k = x.shape[1]
    nan = np.full(k, np.nan)
    if live.sum() <= k + 1 or len(np.unique(g1)) < 2:
        return {"beta": fit.beta, "se": nan, "ci_low": nan, "ci_high": nan}
    xt = _residualize_two_way(x[live], mu, g1, g2)
    if np.all(np.abs(xt) < 1e-12):
        return {"beta": fit.beta, "se": nan, "ci_low": nan, "ci_high": nan}
    working = xt @ fit.beta + (y[live] - mu) / mu
    result = sm.WLS(working, xt, weights=mu).fit(cov_type="cluster",
                                                 cov_kwds={"groups": g1})
    ci = np.asarray(result.conf_int(alpha))
    return {"beta": np.asarray(result.params), "se": np.asarray(result.bse),
            "ci_low": ci[:, 0], "ci_high": ci[:, 1]}


def poisson_deviance(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Unit Poisson deviance 2 (y log(y/mu) - (y - mu)), 0 log 0 = 0."""
    y = np.asarray(y, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return 2.0 * (term - (y - mu))


# --------------------------------------------------------------------------------------
# Cells and estimates
# --------------------------------------------------------------------------------------

def prepare_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The estimable cells: views > 0 and price > 0, with log_price, log_views, the
    product's category (its most viewed category_l1; 'unknown' when NULL) and a day
    column `event_date` (datetime64). Input columns: product_id, event_date, price,
    category_l1, views, purchases."""
    out = cells.loc[(cells["views"] > 0) & (cells["price"] > 0)].copy()
    out["event_date"] = pd.to_datetime(out["event_date"])
    out["price"] = out["price"].astype(np.float64)
    out["views"] = out["views"].astype(np.float64)
    out["purchases"] = out["purchases"].astype(np.float64)
    cat = out["category_l1"].astype(object).where(out["category_l1"].notna(),
                                                 UNKNOWN_CATEGORY)
    out["category_l1"] = cat.astype(str)
    main = (out.groupby(["product_id", "category_l1"], as_index=False)["views"].sum()
            .sort_values(["product_id", "views", "category_l1"],
                         ascending=[True, False, True])
            .drop_duplicates("product_id")[["product_id", "category_l1"]])
    out = out.drop(columns="category_l1").merge(main, on="product_id", how="left")
    out["log_price"] = np.log(out["price"])
    out["log_views"] = np.log(out["views"])
    return out.sort_values(["category_l1", "product_id", "event_date", "price"],
                           ignore_index=True)


def _codes(values: pd.Series) -> np.ndarray:
    return pd.factorize(values, sort=True)[0].astype(np.int64)


@dataclass
class CategoryFit:
    """One category's fit: estimates plus the effects needed to predict."""
    category_l1: str
    estimate: dict[str, float]
    product_effect: pd.Series  # alpha by product_id
    day_effect: pd.Series  # gamma by event_date


def _fit_category(group: pd.DataFrame, price_effect: bool = True,
                  inference: bool = True) -> CategoryFit:
    product = _codes(group["product_id"])
    day = _codes(group["event_date"])
    y = group["purchases"].to_numpy()
    x = group[["log_price"]].to_numpy() if price_effect else np.zeros((len(group), 0))
    fit = fit_ppml_fe(y, x, group["log_views"].to_numpy(), product, day)
    estimate = {"elasticity": np.nan, "std_error": np.nan, "ci_low": np.nan,
                "ci_high": np.nan}
    if price_effect and (fit.mu > 0).any():
        estimate["elasticity"] = float(fit.beta[0])
    if price_effect and inference and (fit.mu > 0).any():
        inf = cluster_robust_inference(fit, y, x, product, day)
        estimate = {"elasticity": float(fit.beta[0]), "std_error": float(inf["se"][0]),
                    "ci_low": float(inf["ci_low"][0]), "ci_high": float(inf["ci_high"][0])}
    live = fit.mu > 0
    estimate.update({
        "n_products": float(group.loc[live, "product_id"].nunique()),
        "n_cells": float(live.sum()),
        "purchases": float(y[live].sum()),
        "converged": float(fit.converged),
    })
    products = pd.Series(fit.alpha, index=np.sort(group["product_id"].unique()))
    days = pd.Series(fit.gamma, index=np.sort(group["event_date"].unique()))
    return CategoryFit(str(group["category_l1"].iloc[0]), estimate, products, days)


def _subsample_products(cells: pd.DataFrame, max_products: int | None,
                        seed: int) -> pd.DataFrame:
    """At most `max_products` products per category, a seeded simple random sample of
    products (whole products are sampled, so the clustered inference stays valid)."""
    if not max_products:
        return cells
    keep = []
    rng = np.random.default_rng(seed)
    for _, group in cells.groupby("category_l1", sort=True):
        products = np.sort(group["product_id"].unique())
        if len(products) > max_products:
            products = rng.choice(products, max_products, replace=False)
        keep.append(products)
    return cells.loc[cells["product_id"].isin(np.concatenate(keep))]


def estimate_category_elasticities(cells: pd.DataFrame, min_purchases: int = 50,
                                   price_effect: bool = True, inference: bool = True
                                   ) -> tuple[pd.DataFrame, dict[str, CategoryFit]]:
    """Per category_l1 elasticity (PPML, product and day FE, views offset) on prepared
    cells. Categories with fewer than `min_purchases` purchases in cells with price
    information get NaN estimates (has_enough_data false). Without `inference` the
    cluster-robust standard errors are skipped (NaN): an out-of-time fit only predicts.
    Returns (frame, fits)."""
    rows, fits = [], {}
    for name, group in cells.groupby("category_l1", sort=True):
        has_prices = group.groupby("product_id")["log_price"].transform("nunique") > 1
        if group.loc[has_prices, "purchases"].sum() < min_purchases:
            rows.append({"category_l1": name, "elasticity": np.nan, "std_error": np.nan,
                         "ci_low": np.nan, "ci_high": np.nan,
                         "n_products": float(group["product_id"].nunique()),
                         "n_cells": float(len(group)),
                         "purchases": float(group["purchases"].sum()),
                         "converged": np.nan, "has_enough_data": False})
            continue
        fit = _fit_category(group, price_effect=price_effect, inference=inference)
        fits[name] = fit
        rows.append({"category_l1": name, **fit.estimate, "has_enough_data": True})
    return pd.DataFrame(rows), fits


def estimate_product_elasticities(cells: pd.DataFrame, fits: dict[str, CategoryFit],
                                  max_iter: int = 100, tol: float = 1e-9,
                                  max_abs_elasticity: float = 10.0) -> pd.DataFrame:
    """Per product elasticity: PPML of purchases on log price with the product's own
    intercept and its category's day effects plus log views as the offset, all products
    at once (vectorised Newton). HC1 sandwich standard errors and normal 95% intervals.
    Products with fewer than 3 cells, no purchases or a single price get NaN, and so do
    estimates beyond +-max_abs_elasticity or not converged after max_iter (separation:
    the likelihood has no finite maximum)."""
    day_effect = pd.concat(
        [fit.day_effect.rename("gamma").rename_axis("event_date").reset_index()
         .assign(category_l1=name) for name, fit in fits.items()], ignore_index=True) \
        if fits else pd.DataFrame(columns=["event_date", "gamma", "category_l1"])
    data = cells.merge(day_effect, on=["category_l1", "event_date"], how="inner")
    data = data.loc[np.isfinite(data["gamma"].to_numpy(dtype=np.float64))]
    summary = cells.groupby("product_id").agg(
        category_l1=("category_l1", "first"), n_cells=("views", "size"),
        n_prices=("log_price", "nunique"), views=("views", "sum"),
        purchases=("purchases", "sum")).reset_index()
    out = summary.assign(elasticity=np.nan, std_error=np.nan, ci_low=np.nan, ci_high=np.nan)
    if data.empty:
        return out
    data = data.loc[data.groupby("product_id")["purchases"].transform("sum") > 0]
    data = data.loc[data.groupby("product_id")["log_price"].transform("nunique") > 1]
    data = data.loc[data.groupby("product_id")["views"].transform("size") >= 3]
    if data.empty:
        return out
    g = _codes(data["product_id"])
    ids = np.sort(data["product_id"].unique())
    n = len(ids)
    y = data["purchases"].to_numpy(dtype=np.float64)
    x = data["log_price"].to_numpy(dtype=np.float64)
    o = (data["log_views"] + data["gamma"]).to_numpy(dtype=np.float64)
    # centre x within product for stability (the intercept absorbs it)
    x = x - (_group_sum(g, x, n) / _group_sum(g, np.ones_like(x), n))[g]
    log_sy = np.log(_group_sum(g, y, n))
    beta = np.zeros(n)
    for _ in range(max_iter):
        a = log_sy - np.log(_group_sum(g, np.exp(beta[g] * x + o), n))
        mu = np.exp(a[g] + beta[g] * x + o)
        sw = _group_sum(g, mu, n)
        xt = x - (_group_sum(g, mu * x, n) / sw)[g]
        score = _group_sum(g, (y - mu) * xt, n)
        info = _group_sum(g, mu * xt * xt, n)
        step = np.clip(np.where(info > 0, score / np.where(info > 0, info, 1.0), 0.0),
                       -1.0, 1.0)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    step = np.where(np.abs(step) < 1e-6, 0.0, np.inf)  # per product: converged or not
    a = log_sy - np.log(_group_sum(g, np.exp(beta[g] * x + o), n))
    mu = np.exp(a[g] + beta[g] * x + o)
    xt = x - (_group_sum(g, mu * x, n) / _group_sum(g, mu, n))[g]
    info = _group_sum(g, mu * xt * xt, n)
    meat = _group_sum(g, ((y - mu) * xt) ** 2, n)
    cells_n = _group_sum(g, np.ones_like(y), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(meat / info ** 2 * cells_n / (cells_n - 2))
    est = pd.DataFrame({"product_id": ids, "elasticity": beta, "std_error": se})
    # no finite maximum (e.g. purchases only at the lowest price: separation) or no
    # usable variance: not estimable
    bad = (~np.isfinite(est["std_error"]) | (est["std_error"] <= 0)
           | (np.abs(est["elasticity"]) > max_abs_elasticity) | ~np.isfinite(step))
    est.loc[bad, ["elasticity", "std_error"]] = np.nan
    est["ci_low"] = est["elasticity"] - 1.959963984540054 * est["std_error"]
    est["ci_high"] = est["elasticity"] + 1.959963984540054 * est["std_error"]
    return summary.merge(est, on="product_id", how="left")


def shuffle_within(values: np.ndarray, groups: np.ndarray, seed: int) -> np.ndarray:
    """`values` permuted at random within each group (seeded): the placebo price."""
    values = np.asarray(values)
    groups = np.asarray(groups)
    rng = np.random.default_rng(seed)
    order = np.argsort(groups, kind="stable")
    shuffled = np.lexsort((rng.random(len(values)), groups))
    out = np.empty_like(values)
    out[order] = values[shuffled]
    return out


def holdout_cells(test: pd.DataFrame, fits: dict[str, CategoryFit],
                  baseline_fits: dict[str, CategoryFit]) -> pd.DataFrame:
    """The out-of-time predictions of the test cells: product_id, category_l1, purchases
    and the expected purchases `mu_model` (product effects and elasticity of the training
    fit) and `mu_baseline` (the same model with elasticity 0, refitted). Day effects of
    the test days are unknown ahead of time, so each model gets its own closed-form day
    effect per category and test day (both conditioned on the day's total, which is fair
    to both). Only test cells of products with a finite training effect in both fits are
    scored."""
    frames = []
    for name, fit in fits.items():
        base = baseline_fits.get(name)
        if base is None:
            continue
        group = test.loc[test["category_l1"] == name]
        a_m = group["product_id"].map(fit.product_effect).to_numpy(dtype=np.float64)
        a_b = group["product_id"].map(base.product_effect).to_numpy(dtype=np.float64)
        ok = np.isfinite(a_m) & np.isfinite(a_b)
        group, a_m, a_b = group.loc[ok], a_m[ok], a_b[ok]
        if group.empty:
            continue
        day = _codes(group["event_date"])
        y = group["purchases"].to_numpy(dtype=np.float64)
        beta = fit.estimate["elasticity"]
        mus = []
        for a, slope in ((a_m, beta), (a_b, 0.0)):
            raw = np.exp(a + slope * group["log_price"].to_numpy() + group["log_views"]
                         .to_numpy())
            scale = _group_sum(day, y, day.max() + 1) / _group_sum(day, raw, day.max() + 1)
            mus.append(raw * scale[day])
        frames.append(pd.DataFrame({"product_id": group["product_id"].to_numpy(),
                                    "category_l1": name, "purchases": y,
                                    "mu_model": mus[0], "mu_baseline": mus[1]}))
    if not frames:
        return pd.DataFrame({"product_id": pd.Series(dtype="int64"),
                             "category_l1": pd.Series(dtype=object),
                             **{c: pd.Series(dtype="float64")
                                for c in ("purchases", "mu_model", "mu_baseline")}})
    return pd.concat(frames, ignore_index=True)


def holdout_deviance(test: pd.DataFrame, fits: dict[str, CategoryFit],
                     baseline_fits: dict[str, CategoryFit]) -> dict[str, float]:
    """Out-of-time mean Poisson deviance of `holdout_cells`, for the model and for the
    no-price-effect baseline (NaN without a scored cell)."""
    cells = holdout_cells(test, fits, baseline_fits)
    if cells.empty:
        return {"model": np.nan, "baseline": np.nan, "n_cells": 0.0, "purchases": 0.0}
    y = cells["purchases"].to_numpy()
    return {"model": float(poisson_deviance(y, cells["mu_model"].to_numpy()).mean()),
            "baseline": float(poisson_deviance(y, cells["mu_baseline"].to_numpy()).mean()),
            "n_cells": float(len(y)), "purchases": float(y.sum())}


def deviance_metrics(cells: pd.DataFrame, split: str, cutoff: date | None,
                     n_bootstrap: int, seed: int) -> list[Metric]:
    """The primary metric: mean Poisson deviance of `holdout_cells` beside the
    no-price-effect baseline, with paired bootstrap intervals resampling products (all
    cells of a drawn product together). No scored cell: None with the reason."""
    y = cells["purchases"].to_numpy(dtype=np.float64)
    model = poisson_deviance(y, cells["mu_model"].to_numpy(dtype=np.float64))
    base = poisson_deviance(y, cells["mu_baseline"].to_numpy(dtype=np.float64))

    def mean_of(values: np.ndarray):
        return lambda rows: float(values[rows].mean())

    resampler = Resampler(len(cells), n_samples=n_bootstrap, seed=seed,
                          clusters=cells["product_id"].to_numpy())
    return compare("poisson_deviance", mean_of(model), {"no_price_effect": mean_of(base)},
                   resampler, higher_is_better=False, is_primary=True, split=split,
                   cutoff=cutoff)


# --------------------------------------------------------------------------------------
# Training run
# --------------------------------------------------------------------------------------

@dataclass
class ElasticityModel:
    """The artifact of a training run: the published estimates (fitted on every day up to
    the last date) and the rule that decides which product estimates are reliable."""
    categories: pd.DataFrame
    products: pd.DataFrame
    placebo: pd.DataFrame
    reliability: dict[str, float]
    last_date: date | None
    params: dict[str, Any] = field(default_factory=dict)


def _reliable(products: pd.DataFrame, min_purchases: float, max_ci_width: float
              ) -> pd.Series:
    return ((products["purchases"] >= min_purchases)
            & (products["ci_high"] < 0)
            & ((products["ci_high"] - products["ci_low"]) <= max_ci_width)).fillna(False)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in str(name).lower())


# Days of cells the fit needs before its first validation or test day: the product and
# day effects need several days per product to leave price variation to estimate from.
MIN_TRAIN_DAYS = 14
# Fixed a priori, never tuned on a test window (docs block pricing_model): a category
# needs 50 purchases at varying prices; a product's own estimate is reliable with 30
# purchases and a 95% interval below 0 at most 1.0 wide.
MIN_CATEGORY_PURCHASES = 50


def _prepared(cells: pd.DataFrame, max_products_per_category: int | None,
              seed: int) -> pd.DataFrame:
    prepared = _subsample_products(prepare_cells(cells), max_products_per_category, seed)
    if prepared.empty:
        raise InsufficientHistory(1, 0, "estimable cells (views and a positive price)")
    return prepared


def _holdout(train: pd.DataFrame, test: pd.DataFrame, min_category_purchases: int
             ) -> pd.DataFrame:
    """Fit on `train` with and without the price effect, predict `test` (holdout_cells)."""
    _, fits = estimate_category_elasticities(train, min_category_purchases,
                                             inference=False)
    _, base_fits = estimate_category_elasticities(
        train.loc[train["category_l1"].isin(list(fits))], 0, price_effect=False)
    return holdout_cells(test, fits, base_fits)


def train_price_elasticity(cells: pd.DataFrame, cutoff_date: date | str | None = None,
                           horizon_days: int = 30, seed: int = 42,
                           min_category_purchases: int = MIN_CATEGORY_PURCHASES,
                           min_product_purchases: int = 30,
                           max_product_ci_width: float = 1.0,
                           max_products_per_category: int | None = 20000,
                           n_bootstrap: int = BOOTSTRAP_SAMPLES,
                           ) -> TrainingRun:
    """Train, validate and record the price-elasticity model (the production run).

    cells: product x day x price cells (see `prepare_cells` for the columns).
    cutoff_date: start of the validation window; None = last date + 1 minus horizon_days
    (the latest complete window). Validation: fit on days before the cutoff, score the
    next horizon_days out of time (mean Poisson deviance, vs the same model with
    elasticity 0: primary metric, split "validation", intervals resampling products).
    Nothing is chosen on it: the thresholds are fixed a priori. Published estimates (the
    artifact): refit on every day. Placebo: prices shuffled within product (seeded),
    refit: the elasticities must be about zero. Products are subsampled (seeded, whole
    products) to at most max_products_per_category per category; None keeps all.
    Raises InsufficientHistory below MIN_TRAIN_DAYS + horizon_days days of cells.
    """
    prepared = _prepared(cells, max_products_per_category, seed)
    first = prepared["event_date"].min().date()
    last = prepared["event_date"].max().date()
    require_history(MIN_TRAIN_DAYS + horizon_days, (last - first).days + 1, detail=(
        f"{MIN_TRAIN_DAYS} days of cells to fit, then a {horizon_days}-day validation "
        "window"))
    cutoff = (pd.Timestamp(cutoff_date).date() if cutoff_date not in (None, "", "None")
              else last + timedelta(days=1) - timedelta(days=horizon_days))
    label_end = cutoff + timedelta(days=horizon_days)
    is_train = prepared["event_date"] < pd.Timestamp(cutoff)
    is_test = (~is_train) & (prepared["event_date"] < pd.Timestamp(label_end))
    train, test = prepared.loc[is_train], prepared.loc[is_test]

    # out-of-time validation
    holdout = _holdout(train, test, min_category_purchases)

    # published estimates on every day
    categories, fits = estimate_category_elasticities(prepared, min_category_purchases)
    products = estimate_product_elasticities(prepared, fits)
    products["is_reliable"] = _reliable(products, min_product_purchases,
                                        max_product_ci_width)

    # placebo: prices shuffled within product
    placebo_cells = prepared.assign(log_price=shuffle_within(
        prepared["log_price"].to_numpy(), prepared["product_id"].to_numpy(), seed))
    placebo, _ = estimate_category_elasticities(placebo_cells, min_category_purchases)
    placebo_ok = placebo.loc[placebo["has_enough_data"]]
    categories = categories.merge(
        placebo[["category_l1", "elasticity", "std_error"]].rename(
            columns={"elasticity": "placebo_elasticity",
                     "std_error": "placebo_std_error"}), on="category_l1", how="left")

    metrics = deviance_metrics(holdout, "validation", None, n_bootstrap, seed)
    not_estimable = (f"not estimable: fewer than {min_category_purchases} purchases of "
                     "products with several prices")
    for row in categories.itertuples(index=False):
        slug = _slug(row.category_l1)
        reason = None if row.has_enough_data else not_estimable
        for metric, value in (("elasticity", row.elasticity),
                              ("elasticity_std_error", row.std_error),
                              ("elasticity_ci_low", row.ci_low),
                              ("elasticity_ci_high", row.ci_high)):
            metrics.append(Metric(f"{metric}__{slug}", None if reason else value,
                                  split="full", undefined_reason=reason))
    for row in placebo_ok.itertuples(index=False):
        metrics.append(Metric(f"elasticity__{_slug(row.category_l1)}", row.elasticity,
                              split="placebo"))
    est = categories.loc[categories["has_enough_data"]]
    no_category = "no category has enough data to estimate"
    metrics.append(Metric("mean_abs_elasticity",
                          float(np.abs(est["elasticity"]).mean()) if len(est) else None,
                          split="full", undefined_reason=None if len(est) else no_category))
    metrics.append(Metric("mean_abs_elasticity",
                          float(np.abs(placebo_ok["elasticity"]).mean())
                          if len(placebo_ok) else None, split="placebo",
                          higher_is_better=False,
                          undefined_reason=None if len(placebo_ok) else no_category))
    metrics.append(Metric("share_placebo_ci_covering_zero", float(
        ((placebo_ok["ci_low"] <= 0) & (placebo_ok["ci_high"] >= 0)).mean())
        if len(placebo_ok) else None, split="placebo",
        undefined_reason=None if len(placebo_ok) else no_category))
    metrics.append(Metric("share_products_reliable",
                          float(products["is_reliable"].mean()) if len(products) else None,
                          split="full",
                          undefined_reason=None if len(products) else "no product cells"))

    params = {
        "cutoff_date": cutoff.isoformat(), "horizon_days": horizon_days, "seed": seed,
        "estimator": "PPML, product + day FE per category_l1, offset log(views)",
        "cells": "product x day x price spell, views > 0, price > 0",
        "min_category_purchases": min_category_purchases,
        "min_product_purchases": min_product_purchases,
        "max_product_ci_width": max_product_ci_width,
        "max_products_per_category": max_products_per_category,
        "tuned_on_validation": "nothing: every threshold is fixed a priori",
    }
    dev = _mean_deviances(holdout)
    improvement = (1.0 - dev["model"] / dev["baseline"]) if dev["baseline"] else 0.0
    model = ElasticityModel(
        categories=categories, products=products, placebo=placebo,
        reliability={"min_product_purchases": min_product_purchases,
                     "max_product_ci_width": max_product_ci_width},
        last_date=last, params=params)
    return TrainingRun(
        model_name=MODEL_NAME,
        train_window=Window(first, cutoff),
        label_window=Window(cutoff, label_end),
        n_train=int(len(train)),
        n_test=int(len(holdout)),
        params=params,
        metrics=metrics,
        feature_importance={"log_price": float(improvement)},
        model=model,
        drift=feature_drift(train, test, ("log_price", "log_views")),
    )


def _mean_deviances(holdout: pd.DataFrame) -> dict[str, float]:
    if holdout.empty:
        return {"model": 0.0, "baseline": 0.0}
    y = holdout["purchases"].to_numpy()
    return {"model": float(poisson_deviance(y, holdout["mu_model"].to_numpy()).mean()),
            "baseline": float(poisson_deviance(y, holdout["mu_baseline"].to_numpy()).mean())}


def evaluate_price_elasticity(cells: pd.DataFrame, horizon_days: int = 14,
                              step_days: int = 7, n_cutoffs: int = 3, seed: int = 42,
                              min_category_purchases: int = MIN_CATEGORY_PURCHASES,
                              max_products_per_category: int | None = 20000,
                              n_bootstrap: int = BOOTSTRAP_SAMPLES) -> TrainingRun:
    """The rolling-origin evaluation (run_kind "evaluation"): at `n_cutoffs` test cutoffs
    `step_days` apart, the last one's window ending at the last date, the model is fitted
    on the days before the cutoff and its next horizon_days are scored once (mean Poisson
    deviance beside the no-price-effect baseline, split "test", intervals resampling
    products). Nothing is tuned, so there is no validation window to replay."""
    prepared = _prepared(cells, max_products_per_category, seed)
    first = prepared["event_date"].min().date()
    last = prepared["event_date"].max().date()
    require_history(MIN_TRAIN_DAYS + horizon_days + step_days * (n_cutoffs - 1),
                    (last - first).days + 1, detail=(
                        f"{MIN_TRAIN_DAYS} days of cells to fit, then {n_cutoffs} test "
                        f"cutoffs {step_days} days apart with {horizon_days}-day windows"))
    cutoffs = rolling_cutoffs(last + timedelta(days=1), horizon_days, step_days, n_cutoffs)
    metrics: list[Metric] = []
    n_test = 0
    for cutoff in cutoffs:
        dates = prepared["event_date"]
        train = prepared.loc[dates < pd.Timestamp(cutoff)]
        test = prepared.loc[(dates >= pd.Timestamp(cutoff))
                            & (dates < pd.Timestamp(cutoff + timedelta(days=horizon_days)))]
        holdout = _holdout(train, test, min_category_purchases)
        metrics += deviance_metrics(holdout, "test", cutoff, n_bootstrap, seed)
        n_test += len(holdout)
    return TrainingRun(
        model_name=MODEL_NAME,
        train_window=Window(first, cutoffs[0]),
        label_window=Window(cutoffs[0], last + timedelta(days=1)),
        n_train=int((prepared["event_date"] < pd.Timestamp(cutoffs[0])).sum()),
        n_test=n_test,
        params={"cutoffs": [c.isoformat() for c in cutoffs], "horizon_days": horizon_days,
                "step_days": step_days, "seed": seed,
                "min_category_purchases": min_category_purchases,
                "max_products_per_category": max_products_per_category,
                "tuned_on_validation": "nothing: every threshold is fixed a priori"},
        metrics=metrics,
        run_kind="evaluation",
    )


# --------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------

def category_elasticity_frame(model: ElasticityModel) -> pd.DataFrame:
    """One row per category_l1: estimate, SE, 95% CI, data size, placebo."""
    cols = ["category_l1", "elasticity", "std_error", "ci_low", "ci_high",
            "placebo_elasticity", "placebo_std_error", "n_products", "n_cells",
            "purchases", "has_enough_data"]
    out = model.categories[cols].copy()
    for col in ("n_products", "n_cells", "purchases"):
        out[col] = out[col].astype("int64")
    out["has_enough_data"] = out["has_enough_data"].astype(bool)
    return out.sort_values("category_l1", ignore_index=True)


def product_elasticity_frame(model: ElasticityModel) -> pd.DataFrame:
    """One row per product with price cells: its own estimate (NaN when not estimable),
    whether it is reliable, and the elasticity to use (own if reliable, else the
    category's when that excludes 0) with its source."""
    cat = model.categories.set_index("category_l1")
    p = model.products.copy()
    cat_ok = (cat["ci_high"] < 0).reindex(p["category_l1"]).fillna(False).to_numpy()
    p["category_elasticity"] = cat["elasticity"].reindex(p["category_l1"]).to_numpy()
    p["category_ci_low"] = cat["ci_low"].reindex(p["category_l1"]).to_numpy()
    p["category_ci_high"] = cat["ci_high"].reindex(p["category_l1"]).to_numpy()
    own = p["is_reliable"].to_numpy(dtype=bool)
    p["elasticity_source"] = np.where(own, "product", np.where(cat_ok, "category", "none"))
    for col, own_col, cat_col in (("elasticity_used", "elasticity", "category_elasticity"),
                                  ("elasticity_used_ci_low", "ci_low", "category_ci_low"),
                                  ("elasticity_used_ci_high", "ci_high",
                                   "category_ci_high")):
        p[col] = np.where(own, p[own_col], np.where(cat_ok, p[cat_col], np.nan))
    for col in ("n_cells", "n_prices", "views", "purchases"):
        p[col] = p[col].astype("int64")
    p["is_reliable"] = p["is_reliable"].astype(bool)
    return p.sort_values("product_id", ignore_index=True)


def optimal_price_ratio(elasticity: np.ndarray, band: float = 0.10,
                        cost_ratio: float | None = None) -> np.ndarray:
    """The price multiplier m in [1 - band, 1 + band] maximising expected revenue
    (cost_ratio None) or margin with unit cost = cost_ratio x current price, under
    constant-elasticity demand q(m) = q0 m ** elasticity.

    Revenue m ** (1 + e): decreasing in m when e < -1 (elastic: lower edge), increasing
    when e > -1 (inelastic: upper edge), flat at e = -1 (no change). Margin (m - c) m ** e:
    for e < -1 unimodal with maximum at the Lerner price m* = e c / (1 + e), clipped to
    the band; for e >= -1 increasing (upper edge). NaN elasticity gives NaN."""
    e = np.asarray(elasticity, dtype=np.float64)
    lo, hi = 1.0 - band, 1.0 + band
    c = 0.0 if cost_ratio is None else float(cost_ratio)
    with np.errstate(divide="ignore", invalid="ignore"):
        lerner = np.clip(e * c / (1.0 + e), lo, hi)
    flat = np.isclose(e, -1.0) & (c == 0.0)
    out = np.where(e < -1.0, lerner, hi)
    out = np.where(flat, 1.0, out)
    return np.where(np.isnan(e), np.nan, out)


def _objective_change(m: np.ndarray, e: np.ndarray, cost_ratio: float | None
                      ) -> np.ndarray:
    """Relative change of revenue (or margin) at multiplier m with elasticity e."""
    if cost_ratio is None:
        return m ** (1.0 + e) - 1.0
    c = float(cost_ratio)
    return (m - c) * m ** e / (1.0 - c) - 1.0


def recommend_prices(products: pd.DataFrame, current: pd.DataFrame, band: float = 0.10,
                     cost_ratio: float | None = None) -> pd.DataFrame:
    """Price recommendations for products with a usable elasticity.

    products: product_elasticity_frame output (elasticity_used, its CI and source).
    current: product_id, current_price, units_per_day, revenue_per_day (recent demand at
    the current price). Returns one row per product with an elasticity_used and a positive
    current price: the optimal multiplier (`optimal_price_ratio`), the recommended price,
    expected relative change of units, revenue and the objective, each with the range
    implied by the elasticity's 95% CI, expected absolute daily changes, and
    is_direction_robust (the optimum at both CI ends moves the price the same way)."""
    if cost_ratio is not None and not 0.0 <= float(cost_ratio) < 1.0:
        raise ValueError("cost_ratio must be in [0, 1) or None")
    df = products.loc[products["elasticity_used"].notna()].merge(
        current, on="product_id", how="inner")
    df = df.loc[df["current_price"] > 0].copy()
    e = df["elasticity_used"].to_numpy(dtype=np.float64)
    e_lo = df["elasticity_used_ci_low"].to_numpy(dtype=np.float64)
    e_hi = df["elasticity_used_ci_high"].to_numpy(dtype=np.float64)
    m = optimal_price_ratio(e, band, cost_ratio)
    df["price_change"] = np.round(m - 1.0, 6)
    df["recommended_price"] = np.round(df["current_price"].to_numpy() * m, 2)
    df["objective"] = "revenue" if cost_ratio is None else "margin"
    for name, fn in (("units", lambda ee: m ** ee - 1.0),
                     ("revenue", lambda ee: m ** (1.0 + ee) - 1.0),
                     ("objective", lambda ee: _objective_change(m, ee, cost_ratio))):
        mid, a, b = fn(e), fn(e_lo), fn(e_hi)
        df[f"expected_{name}_change"] = mid
        df[f"expected_{name}_change_low"] = np.minimum(a, b)
        df[f"expected_{name}_change_high"] = np.maximum(a, b)
    df["expected_units_per_day_delta"] = df["units_per_day"] * df["expected_units_change"]
    df["expected_revenue_per_day_delta"] = (df["revenue_per_day"]
                                            * df["expected_revenue_change"])
    m_lo = optimal_price_ratio(e_lo, band, cost_ratio)
    m_hi = optimal_price_ratio(e_hi, band, cost_ratio)
    df["is_direction_robust"] = np.sign(m_lo - 1.0) == np.sign(m_hi - 1.0)
    return df.sort_values("product_id", ignore_index=True)


def price_recommendations(model: ElasticityModel, current: pd.DataFrame,
                          band: float = 0.10, cost_ratio: float | None = None
                          ) -> pd.DataFrame:
    """Recommendations for every product with recent purchases at a known current price.

    current: product_id, category_l1, current_price, units_per_day, revenue_per_day (one
    row per product). The elasticity used is the product's own when reliable, else its
    category's when that CI excludes 0 (products without an own estimate, e.g. a single
    price, included); products with neither get no row."""
    est = product_elasticity_frame(model)
    cols = ["elasticity", "ci_low", "ci_high", "is_reliable", "elasticity_source",
            "elasticity_used", "elasticity_used_ci_low", "elasticity_used_ci_high"]
    cur = current.loc[current["units_per_day"] > 0, [
        "product_id", "category_l1", "current_price", "units_per_day",
        "revenue_per_day"]].copy()
    cur["category_l1"] = cur["category_l1"].fillna(UNKNOWN_CATEGORY).astype(str)
    df = cur.merge(est[["product_id", *cols]], on="product_id", how="left")
    cat = model.categories.set_index("category_l1")
    cat = cat.loc[cat["ci_high"] < 0]
    fill = df["elasticity_used"].isna() & df["category_l1"].isin(cat.index)
    for col, src in (("elasticity_used", "elasticity"), ("elasticity_used_ci_low", "ci_low"),
                     ("elasticity_used_ci_high", "ci_high")):
        df.loc[fill, col] = cat[src].reindex(df.loc[fill, "category_l1"]).to_numpy()
    df.loc[fill, "elasticity_source"] = "category"
    df["is_reliable"] = df["is_reliable"].fillna(False).astype(bool)
    df = df.rename(columns={"elasticity": "product_elasticity",
                            "ci_low": "product_ci_low", "ci_high": "product_ci_high"})
    base = df.drop(columns=["current_price", "units_per_day", "revenue_per_day"])
    current_cols = df[["product_id", "current_price", "units_per_day", "revenue_per_day"]]
    return recommend_prices(base, current_cols, band, cost_ratio)


# --------------------------------------------------------------------------------------
# Empty score tables (a skipped run)
# --------------------------------------------------------------------------------------

# Arrow text keeps an empty column typed (VARCHAR) in DuckDB.
_TEXT = pd.ArrowDtype(pa.string())
_CATEGORY_COLUMNS = {
    "category_l1": _TEXT, "elasticity": "float64", "std_error": "float64",
    "ci_low": "float64", "ci_high": "float64", "placebo_elasticity": "float64",
    "placebo_std_error": "float64", "n_products": "int64", "n_cells": "int64",
    "purchases": "int64", "has_enough_data": "bool"}
_PRODUCT_COLUMNS = {
    "product_id": "int64", "category_l1": _TEXT, "n_cells": "int64", "n_prices": "int64",
    "views": "int64", "purchases": "int64", "elasticity": "float64",
    "std_error": "float64", "ci_low": "float64", "ci_high": "float64",
    "is_reliable": "bool", "category_elasticity": "float64",
    "category_ci_low": "float64", "category_ci_high": "float64",
    "elasticity_source": _TEXT, "elasticity_used": "float64",
    "elasticity_used_ci_low": "float64", "elasticity_used_ci_high": "float64"}
_RECOMMENDATION_COLUMNS = {
    "product_id": "int64", "category_l1": _TEXT, "product_elasticity": "float64",
    "product_ci_low": "float64", "product_ci_high": "float64", "is_reliable": "bool",
    "elasticity_source": _TEXT, "elasticity_used": "float64",
    "elasticity_used_ci_low": "float64", "elasticity_used_ci_high": "float64",
    "current_price": "float64", "units_per_day": "float64", "revenue_per_day": "float64",
    "price_change": "float64", "recommended_price": "float64", "objective": _TEXT,
    **{f"expected_{name}_change{end}": "float64"
       for name in ("units", "revenue", "objective") for end in ("", "_low", "_high")},
    "expected_units_per_day_delta": "float64", "expected_revenue_per_day_delta": "float64",
    "is_direction_robust": "bool"}


def _empty(columns: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def empty_category_frame() -> pd.DataFrame:
    """`category_elasticity_frame`'s columns without rows (a skipped run)."""
    return _empty(_CATEGORY_COLUMNS)


def empty_product_frame() -> pd.DataFrame:
    """`product_elasticity_frame`'s columns without rows (a skipped run)."""
    return _empty(_PRODUCT_COLUMNS)


def empty_recommendations() -> pd.DataFrame:
    """`price_recommendations`' columns without rows (a skipped run)."""
    return _empty(_RECOMMENDATION_COLUMNS)


def with_run_columns(scores: pd.DataFrame, run: Any) -> pd.DataFrame:
    """`scores` with the run_id of the training run first and its guardrail flag
    (is_model_below_baseline) last, typed even when there are no rows."""
    out = scores.copy()
    out.insert(0, "run_id", pd.Series([str(run["run_id"])] * len(out), index=out.index,
                                      dtype=_TEXT))
    out["is_model_below_baseline"] = pd.Series(bool(run["is_below_baseline"]),
                                               index=out.index, dtype=bool)
    return out
