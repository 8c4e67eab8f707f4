"""Check that the planted price elasticities are recoverable from the event files.

Fits, per category_l1, the log-log demand model with product and day fixed effects

    E[purchases_jd] = views_jd * exp(alpha_j + gamma_d + beta * log(price_jd))

by Poisson pseudo-maximum likelihood (the standard estimator for log-log models with zero
counts), on product-day cells with views and a positive price. beta estimates the planted
elasticity. This is a validation helper for the generator (docs/generator.md reports its
result), not a model of the ML pipeline.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np

from ml.profile import expand, source_sql


def product_day_cells(paths, products_parquet: str | Path,
                      exclude_users_parquet: str | Path | None = None) -> dict[str, np.ndarray]:
    """Aggregate events to (category_l1, product, day): views, purchases (exact duplicates
    removed), mean log price. category_l1 comes from the truth products table ('unknown'
    for products without category_code). Users listed in `exclude_users_parquet` (e.g. the
    truth actors table) are left out."""
    files = expand(paths if isinstance(paths, (list, tuple)) else [paths])
    con = duckdb.connect()
    skip = (f"where user_id not in (select user_id from read_parquet('{exclude_users_parquet}'))"
            if exclude_users_parquet else "")
    try:
        rows = con.execute(f"""
            with ev as (select distinct * from ({source_sql(files)}) {skip}),
                 p as (select product_id, category_l1 from read_parquet('{products_parquet}'))
            select p.category_l1, ev.product_id, ev.event_time::date as day,
                   count(*) filter (where event_type = 'view') as views,
                   count(*) filter (where event_type = 'purchase') as purchases,
                   avg(ln(price)) filter (where event_type = 'view') as log_price
            from ev join p using (product_id)
            where price > 0
            group by all
            having count(*) filter (where event_type = 'view') > 0
        """).fetchnumpy()
    finally:
        con.close()
    return rows


def ppml_two_way(y: np.ndarray, x: np.ndarray, offset: np.ndarray, g1: np.ndarray,
                 g2: np.ndarray, iterations: int = 200, tol: float = 1e-8
                 ) -> tuple[float, float]:
    """Poisson regression of y on x with fixed effects for groups g1 and g2 (0-based ints)
    and a log exposure offset. Returns (beta, standard error). Groups whose y are all zero
    carry no information and are dropped."""
    keep1 = np.bincount(g1, weights=y)[g1] > 0
    keep2 = np.bincount(g2, weights=y)[g2] > 0
    k = keep1 & keep2
    y, x, offset = y[k], x[k], offset[k]
    g1 = np.unique(g1[k], return_inverse=True)[1]
    g2 = np.unique(g2[k], return_inverse=True)[1]
    if len(y) == 0 or y.sum() == 0:
        return float("nan"), float("nan")
    n1, n2 = g1.max() + 1, g2.max() + 1
    sy1 = np.bincount(g1, weights=y, minlength=n1)
    sy2 = np.bincount(g2, weights=y, minlength=n2)
    a = np.zeros(n1)
    c = np.zeros(n2)
    beta = 0.0
    for _ in range(iterations):
        for _ in range(3):
            eta = c[g2] + beta * x + offset
            a = np.log(sy1) - np.log(np.bincount(g1, weights=np.exp(eta), minlength=n1))
            eta = a[g1] + beta * x + offset
            c = np.log(sy2) - np.log(np.bincount(g2, weights=np.exp(eta), minlength=n2))
        mu = np.exp(a[g1] + c[g2] + beta * x + offset)
        # partial out the product effect from x (weighted by mu) for the Newton step
        xm = np.bincount(g1, weights=mu * x, minlength=n1) / np.bincount(g1, weights=mu,
                                                                           minlength=n1)
        xt = x - xm[g1]
        info = float(np.sum(mu * xt * xt))
        step = float(np.sum((y - mu) * xt)) / info if info > 0 else 0.0
        beta += step
        if abs(step) < tol:
            break
    return beta, (1.0 / np.sqrt(info) if info > 0 else float("nan"))


def estimate_elasticities(paths, products_parquet: str | Path,
                          exclude_users_parquet: str | Path | None = None
                          ) -> dict[str, dict[str, float]]:
    """{category_l1: {"beta", "se", "purchases", "cells"}} from the event files."""
    cells = product_day_cells(paths, products_parquet, exclude_users_parquet)
    out = {}
    l1 = cells["category_l1"].astype(str)
    for name in sorted(set(l1)):
        m = l1 == name
        prod = np.unique(cells["product_id"][m], return_inverse=True)[1]
        day = np.unique(cells["day"][m], return_inverse=True)[1]
        y = cells["purchases"][m].astype(np.float64)
        beta, se = ppml_two_way(y, cells["log_price"][m].astype(np.float64),
                                np.log(cells["views"][m].astype(np.float64)), prod, day)
        out[name] = {"beta": beta, "se": se, "purchases": float(y.sum()),
                     "cells": float(m.sum())}
    return out
