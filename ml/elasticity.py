"""Price elasticity of demand = traffic elasticity + conversion elasticity.

Plain functions on arrays and frames, usable outside dbt. No I/O, no global state.

The data are *cells*: one row per product x day x price (a price spell within a day; the
SQL model int_product_price_spells_aggregated builds them), with the views and purchases
at that price. Price moves demand twice: it changes how many people see a product
(ranking, price filters, comparison sites) and how many of those who see it buy. Per
category_l1 two log-log models, each with product and day fixed effects:

    traffic     E[views_jd]       = exp(a_j + g_d + t * log(price_jd))      (product-days)
    conversion  E[purchases_jdp]  = views_jdp * exp(a_j + g_d + c * log(price_jdp))

t is the traffic elasticity, c the elasticity of purchases per view (the model before
this one used only c), and the demand elasticity is their sum t + c: units sold scale
with price ** (t + c). Both are fitted by Poisson pseudo-maximum likelihood (PPML;
Santos Silva & Tenreyro 2006), consistent whenever the conditional mean is right,
whatever the distribution of the counts (zeros, over-dispersion), with the fixed effects
concentrated out (closed form given the rest; no dummy columns).

Traffic cells are product-days: the views of every day from the product's first to its
last day with views in the window, zero-view days included (dropping them would keep only
the days the product was seen, and bias t towards 0). The price of a day without views
is unknown in click-stream data; it is carried forward from the last day with views
(back from the next at the start), as are zero-price display glitches.

Inference: cluster-robust by product. Each fit's influence per product (the PPML score
of the product's cells times the inverse information, both fixed effects partialled
out) is kept, so the variance of t + c is that of the summed influences: the joint
sandwich of the two fits, with their covariance. Product-level elasticities use the
same models per product with the category's day effects as an offset; they are shrunk
toward their category's estimate (empirical Bayes, a normal prior whose spread is
estimated per category by the method of moments), so every product gets an elasticity
and none is selected on significance.

Prices are the ones shown in the cell. Conversion cells without views or with a zero
price (display glitches) are left out: a purchase there cannot be related to a price.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.drift import feature_drift
from ml.evaluation import (BOOTSTRAP_SAMPLES, InsufficientHistory, Resampler, compare,
                           require_history, rolling_cutoffs)
from ml.registry import Metric, TrainingRun, Window

__all__ = [
    "MODEL_NAME",
    "PpmlFit",
    "ElasticityModel",
    "fit_ppml_fe",
    "cluster_influence",
    "cluster_robust_inference",
    "prepare_cells",
    "traffic_cells",
    "informative_products",
    "estimate_category_elasticities",
    "estimate_product_elasticities",
    "combine_demand",
    "shrink_to_category",
    "shuffle_within",
    "holdout_deviance",
    "poisson_deviance",
    "train_price_elasticity",
    "evaluate_price_elasticity",
    "holdout_cells",
    "deviance_metrics",
    "planted_recovery",
    "empty_category_frame",
    "empty_product_frame",
    "empty_recommendations",
    "with_run_columns",
    "category_elasticity_frame",
    "product_elasticity_frame",
    "price_scenarios",
    "price_recommendations",
]

MODEL_NAME = "price_elasticity"
UNKNOWN_CATEGORY = "unknown"
Z95 = 1.959963984540054
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


def cluster_influence(fit: PpmlFit, y: np.ndarray, x: np.ndarray, product: np.ndarray,
                      day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-product influence of a `fit_ppml_fe` fit's slopes: (product codes (G,),
    psi (G, k)), psi_g = H^-1 sum over g's rows of xt (y - mu), with xt the regressors
    residualised on both fixed effects with weights mu (Frisch-Waugh-Lovell for the IRLS
    normal equations) and H = sum mu xt xt'. The cluster-robust variance is
    G / (G - 1) psi' psi (ppmlhdfe's and fixest's); influences of two fits on the same
    products add up to the influence of the sum of their slopes."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
    live = fit.mu > 0
    k = x.shape[1]
    empty = (np.empty(0, dtype=np.int64), np.empty((0, k)))
    if live.sum() <= k + 1:
        return empty
    mu = fit.mu[live]
    codes, g1 = np.unique(np.asarray(product)[live], return_inverse=True)
    g2 = np.unique(np.asarray(day)[live], return_inverse=True)[1]
    xt = _residualize_two_way(x[live], mu, g1, g2)
    info = (xt * mu[:, None]).T @ xt
    if len(codes) < 2 or np.linalg.matrix_rank(info) < k:
        return empty
    resid = y[live] - mu
    score = np.stack([_group_sum(g1, xt[:, j] * resid, len(codes)) for j in range(k)],
                     axis=1)
    return codes, score @ np.linalg.inv(info)


def _cluster_se(psi: np.ndarray) -> np.ndarray:
    g = len(psi)
    if g < 2:
        return np.full(psi.shape[1] if psi.ndim == 2 else 1, np.nan)
    return np.sqrt(g / (g - 1) * (psi ** 2).sum(axis=0))


def cluster_robust_inference(fit: PpmlFit, y: np.ndarray, x: np.ndarray,
                             product: np.ndarray, day: np.ndarray,
                             alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Cluster-robust (by product) standard errors and normal confidence intervals of a
    `fit_ppml_fe` fit, from `cluster_influence`. Returns {"beta", "se", "ci_low",
    "ci_high"} (NaN when fewer than two products carry information)."""
    _, psi = cluster_influence(fit, y, x, product, day)
    k = len(fit.beta)
    se = _cluster_se(psi) if len(psi) else np.full(k, np.nan)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return {"beta": fit.beta, "se": se, "ci_low": fit.beta - z * se,
            "ci_high": fit.beta + z * se}


def poisson_deviance(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Unit Poisson deviance 2 (y log(y/mu) - (y - mu)), 0 log 0 = 0."""
    y = np.asarray(y, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return 2.0 * (term - (y - mu))


# --------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------

def _with_main_category(cells: pd.DataFrame) -> pd.DataFrame:
    """`cells` with category_l1 replaced by the product's most viewed one ('unknown' for
    NULL) and event_date as datetime64."""
    out = cells.copy()
    out["event_date"] = pd.to_datetime(out["event_date"])
    cat = out["category_l1"].astype(object).where(out["category_l1"].notna(),
                                                 UNKNOWN_CATEGORY)
    out["category_l1"] = cat.astype(str)
    main = (out.groupby(["product_id", "category_l1"], as_index=False)["views"].sum()
            .sort_values(["product_id", "views", "category_l1"],
                         ascending=[True, False, True])
            .drop_duplicates("product_id")[["product_id", "category_l1"]])
    return out.drop(columns="category_l1").merge(main, on="product_id", how="left")


def prepare_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The conversion cells: views > 0 and price > 0, with log_price, log_views, the
    product's category (its most viewed category_l1; 'unknown' when NULL) and a day
    column `event_date` (datetime64). Input columns: product_id, event_date, price,
    category_l1, views, purchases."""
    out = _with_main_category(cells.loc[(cells["views"] > 0) & (cells["price"] > 0)])
    out["price"] = out["price"].astype(np.float64)
    out["views"] = out["views"].astype(np.float64)
    out["purchases"] = out["purchases"].astype(np.float64)
    out["log_price"] = np.log(out["price"])
    out["log_views"] = np.log(out["views"])
    return out.sort_values(["category_l1", "product_id", "event_date", "price"],
                           ignore_index=True)


def informative_products(cells: pd.DataFrame) -> pd.DataFrame:
    """Conversion cells of the products that carry information on price: at least two
    prices and one purchase among `cells` (so a window's products come from its own
    dates)."""
    by = cells.groupby("product_id")
    keep = (by["log_price"].transform("nunique") > 1) & (by["purchases"].transform("sum") > 0)
    return cells.loc[keep]


def traffic_cells(cells: pd.DataFrame, min_prices: int = 2) -> pd.DataFrame:
    """Product-day traffic cells of the products with at least `min_prices` positive
    prices among `cells` (2 to fit: a single price says nothing on the slope; 1 to
    score): every day from the product's first to its last day with views, zero-view
    days included. views: all views of the day (any price); log_price: the view-weighted
    mean log of the positive prices of the day, carried forward from the last day with one
    (back from the next at the start) when the day had no views or only a displayed 0.
    Input: product_id, event_date, price, category_l1, views (raw cells, any price).
    Output: product_id, category_l1, event_date, views, log_price (sorted)."""
    seen = _with_main_category(cells.loc[cells["views"] > 0])
    seen["views"] = seen["views"].astype(np.float64)
    priced = seen["price"] > 0
    seen["wlog"] = np.where(priced, seen["views"] * np.log(seen["price"].where(priced, 1.0)),
                            0.0)
    seen["wviews"] = np.where(priced, seen["views"], 0.0)
    days = seen.groupby(["product_id", "event_date"], as_index=False).agg(
        category_l1=("category_l1", "first"), views=("views", "sum"),
        wlog=("wlog", "sum"), wviews=("wviews", "sum"))
    n_prices = seen.loc[priced].groupby("product_id")["price"].nunique()
    days = days.loc[days["product_id"].isin(n_prices.index[n_prices >= min_prices])]
    if days.empty:
        return pd.DataFrame({"product_id": pd.Series(dtype="int64"),
                             "category_l1": pd.Series(dtype=object),
                             "event_date": pd.Series(dtype="datetime64[ns]"),
                             "views": pd.Series(dtype="float64"),
                             "log_price": pd.Series(dtype="float64")})
    span = days.groupby("product_id").agg(first=("event_date", "min"),
                                          last=("event_date", "max"),
                                          category_l1=("category_l1", "first"))
    length = ((span["last"] - span["first"]).dt.days + 1).to_numpy()
    grid = pd.DataFrame({
        "product_id": np.repeat(span.index.to_numpy(), length),
        "category_l1": np.repeat(span["category_l1"].to_numpy(), length),
        "event_date": np.repeat(span["first"].to_numpy(), length)
        + pd.to_timedelta(np.concatenate([np.arange(n) for n in length]), "D")})
    out = grid.merge(days[["product_id", "event_date", "views", "wlog", "wviews"]],
                     on=["product_id", "event_date"], how="left")
    out["views"] = out["views"].fillna(0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["log_price"] = out["wlog"] / out["wviews"]
    out.loc[~(out["wviews"] > 0), "log_price"] = np.nan
    out["log_price"] = out.groupby("product_id")["log_price"].ffill()
    out["log_price"] = out.groupby("product_id")["log_price"].bfill()
    return out.drop(columns=["wlog", "wviews"]).sort_values(
        ["category_l1", "product_id", "event_date"], ignore_index=True)


def _codes(values: pd.Series) -> np.ndarray:
    return pd.factorize(values, sort=True)[0].astype(np.int64)


# --------------------------------------------------------------------------------------
# Category and product estimates
# --------------------------------------------------------------------------------------

# The two models: outcome column and log-exposure column (None: no offset).
TRAFFIC = ("views", None)
CONVERSION = ("purchases", "log_views")


@dataclass
class CategoryFit:
    """One category's fit: estimates plus the effects needed to predict, and the
    per-product influence of the elasticity (for the covariance with another fit)."""
    category_l1: str
    estimate: dict[str, float]
    product_effect: pd.Series  # alpha by product_id
    day_effect: pd.Series  # gamma by event_date
    influence: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))


def _offset(group: pd.DataFrame, exposure: str | None) -> np.ndarray:
    return (group[exposure].to_numpy(dtype=np.float64) if exposure
            else np.zeros(len(group)))


def _fit_category(group: pd.DataFrame, price_effect: bool = True, inference: bool = True,
                  model: tuple[str, str | None] = CONVERSION) -> CategoryFit:
    outcome, exposure = model
    product = _codes(group["product_id"])
    day = _codes(group["event_date"])
    y = group[outcome].to_numpy(dtype=np.float64)
    x = group[["log_price"]].to_numpy() if price_effect else np.zeros((len(group), 0))
    fit = fit_ppml_fe(y, x, _offset(group, exposure), product, day)
    estimate = {"elasticity": np.nan, "std_error": np.nan, "ci_low": np.nan,
                "ci_high": np.nan}
    influence = pd.Series(dtype="float64")
    ids = np.sort(group["product_id"].unique())
    if price_effect and (fit.mu > 0).any():
        estimate["elasticity"] = float(fit.beta[0])
    if price_effect and inference and (fit.mu > 0).any():
        codes, psi = cluster_influence(fit, y, x, product, day)
        if len(codes):
            influence = pd.Series(psi[:, 0], index=ids[codes])
            se = float(_cluster_se(psi)[0])
            estimate.update(std_error=se, ci_low=float(fit.beta[0]) - Z95 * se,
                            ci_high=float(fit.beta[0]) + Z95 * se)
    live = fit.mu > 0
    estimate.update({
        "n_products": float(group.loc[live, "product_id"].nunique()),
        "n_cells": float(live.sum()),
        "total": float(y[live].sum()),
        "converged": float(fit.converged),
    })
    days = pd.Series(fit.gamma, index=np.sort(group["event_date"].unique()))
    return CategoryFit(str(group["category_l1"].iloc[0]), estimate,
                       pd.Series(fit.alpha, index=ids), days, influence)


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


def estimate_category_elasticities(cells: pd.DataFrame, min_count: int = 50,
                                   price_effect: bool = True, inference: bool = True,
                                   model: tuple[str, str | None] = CONVERSION
                                   ) -> tuple[pd.DataFrame, dict[str, CategoryFit]]:
    """Per category_l1 elasticity (PPML, product and day FE) of `model`'s outcome
    (CONVERSION: purchases with log views as the offset, on `prepare_cells` cells;
    TRAFFIC: views, on `traffic_cells`). Categories whose products with several prices
    total fewer than `min_count` of the outcome get NaN estimates (has_enough_data
    false). Without `inference` the cluster-robust standard errors are skipped (NaN): an
    out-of-time fit only predicts. Returns (frame, fits); the frame's `total` is the
    outcome's sum."""
    outcome = model[0]
    rows, fits = [], {}
    for name, group in cells.groupby("category_l1", sort=True):
        has_prices = group.groupby("product_id")["log_price"].transform("nunique") > 1
        if group.loc[has_prices, outcome].sum() < min_count:
            rows.append({"category_l1": name, "elasticity": np.nan, "std_error": np.nan,
                         "ci_low": np.nan, "ci_high": np.nan,
                         "n_products": float(group["product_id"].nunique()),
                         "n_cells": float(len(group)),
                         "total": float(group[outcome].sum()),
                         "converged": np.nan, "has_enough_data": False})
            continue
        fit = _fit_category(group, price_effect=price_effect, inference=inference,
                            model=model)
        fits[name] = fit
        rows.append({"category_l1": name, **fit.estimate, "has_enough_data": True})
    columns = ["category_l1", "elasticity", "std_error", "ci_low", "ci_high", "n_products",
               "n_cells", "total", "converged", "has_enough_data"]
    return pd.DataFrame(rows, columns=columns), fits


def combine_demand(traffic: dict[str, CategoryFit], conversion: dict[str, CategoryFit]
                   ) -> pd.DataFrame:
    """Demand elasticity t + c per category fitted by both models, with its cluster-
    robust standard error from the summed per-product influences (products in only one
    fit contribute that fit's influence): the joint sandwich, covariance included.
    Returns category_l1, elasticity, std_error, ci_low, ci_high, covariance (of t and c)."""
    rows = []
    for name in sorted(set(traffic) & set(conversion)):
        t, c = traffic[name], conversion[name]
        both = pd.concat([t.influence.rename("t"), c.influence.rename("c")], axis=1)
        both = both.fillna(0.0)
        g = len(both)
        est = t.estimate["elasticity"] + c.estimate["elasticity"]
        if g < 2 or t.influence.empty or c.influence.empty:
            se = cov = np.nan
        else:
            se = float(np.sqrt(g / (g - 1) * ((both["t"] + both["c"]) ** 2).sum()))
            cov = float(g / (g - 1) * (both["t"] * both["c"]).sum())
        rows.append({"category_l1": name, "elasticity": est, "std_error": se,
                     "ci_low": est - Z95 * se, "ci_high": est + Z95 * se,
                     "covariance": cov})
    return pd.DataFrame(rows, columns=["category_l1", "elasticity", "std_error", "ci_low",
                                       "ci_high", "covariance"])


def estimate_product_elasticities(cells: pd.DataFrame, fits: dict[str, CategoryFit],
                                  max_iter: int = 100, tol: float = 1e-9,
                                  max_abs_elasticity: float = 10.0,
                                  model: tuple[str, str | None] = CONVERSION
                                  ) -> pd.DataFrame:
    """Per product elasticity: PPML of the outcome on log price with the product's own
    intercept and its category's day effects (plus log views for CONVERSION) as the
    offset, all products at once (vectorised Newton). HC1 sandwich standard errors and
    normal 95% intervals; model_std_error is the Poisson one (inverse information).
    Products with fewer than 3 cells, a zero outcome or a single price get NaN, and so
    do estimates beyond +-max_abs_elasticity or not converged after max_iter
    (separation: the likelihood has no finite maximum). Returns product_id,
    category_l1, n_cells, n_prices, total (the outcome's sum), elasticity, std_error,
    ci_low, ci_high, model_std_error."""
    outcome, exposure = model
    day_effect = pd.concat(
        [fit.day_effect.rename("gamma").rename_axis("event_date").reset_index()
         .assign(category_l1=name) for name, fit in fits.items()], ignore_index=True) \
        if fits else pd.DataFrame(columns=["event_date", "gamma", "category_l1"])
    data = cells.merge(day_effect, on=["category_l1", "event_date"], how="inner")
    data = data.loc[np.isfinite(data["gamma"].to_numpy(dtype=np.float64))]
    summary = cells.groupby("product_id").agg(
        category_l1=("category_l1", "first"), n_cells=(outcome, "size"),
        n_prices=("log_price", "nunique"), total=(outcome, "sum")).reset_index()
    out = summary.assign(elasticity=np.nan, std_error=np.nan, ci_low=np.nan, ci_high=np.nan,
                         model_std_error=np.nan)
    if data.empty:
        return out
    data = data.loc[data.groupby("product_id")[outcome].transform("sum") > 0]
    data = data.loc[data.groupby("product_id")["log_price"].transform("nunique") > 1]
    data = data.loc[data.groupby("product_id")[outcome].transform("size") >= 3]
    if data.empty:
        return out
    g = _codes(data["product_id"])
    ids = np.sort(data["product_id"].unique())
    n = len(ids)
    y = data[outcome].to_numpy(dtype=np.float64)
    x = data["log_price"].to_numpy(dtype=np.float64)
    o = (_offset(data, exposure) + data["gamma"].to_numpy(dtype=np.float64))
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
    with np.errstate(divide="ignore"):
        model_se = 1.0 / np.sqrt(info)
    est = pd.DataFrame({"product_id": ids, "elasticity": beta, "std_error": se,
                        "model_std_error": model_se})
    # no finite maximum (e.g. purchases only at the lowest price: separation) or no
    # usable variance: not estimable
    bad = (~np.isfinite(est["std_error"]) | (est["std_error"] <= 0)
           | (np.abs(est["elasticity"]) > max_abs_elasticity) | ~np.isfinite(step))
    est.loc[bad, ["elasticity", "std_error", "model_std_error"]] = np.nan
    est["ci_low"] = est["elasticity"] - Z95 * est["std_error"]
    est["ci_high"] = est["elasticity"] + Z95 * est["std_error"]
    return summary.merge(est, on="product_id", how="left")


def shrink_to_category(products: pd.DataFrame, categories: pd.DataFrame) -> pd.DataFrame:
    """Empirical-Bayes partial pooling of product elasticities toward their category's.

    products: product_id, category_l1, elasticity, std_error (NaN: no own estimate).
    categories: category_l1, elasticity, std_error (the category fit).
    Per category, the products' true elasticities are taken as N(category estimate,
    tau^2); tau^2 is the DerSimonian-Laird moment estimate from the own estimates
    (0 when they scatter no more than their standard errors say). Each product gets the
    posterior mean w * own + (1 - w) * category, w = tau^2 / (tau^2 + se^2) (w = 0
    without an own estimate), and the posterior standard error sqrt(w se^2 + (1 - w)^2
    var_category), which is sqrt(tau^2 + var_category) for a product without data.
    Returns product_id, pooled_elasticity, pooled_std_error, own_weight, tau."""
    cat = categories.set_index("category_l1")
    out = []
    for name, group in products.groupby("category_l1", sort=True):
        mu = float(cat["elasticity"].get(name, np.nan))
        var_mu = float(cat["std_error"].get(name, np.nan)) ** 2
        b = group["elasticity"].to_numpy(dtype=np.float64)
        s2 = group["std_error"].to_numpy(dtype=np.float64) ** 2
        ok = np.isfinite(b) & np.isfinite(s2) & (s2 > 0)
        tau2 = 0.0
        if ok.sum() >= 3:
            w = 1.0 / s2[ok]
            mean = (w * b[ok]).sum() / w.sum()
            q = (w * (b[ok] - mean) ** 2).sum()
            tau2 = max(0.0, (q - (ok.sum() - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
        weight = np.where(ok, tau2 / (tau2 + np.where(ok, s2, 1.0)), 0.0)
        own = np.where(ok, b, 0.0)
        pooled = weight * own + (1.0 - weight) * mu
        post_var = np.where(ok, weight * np.where(ok, s2, 0.0), tau2) \
            + (1.0 - weight) ** 2 * var_mu
        out.append(pd.DataFrame({"product_id": group["product_id"].to_numpy(),
                                 "pooled_elasticity": pooled,
                                 "pooled_std_error": np.sqrt(post_var),
                                 "own_weight": weight, "tau": np.sqrt(tau2)}))
    if not out:
        return pd.DataFrame(columns=["product_id", "pooled_elasticity", "pooled_std_error",
                                     "own_weight", "tau"])
    return pd.concat(out, ignore_index=True)


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
                  baseline_fits: dict[str, CategoryFit],
                  model: tuple[str, str | None] = CONVERSION) -> pd.DataFrame:
    """The out-of-time predictions of the test cells: product_id, category_l1, the
    outcome (column `observed`) and its expectation `mu_model` (product effects and
    elasticity of the training fit) and `mu_baseline` (the same model with elasticity 0,
    refitted). Day effects of the test days are unknown ahead of time, so each model gets
    its own closed-form day effect per category and test day (both conditioned on the
    day's total, which is fair to both). Only test cells of products with a finite
    training effect in both fits are scored."""
    outcome, exposure = model
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
        y = group[outcome].to_numpy(dtype=np.float64)
        beta = fit.estimate["elasticity"]
        mus = []
        for a, slope in ((a_m, beta), (a_b, 0.0)):
            raw = np.exp(a + slope * group["log_price"].to_numpy() + _offset(group, exposure))
            scale = _group_sum(day, y, day.max() + 1) / _group_sum(day, raw, day.max() + 1)
            mus.append(raw * scale[day])
        frames.append(pd.DataFrame({"product_id": group["product_id"].to_numpy(),
                                    "category_l1": name, "observed": y,
                                    "mu_model": mus[0], "mu_baseline": mus[1]}))
    if not frames:
        return pd.DataFrame({"product_id": pd.Series(dtype="int64"),
                             "category_l1": pd.Series(dtype=object),
                             **{c: pd.Series(dtype="float64")
                                for c in ("observed", "mu_model", "mu_baseline")}})
    return pd.concat(frames, ignore_index=True)


def holdout_deviance(test: pd.DataFrame, fits: dict[str, CategoryFit],
                     baseline_fits: dict[str, CategoryFit],
                     model: tuple[str, str | None] = CONVERSION) -> dict[str, float]:
    """Out-of-time mean Poisson deviance of `holdout_cells`, for the model and for the
    no-price-effect baseline (NaN without a scored cell)."""
    cells = holdout_cells(test, fits, baseline_fits, model)
    if cells.empty:
        return {"model": np.nan, "baseline": np.nan, "n_cells": 0.0, "total": 0.0}
    dev = _mean_deviances(cells)
    return {**dev, "n_cells": float(len(cells)), "total": float(cells["observed"].sum())}


def _mean_deviances(holdout: pd.DataFrame) -> dict[str, float]:
    if holdout.empty:
        return {"model": 0.0, "baseline": 0.0}
    y = holdout["observed"].to_numpy()
    return {"model": float(poisson_deviance(y, holdout["mu_model"].to_numpy()).mean()),
            "baseline": float(poisson_deviance(y, holdout["mu_baseline"].to_numpy()).mean())}


def deviance_metrics(cells: pd.DataFrame, split: str, cutoff: date | None,
                     n_bootstrap: int, seed: int, metric: str = "poisson_deviance",
                     is_primary: bool = True) -> list[Metric]:
    """Mean Poisson deviance of `holdout_cells` beside the no-price-effect baseline, with
    paired bootstrap intervals resampling products (all cells of a drawn product
    together). No scored cell: None with the reason. The conversion model's is the
    primary metric; the traffic model's (`traffic_poisson_deviance`) is not."""
    y = cells["observed"].to_numpy(dtype=np.float64)
    model = poisson_deviance(y, cells["mu_model"].to_numpy(dtype=np.float64))
    base = poisson_deviance(y, cells["mu_baseline"].to_numpy(dtype=np.float64))

    def mean_of(values: np.ndarray):
        return lambda rows: float(values[rows].mean())

    resampler = Resampler(len(cells), n_samples=n_bootstrap, seed=seed,
                          clusters=cells["product_id"].to_numpy())
    return compare(metric, mean_of(model), {"no_price_effect": mean_of(base)},
                   resampler, higher_is_better=False, is_primary=is_primary, split=split,
                   cutoff=cutoff)


# --------------------------------------------------------------------------------------
# Training run
# --------------------------------------------------------------------------------------

@dataclass
class ElasticityModel:
    """The artifact of a training run: the published estimates (fitted on every day up to
    the last date): categories (demand, traffic and conversion elasticities, the
    products' spread tau around them), products (own and pooled estimates)."""
    categories: pd.DataFrame
    products: pd.DataFrame
    placebo: pd.DataFrame
    last_date: date | None
    params: dict[str, Any] = field(default_factory=dict)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in str(name).lower())


# Days of cells the fit needs before its first validation or test day: the product and
# day effects need several days per product to leave price variation to estimate from.
MIN_TRAIN_DAYS = 14
# Fixed a priori, never tuned on a test window (docs block pricing_model): a category
# needs 50 purchases (and 50 views) of products with varying prices.
MIN_CATEGORY_PURCHASES = 50


def _raw_cells(cells: pd.DataFrame, max_products_per_category: int | None,
               seed: int) -> pd.DataFrame:
    """Cells with views (any price), each product under its main category, subsampled."""
    raw = _with_main_category(cells.loc[cells["views"] > 0])
    raw = _subsample_products(raw, max_products_per_category, seed)
    if not (raw["price"] > 0).any():
        raise InsufficientHistory(1, 0, "estimable cells (views and a positive price)")
    return raw


@dataclass
class _Fits:
    """Both models' category fits on one window's cells."""
    conversion: pd.DataFrame
    traffic: pd.DataFrame
    conversion_fits: dict[str, CategoryFit]
    traffic_fits: dict[str, CategoryFit]
    conversion_cells: pd.DataFrame
    traffic_cells: pd.DataFrame


def _fit_window(raw: pd.DataFrame, min_count: int, inference: bool = True,
                shuffle_seed: int | None = None) -> _Fits:
    """Fit traffic and conversion per category on `raw` cells (one window: its products
    and cells come from its own dates). With `shuffle_seed`, log prices are shuffled
    within product first (the placebo)."""
    conv = informative_products(prepare_cells(raw))
    traffic = traffic_cells(raw)
    if shuffle_seed is not None:
        conv = conv.assign(log_price=shuffle_within(
            conv["log_price"].to_numpy(), conv["product_id"].to_numpy(), shuffle_seed))
        traffic = traffic.assign(log_price=shuffle_within(
            traffic["log_price"].to_numpy(), traffic["product_id"].to_numpy(),
            shuffle_seed))
    c, c_fits = estimate_category_elasticities(conv, min_count, inference=inference)
    t, t_fits = estimate_category_elasticities(traffic, min_count, inference=inference,
                                               model=TRAFFIC)
    return _Fits(c, t, c_fits, t_fits, conv, traffic)


def _holdouts(train_raw: pd.DataFrame, test_raw: pd.DataFrame, min_count: int
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-time conversion and traffic holdout cells (`holdout_cells`): fitted on
    `train_raw` with and without the price effect, scored on `test_raw`."""
    fits = _fit_window(train_raw, min_count, inference=False)
    out = []
    for model, cells, cat_fits, test in (
            (CONVERSION, fits.conversion_cells, fits.conversion_fits,
             prepare_cells(test_raw)),
            (TRAFFIC, fits.traffic_cells, fits.traffic_fits,
             traffic_cells(test_raw, min_prices=1))):
        _, base = estimate_category_elasticities(
            cells.loc[cells["category_l1"].isin(list(cat_fits))], 0, price_effect=False,
            model=model)
        out.append(holdout_cells(test, cat_fits, base, model))
    return out[0], out[1]


def _category_table(fits: _Fits, placebo: _Fits) -> pd.DataFrame:
    """One row per category: demand (t + c, joint standard error), traffic and
    conversion estimates, placebo, sizes."""
    demand = combine_demand(fits.traffic_fits, fits.conversion_fits)
    demand_placebo = combine_demand(placebo.traffic_fits, placebo.conversion_fits)
    parts = {"traffic": fits.traffic, "conversion": fits.conversion}
    names = sorted(set(fits.conversion["category_l1"]) | set(fits.traffic["category_l1"]))
    out = pd.DataFrame({"category_l1": names})
    out = out.merge(demand.drop(columns="covariance"), on="category_l1", how="left")
    out = out.merge(demand[["category_l1", "covariance"]].rename(
        columns={"covariance": "traffic_conversion_covariance"}), on="category_l1",
        how="left")
    for prefix, frame in parts.items():
        cols = {c: f"{prefix}_{c}" for c in ("elasticity", "std_error", "ci_low", "ci_high")}
        out = out.merge(frame[["category_l1", *cols]].rename(columns=cols),
                        on="category_l1", how="left")
    out = out.merge(demand_placebo[["category_l1", "elasticity", "std_error", "ci_low",
                                    "ci_high"]].rename(columns={
                                        "elasticity": "placebo_elasticity",
                                        "std_error": "placebo_std_error",
                                        "ci_low": "placebo_ci_low",
                                        "ci_high": "placebo_ci_high"}),
                    on="category_l1", how="left")
    for prefix, frame in (("traffic", placebo.traffic), ("conversion", placebo.conversion)):
        out = out.merge(frame[["category_l1", "elasticity", "std_error"]].rename(columns={
            "elasticity": f"placebo_{prefix}_elasticity",
            "std_error": f"placebo_{prefix}_std_error"}), on="category_l1", how="left")
    sizes = fits.conversion.set_index("category_l1")
    out["n_products"] = out["category_l1"].map(sizes["n_products"]).fillna(0)
    out["n_cells"] = out["category_l1"].map(sizes["n_cells"]).fillna(0)
    out["purchases"] = out["category_l1"].map(sizes["total"]).fillna(0)
    out["views"] = out["category_l1"].map(
        fits.traffic.set_index("category_l1")["total"]).fillna(0)
    out["has_enough_data"] = out["elasticity"].notna()
    return out


def _product_table(fits: _Fits, categories: pd.DataFrame) -> tuple[pd.DataFrame,
                                                                    pd.DataFrame]:
    """Own and pooled product elasticities (both models, then their sum), and the
    categories' spread tau of each model."""
    own, pooled, taus = {}, {}, {}
    for prefix, cells, cat_fits, model in (
            ("traffic", fits.traffic_cells, fits.traffic_fits, TRAFFIC),
            ("conversion", fits.conversion_cells, fits.conversion_fits, CONVERSION)):
        est = estimate_product_elasticities(cells, cat_fits, model=model)
        own[prefix] = est
        # HC1 from a product's few cells understates the noise of small products (which
        # would inflate tau and under-shrink them): pool with the larger of HC1 and the
        # Poisson standard error
        est = est.assign(std_error=np.fmax(est["std_error"], est["model_std_error"]))
        cat = categories[["category_l1", f"{prefix}_elasticity",
                          f"{prefix}_std_error"]].rename(columns={
                              f"{prefix}_elasticity": "elasticity",
                              f"{prefix}_std_error": "std_error"})
        shrunk = shrink_to_category(est, cat)
        pooled[prefix] = shrunk
        taus[prefix] = (shrunk.merge(est[["product_id", "category_l1"]], on="product_id")
                        .groupby("category_l1")["tau"].first())
    ids = pd.DataFrame({"product_id": np.union1d(own["traffic"]["product_id"],
                                                 own["conversion"]["product_id"])})
    summary = pd.concat([own["conversion"][["product_id", "category_l1"]],
                         own["traffic"][["product_id", "category_l1"]]]
                        ).drop_duplicates("product_id")
    out = ids.merge(summary, on="product_id", how="left")
    views = fits.traffic_cells.groupby("product_id")["views"].sum()
    conv = fits.conversion_cells.groupby("product_id").agg(
        n_cells=("purchases", "size"), n_prices=("log_price", "nunique"),
        purchases=("purchases", "sum"))
    out = out.join(conv, on="product_id")
    out["views"] = out["product_id"].map(views)
    cat = categories.set_index("category_l1")
    total_var = np.zeros(len(out))
    total = np.zeros(len(out))
    for prefix in ("traffic", "conversion"):
        o = own[prefix].set_index("product_id")
        p = pooled[prefix].set_index("product_id")
        out[f"{prefix}_elasticity"] = out["product_id"].map(o["elasticity"])
        out[f"{prefix}_std_error"] = out["product_id"].map(o["std_error"])
        out[f"{prefix}_own_weight"] = out["product_id"].map(p["own_weight"]).fillna(0.0)
        # a product absent from one model gets its category's, with the products' spread
        tau = out["category_l1"].map(taus[prefix]).fillna(0.0).to_numpy()
        fallback_mean = out["category_l1"].map(cat[f"{prefix}_elasticity"]).to_numpy()
        fallback_sd = np.sqrt(out["category_l1"].map(cat[f"{prefix}_std_error"])
                              .to_numpy() ** 2 + tau ** 2)
        mean = out["product_id"].map(p["pooled_elasticity"]).to_numpy(dtype=np.float64,
                                                                      copy=True)
        sd = out["product_id"].map(p["pooled_std_error"]).to_numpy(dtype=np.float64, copy=True)
        missing = ~np.isfinite(mean)
        mean[missing] = fallback_mean[missing]
        sd[missing] = fallback_sd[missing]
        out[f"{prefix}_pooled_elasticity"] = mean
        total += mean
        # the two product estimates come from different outcomes of the same product;
        # their covariance is taken as 0 (conversion conditions on the views)
        total_var += sd ** 2
    out["elasticity"] = total
    out["std_error"] = np.sqrt(total_var)
    out["ci_low"] = out["elasticity"] - Z95 * out["std_error"]
    out["ci_high"] = out["elasticity"] + Z95 * out["std_error"]
    out["category_elasticity"] = out["category_l1"].map(cat["elasticity"])
    tau_frame = pd.DataFrame({f"{prefix}_tau": taus[prefix] for prefix in taus})
    return out, tau_frame.rename_axis("category_l1").reset_index()


def planted_recovery(categories: pd.DataFrame, planted: pd.DataFrame | None
                     ) -> list[Metric]:
    """Registry metrics against the generator's planted elasticities (split
    `planted_truth`): per category and kind (traffic, conversion, demand) the estimate
    minus the truth, and per kind the largest absolute miss. planted: category_l1,
    traffic_elasticity, conversion_elasticity, demand_elasticity (None or empty: no
    metrics, real data)."""
    if planted is None or planted.empty:
        return []
    truth = planted.set_index("category_l1")
    est = categories.set_index("category_l1")
    metrics = []
    for kind, column in (("traffic", "traffic_elasticity"),
                         ("conversion", "conversion_elasticity"),
                         ("demand", "elasticity")):
        both = pd.concat([est[column].rename("estimate"),
                          truth[f"{kind}_elasticity"].rename("truth")], axis=1,
                         join="inner").dropna()
        errors = both["estimate"] - both["truth"]
        for name, err in errors.items():
            metrics.append(Metric(f"{kind}_elasticity_error__{_slug(name)}", float(err),
                                  split="planted_truth", higher_is_better=False))
        metrics.append(Metric(f"max_abs_{kind}_elasticity_error",
                              float(errors.abs().max()) if len(errors) else None,
                              split="planted_truth", higher_is_better=False,
                              undefined_reason=None if len(errors) else
                              "no category both estimated and planted"))
    return metrics


def _category_metrics(categories: pd.DataFrame, min_count: int) -> list[Metric]:
    not_estimable = (f"not estimable: fewer than {min_count} purchases of products with "
                     "several prices")
    metrics = []
    for row in categories.to_dict("records"):
        slug = _slug(row["category_l1"])
        for kind, prefix in (("demand", ""), ("traffic", "traffic_"),
                             ("conversion", "conversion_")):
            value = row[f"{prefix}elasticity"]
            reason = None if np.isfinite(value) else not_estimable
            for stat in ("elasticity", "std_error", "ci_low", "ci_high"):
                metrics.append(Metric(
                    f"{kind}_{'elasticity' if stat == 'elasticity' else 'elasticity_' + stat}"
                    f"__{slug}", None if reason else row[f"{prefix}{stat}"], split="full",
                    undefined_reason=reason))
            placebo = row[f"placebo_{prefix}elasticity"]
            if np.isfinite(placebo):
                metrics.append(Metric(f"{kind}_elasticity__{slug}", placebo,
                                      split="placebo"))
    return metrics


def _summary_metrics(categories: pd.DataFrame) -> list[Metric]:
    metrics = []
    est = categories.loc[categories["has_enough_data"]]
    none = "no category has enough data to estimate"
    for kind, prefix in (("demand", ""), ("traffic", "traffic_"),
                         ("conversion", "conversion_")):
        for split, column in (("full", f"{prefix}elasticity"),
                              ("placebo", f"placebo_{prefix}elasticity")):
            values = est[column].dropna()
            metrics.append(Metric(f"mean_abs_{kind}_elasticity",
                                  float(values.abs().mean()) if len(values) else None,
                                  split=split, higher_is_better=split != "placebo",
                                  undefined_reason=None if len(values) else none))
    covered = est.dropna(subset=["placebo_ci_low"])
    metrics.append(Metric("share_placebo_ci_covering_zero", float(
        ((covered["placebo_ci_low"] <= 0) & (covered["placebo_ci_high"] >= 0)).mean())
        if len(covered) else None, split="placebo",
        undefined_reason=None if len(covered) else none))
    return metrics


def train_price_elasticity(cells: pd.DataFrame, cutoff_date: date | str | None = None,
                           horizon_days: int = 30, seed: int = 42,
                           min_category_purchases: int = MIN_CATEGORY_PURCHASES,
                           max_products_per_category: int | None = 20000,
                           n_bootstrap: int = BOOTSTRAP_SAMPLES,
                           planted: pd.DataFrame | None = None) -> TrainingRun:
    """Train, validate and record the price-elasticity model (the production run).

    cells: product x day x price cells with views (product_id, event_date, price,
    category_l1, views, purchases; any price: zero-price views count as traffic).
    cutoff_date: start of the validation window; None = last date + 1 minus horizon_days
    (the latest complete window). Validation: both models fitted on the days before the
    cutoff (products and cells from those days only), the next horizon_days scored out of
    time (mean Poisson deviance vs the same model with elasticity 0; the conversion
    model's is the primary metric, the traffic model's is recorded beside it; intervals
    resampling products). Nothing is chosen on it: the thresholds are fixed a priori.
    Published estimates (the artifact): refit on every day. Placebo: prices shuffled
    within product (seeded), refit: every elasticity must be about zero. `planted` (the
    generator's truth, optional) adds the recovery errors (split planted_truth). Products
    are subsampled (seeded, whole products) to at most max_products_per_category per
    category; None keeps all. Raises InsufficientHistory below MIN_TRAIN_DAYS +
    horizon_days days of cells.
    """
    raw = _raw_cells(cells, max_products_per_category, seed)
    first = raw["event_date"].min().date()
    last = raw["event_date"].max().date()
    require_history(MIN_TRAIN_DAYS + horizon_days, (last - first).days + 1, detail=(
        f"{MIN_TRAIN_DAYS} days of cells to fit, then a {horizon_days}-day validation "
        "window"))
    cutoff = (pd.Timestamp(cutoff_date).date() if cutoff_date not in (None, "", "None")
              else last + timedelta(days=1) - timedelta(days=horizon_days))
    label_end = cutoff + timedelta(days=horizon_days)
    dates = raw["event_date"]
    train = raw.loc[dates < pd.Timestamp(cutoff)]
    test = raw.loc[(dates >= pd.Timestamp(cutoff)) & (dates < pd.Timestamp(label_end))]

    # out-of-time validation
    conversion_holdout, traffic_holdout = _holdouts(train, test, min_category_purchases)

    # published estimates on every day, and the placebo
    fits = _fit_window(raw, min_category_purchases)
    placebo = _fit_window(raw, min_category_purchases, shuffle_seed=seed)
    categories = _category_table(fits, placebo)
    products, taus = _product_table(fits, categories)
    categories = categories.merge(taus, on="category_l1", how="left")

    metrics = deviance_metrics(conversion_holdout, "validation", None, n_bootstrap, seed)
    metrics += deviance_metrics(traffic_holdout, "validation", None, n_bootstrap, seed,
                                metric="traffic_poisson_deviance", is_primary=False)
    metrics += _category_metrics(categories, min_category_purchases)
    metrics += _summary_metrics(categories)
    metrics += planted_recovery(categories, planted)

    params = {
        "cutoff_date": cutoff.isoformat(), "horizon_days": horizon_days, "seed": seed,
        "estimator": "PPML, product + day FE per category_l1: traffic (views per "
                     "product-day) and conversion (purchases, offset log views); demand = "
                     "their sum, joint cluster-robust (product) errors",
        "solver": "hand-written PPML (fixed effects concentrated out); see pricing docs",
        "cells": "conversion: product x day x price spell, views > 0, price > 0, products "
                 "with 2+ prices and a purchase; traffic: product-days incl. zero views",
        "product_estimates": "empirical-Bayes partial pooling toward the category",
        "min_category_purchases": min_category_purchases,
        "max_products_per_category": max_products_per_category,
        "tuned_on_validation": "nothing: every threshold is fixed a priori",
    }
    dev = _mean_deviances(conversion_holdout)
    improvement = (1.0 - dev["model"] / dev["baseline"]) if dev["baseline"] else 0.0
    model = ElasticityModel(categories=categories, products=products,
                            placebo=placebo.conversion, last_date=last, params=params)
    train_conv = prepare_cells(train)
    test_conv = prepare_cells(test)
    return TrainingRun(
        model_name=MODEL_NAME,
        train_window=Window(first, cutoff),
        label_window=Window(cutoff, label_end),
        n_train=int(len(train)),
        n_test=int(len(conversion_holdout)),
        params=params,
        metrics=metrics,
        feature_importance={"log_price": float(improvement)},
        model=model,
        drift=feature_drift(train_conv, test_conv, ("log_price", "log_views")),
    )


def evaluate_price_elasticity(cells: pd.DataFrame, horizon_days: int = 14,
                              step_days: int = 7, n_cutoffs: int = 3, seed: int = 42,
                              min_category_purchases: int = MIN_CATEGORY_PURCHASES,
                              max_products_per_category: int | None = 20000,
                              n_bootstrap: int = BOOTSTRAP_SAMPLES) -> TrainingRun:
    """The rolling-origin evaluation (run_kind "evaluation"): at `n_cutoffs` test cutoffs
    `step_days` apart, the last one's window ending at the last date, both models are
    fitted on the days before the cutoff and their next horizon_days are scored once
    (mean Poisson deviance beside the no-price-effect baseline, split "test", intervals
    resampling products; conversion primary, traffic beside it). Nothing is tuned, so
    there is no validation window to replay."""
    raw = _raw_cells(cells, max_products_per_category, seed)
    first = raw["event_date"].min().date()
    last = raw["event_date"].max().date()
    require_history(MIN_TRAIN_DAYS + horizon_days + step_days * (n_cutoffs - 1),
                    (last - first).days + 1, detail=(
                        f"{MIN_TRAIN_DAYS} days of cells to fit, then {n_cutoffs} test "
                        f"cutoffs {step_days} days apart with {horizon_days}-day windows"))
    cutoffs = rolling_cutoffs(last + timedelta(days=1), horizon_days, step_days, n_cutoffs)
    metrics: list[Metric] = []
    n_test = 0
    for cutoff in cutoffs:
        dates = raw["event_date"]
        train = raw.loc[dates < pd.Timestamp(cutoff)]
        test = raw.loc[(dates >= pd.Timestamp(cutoff))
                       & (dates < pd.Timestamp(cutoff + timedelta(days=horizon_days)))]
        conversion, traffic = _holdouts(train, test, min_category_purchases)
        metrics += deviance_metrics(conversion, "test", cutoff, n_bootstrap, seed)
        metrics += deviance_metrics(traffic, "test", cutoff, n_bootstrap, seed,
                                    metric="traffic_poisson_deviance", is_primary=False)
        n_test += len(conversion)
    return TrainingRun(
        model_name=MODEL_NAME,
        train_window=Window(first, cutoffs[0]),
        label_window=Window(cutoffs[0], last + timedelta(days=1)),
        n_train=int((raw["event_date"] < pd.Timestamp(cutoffs[0])).sum()),
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
    """One row per category_l1: demand elasticity (the columns without prefix) with its
    joint SE and 95% CI, the traffic and conversion elasticities it sums, their
    covariance, the products' spread (tau) around each, placebo, data size."""
    out = model.categories[list(_CATEGORY_COLUMNS)].copy()
    for col in ("n_products", "n_cells", "purchases", "views"):
        out[col] = out[col].astype("int64")
    out["has_enough_data"] = out["has_enough_data"].astype(bool)
    out["category_l1"] = out["category_l1"].astype(_TEXT)
    return out.sort_values("category_l1", ignore_index=True)


def product_elasticity_frame(model: ElasticityModel) -> pd.DataFrame:
    """One row per product in either model: its own traffic and conversion estimates (NaN
    when not estimable), the weight partial pooling gives each, and the pooled demand
    elasticity (sum of the pooled traffic and conversion elasticities) with its SE and
    95% CI."""
    p = model.products.copy()
    for col in ("n_cells", "n_prices", "views", "purchases"):
        p[col] = p[col].fillna(0).astype("int64")
    p["category_l1"] = p["category_l1"].astype(_TEXT)
    return p[list(_PRODUCT_COLUMNS)].sort_values("product_id", ignore_index=True)


def _lognormal_power(m: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[m ** e] for e ~ N(mean, sd^2)."""
    log_m = np.log(m)
    return np.exp(mean * log_m + 0.5 * (sd * log_m) ** 2)


def price_scenarios(products: pd.DataFrame, band: float = 0.10, n_points: int = 5,
                    cost_ratio: float | None = None) -> pd.DataFrame:
    """Expected units, revenue and margin per day at `n_points` prices evenly across
    [1 - band, 1 + band] x current price, for every product, and the recommendation.

    products: product_id, category_l1, current_price, units_per_day, revenue_per_day,
    elasticity, std_error (demand elasticity ~ N(elasticity, std_error^2)), and
    elasticity_source. Units at multiplier m are units_per_day x m ** e (constant
    elasticity over the band); "expected" values average over the elasticity's
    distribution (lognormal moment), the 95% intervals are the values at the ends of the
    elasticity's interval (every figure is monotone in e). The objective is revenue, or
    margin with unit cost = cost_ratio x current price. The best price maximises the
    expected objective; it is recommended only when the 95% interval of its gain over
    the current price excludes 0, else the recommendation is "keep". Products without an
    elasticity, its standard error or a positive price get no row. Returns one row per
    product and price (see _RECOMMENDATION_COLUMNS)."""
    if cost_ratio is not None and not 0.0 <= float(cost_ratio) < 1.0:
        raise ValueError("cost_ratio must be in [0, 1) or None")
    if n_points < 3 or n_points % 2 == 0:
        raise ValueError("n_points must be odd and at least 3 (the current price is one)")
    # no interval, no recommendation: a product without a standard error gets no row
    df = products.loc[products["elasticity"].notna() & products["std_error"].notna()
                      & (products["current_price"] > 0)]
    grid = 1.0 + band * np.linspace(-1.0, 1.0, n_points)
    n = len(df)
    rows = df.loc[df.index.repeat(n_points)].reset_index(drop=True)
    m = np.tile(grid, n)
    e = rows["elasticity"].to_numpy(dtype=np.float64)
    sd = rows["std_error"].to_numpy(dtype=np.float64)
    lo, hi = e - Z95 * sd, e + Z95 * sd
    price = rows["current_price"].to_numpy(dtype=np.float64)
    units = rows["units_per_day"].to_numpy(dtype=np.float64)
    c = 0.0 if cost_ratio is None else float(cost_ratio)
    rows["price_change"] = np.round(m - 1.0, 6)
    rows["candidate_price"] = np.round(price * m, 2)
    rows["elasticity_ci_low"], rows["elasticity_ci_high"] = lo, hi
    ends = (units * m ** lo, units * m ** hi)
    rows["expected_units_per_day"] = units * _lognormal_power(m, e, sd)
    rows["expected_units_per_day_low"] = np.minimum(*ends)
    rows["expected_units_per_day_high"] = np.maximum(*ends)
    for name, unit_value in (("revenue", price * m), ("margin", price * (m - c))):
        rows[f"expected_{name}_per_day"] = unit_value * rows["expected_units_per_day"]
        rows[f"expected_{name}_per_day_low"] = unit_value * rows["expected_units_per_day_low"]
        rows[f"expected_{name}_per_day_high"] = (unit_value
                                                 * rows["expected_units_per_day_high"])
    if cost_ratio is None:
        rows[[f"expected_margin_per_day{end}" for end in ("", "_low", "_high")]] = np.nan
    objective = "revenue" if cost_ratio is None else "margin"
    now = (price * (1.0 - c)) * units  # the objective at the current price (m = 1)
    rows["objective"] = objective
    rows["expected_gain_per_day"] = rows[f"expected_{objective}_per_day"] - now
    rows["gain_ci_low"] = rows[f"expected_{objective}_per_day_low"] - now
    rows["gain_ci_high"] = rows[f"expected_{objective}_per_day_high"] - now
    gain = rows["expected_gain_per_day"].to_numpy().reshape(n, n_points)
    best = np.argmax(gain, axis=1) if n else np.zeros(0, dtype=np.int64)
    is_best = np.zeros((n, n_points), dtype=bool)
    is_best[np.arange(n), best] = True
    clear = rows["gain_ci_low"].to_numpy().reshape(n, n_points)[np.arange(n), best] > 0
    chosen = np.where(clear, best, n_points // 2)
    is_recommended = np.zeros((n, n_points), dtype=bool)
    is_recommended[np.arange(n), chosen] = True
    rows["is_best"] = is_best.ravel()
    rows["is_recommended"] = is_recommended.ravel()
    action = np.where(~clear, "keep", np.where(grid[best] > 1.0, "raise", "lower"))
    rows["recommendation"] = np.repeat(action, n_points)
    rows["recommended_price"] = np.repeat(np.round(df["current_price"].to_numpy()
                                                   * grid[chosen], 2), n_points)
    rows["is_optimum_at_band_edge"] = np.repeat((best == 0) | (best == n_points - 1),
                                                n_points)
    return rows[list(_RECOMMENDATION_COLUMNS)].sort_values(
        ["product_id", "price_change"], ignore_index=True)


def price_recommendations(model: ElasticityModel, current: pd.DataFrame,
                          band: float = 0.10, cost_ratio: float | None = None,
                          n_points: int = 5) -> pd.DataFrame:
    """`price_scenarios` for every product with recent purchases at a known price.

    current: product_id, category_l1, current_price, units_per_day, revenue_per_day (one
    row per product). The elasticity is the product's pooled demand elasticity
    (elasticity_source 'product'); a product the model has not seen (e.g. a single
    price in the fit) gets its category's, with the products' spread around it added to
    its uncertainty ('category'). Products of a category without an estimate get no
    row."""
    est = product_elasticity_frame(model)[["product_id", "elasticity", "std_error"]]
    cur = current.loc[current["units_per_day"] > 0, [
        "product_id", "category_l1", "current_price", "units_per_day",
        "revenue_per_day"]].copy()
    cur["category_l1"] = cur["category_l1"].fillna(UNKNOWN_CATEGORY).astype(str)
    df = cur.merge(est, on="product_id", how="left")
    df["elasticity_source"] = np.where(df["elasticity"].notna(), "product", "category")
    cat = model.categories.set_index("category_l1")
    fill = df["elasticity"].isna()
    spread = (cat["std_error"] ** 2 + cat["traffic_tau"].fillna(0.0) ** 2
              + cat["conversion_tau"].fillna(0.0) ** 2) ** 0.5
    df.loc[fill, "elasticity"] = df.loc[fill, "category_l1"].map(cat["elasticity"])
    df.loc[fill, "std_error"] = df.loc[fill, "category_l1"].map(spread)
    out = price_scenarios(df, band, n_points, cost_ratio)
    out["category_l1"] = out["category_l1"].astype(_TEXT)
    out["elasticity_source"] = out["elasticity_source"].astype(_TEXT)
    out["objective"] = out["objective"].astype(_TEXT)
    out["recommendation"] = out["recommendation"].astype(_TEXT)
    return out


# --------------------------------------------------------------------------------------
# Empty score tables (a skipped run)
# --------------------------------------------------------------------------------------

# Arrow text keeps an empty column typed (VARCHAR) in DuckDB.
_TEXT = pd.ArrowDtype(pa.string())
_ESTIMATE = ("elasticity", "std_error", "ci_low", "ci_high")
_CATEGORY_COLUMNS = {
    "category_l1": _TEXT,
    **{c: "float64" for c in _ESTIMATE},
    **{f"{kind}_{c}": "float64" for kind in ("traffic", "conversion") for c in _ESTIMATE},
    "traffic_conversion_covariance": "float64", "traffic_tau": "float64",
    "conversion_tau": "float64",
    "placebo_elasticity": "float64", "placebo_std_error": "float64",
    "placebo_traffic_elasticity": "float64", "placebo_traffic_std_error": "float64",
    "placebo_conversion_elasticity": "float64", "placebo_conversion_std_error": "float64",
    "n_products": "int64", "n_cells": "int64", "views": "int64", "purchases": "int64",
    "has_enough_data": "bool"}
_PRODUCT_COLUMNS = {
    "product_id": "int64", "category_l1": _TEXT, "n_cells": "int64", "n_prices": "int64",
    "views": "int64", "purchases": "int64",
    **{f"{kind}_{c}": "float64" for kind in ("traffic", "conversion")
       for c in ("elasticity", "std_error", "own_weight", "pooled_elasticity")},
    **{c: "float64" for c in _ESTIMATE}, "category_elasticity": "float64"}
_RECOMMENDATION_COLUMNS = {
    "product_id": "int64", "category_l1": _TEXT, "current_price": "float64",
    "units_per_day": "float64", "revenue_per_day": "float64", "elasticity": "float64",
    "elasticity_ci_low": "float64", "elasticity_ci_high": "float64",
    "elasticity_source": _TEXT, "price_change": "float64", "candidate_price": "float64",
    **{f"expected_{name}_per_day{end}": "float64"
       for name in ("units", "revenue", "margin") for end in ("", "_low", "_high")},
    "objective": _TEXT, "expected_gain_per_day": "float64", "gain_ci_low": "float64",
    "gain_ci_high": "float64", "is_best": "bool", "is_recommended": "bool",
    "recommendation": _TEXT, "recommended_price": "float64",
    "is_optimum_at_band_edge": "bool"}


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
