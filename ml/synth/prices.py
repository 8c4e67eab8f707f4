"""Price paths: every product's price on every day of the window.

Prices change only at 00:00 UTC. A session sees the prices of the day it started (so the
price that drove a purchase decision is exactly the price in the purchase row).

* base_price (truth) is the product's reference price; the path is base * m(day).
* "dynamic" products (popular ones more often) reprice a few times per 30 days; each change
  moves log m by +-U(price_step), reflected so that m stays near 1.
* on a sale day a share of products (again popular ones more often) is discounted.
* m is kept inside `price_band`, prices inside [min_price, max_price].
* zero-price glitches: a few (product, day) pairs *display* 0.00 while the purchase
  decision still uses the nominal price (a display error, as the real files' zero prices).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.synth.catalog import Catalog
from ml.synth.config import SynthConfig
from ml.synth.timeline import Timeline


@dataclass(frozen=True)
class Prices:
    """Dense (product, day) price tables and their run-length segments.

    nominal[j, d]: price in cents that drives decisions; shown[j, d]: price displayed in
    events (0 on a glitch day); run[j, d]: index of the constant-price segment, used both as
    the truth price-path row and as the formatting key of the product's CSV fields.
    """

    nominal: np.ndarray  # int32 (P, D)
    shown: np.ndarray  # int32 (P, D)
    run: np.ndarray  # int32 (P, D)
    run_product: np.ndarray  # int32 per run
    run_first_day: np.ndarray  # int32 per run
    run_last_day: np.ndarray  # int32 per run (inclusive)
    run_shown: np.ndarray  # int32 cents displayed
    run_nominal: np.ndarray
    run_sale: np.ndarray  # bool
    is_dynamic: np.ndarray  # bool per product
    on_sale: np.ndarray  # bool per product


def _reflect(x: np.ndarray, bound: float) -> np.ndarray:
    """Fold x into [-bound, bound] by reflection (a triangle wave), keeping step sizes."""
    period = 4 * bound
    y = np.mod(x + bound, period)
    return np.where(y <= 2 * bound, y - bound, 3 * bound - y)


def make_prices(cfg: SynthConfig, cat: Catalog, tl: Timeline,
                rng: np.random.Generator) -> Prices:
    """Price tables for the window (pure given `rng`)."""
    P, D = cat.n_products, tl.days
    # popularity percentile within the product's top-level category (1 = most popular)
    rank = np.empty(P)
    for lo, hi in zip(cat.l1_lo, cat.l1_hi):
        if hi > lo:
            rank[lo + np.argsort(cat.view_marginal[lo:hi])] = np.linspace(0.0, 1.0, hi - lo)
    dyn_p = cfg.dynamic_share_min + (cfg.dynamic_share_max - cfg.dynamic_share_min) * rank ** 3
    is_dyn = rng.random(P) < dyn_p
    on_sale = rng.random(P) < cfg.sale_product_share * (0.15 + 0.85 * rank ** 2)

    logm = np.zeros((P, D))
    dyn = np.nonzero(is_dyn)[0]
    if D > 1 and len(dyn):
        k = np.maximum(1, rng.poisson(cfg.price_changes_per_30d * D / 30.0, len(dyn)))
        rows = np.repeat(dyn, k)
        days = rng.integers(1, D, len(rows))
        lo, hi = cfg.price_step
        step = rng.uniform(lo, hi, len(rows)) * rng.choice([-1.0, 1.0], len(rows))
        inc = np.zeros((P, D))
        np.add.at(inc, (rows, days), step)
        start = rng.uniform(-0.08, 0.08, len(dyn))
        inc[dyn, 0] = start
        logm[dyn] = _reflect(np.cumsum(inc[dyn], axis=1), cfg.price_walk_bound)
    sale_days = list(tl.sale_days)
    sale_mask = np.zeros((P, D), dtype=bool)
    if sale_days:
        idx = np.nonzero(on_sale)[0]
        disc = np.log(rng.uniform(*cfg.sale_discount, (len(idx), len(sale_days))))
        for n, d in enumerate(sale_days):
            logm[idx, d] += disc[:, n]
            sale_mask[idx, d] = True
    lo_b, hi_b = cfg.price_band
    m = np.clip(np.exp(logm), lo_b, hi_b)
    nominal = np.round(cat.base_cents[:, None] * m)
    nominal = np.clip(nominal, round(cfg.min_price * 100), round(cfg.max_price * 100))
    nominal = nominal.astype(np.int32)

    # Zero-price glitches: random (product, day) pairs until their expected rows reach
    # the target share.
    shown = nominal.copy()
    if cfg.price_zero_row_share > 0:
        dayw = np.diff(tl.browse.cum[::24])
        dayw = dayw / dayw.sum()
        n_try = 4 * P
        cj = rng.integers(0, P, n_try)
        cd = rng.integers(0, D, n_try)
        share = cat.view_marginal[cj] * dayw[cd]
        keep = np.cumsum(share) <= cfg.price_zero_row_share
        shown[cj[keep], cd[keep]] = 0

    # Constant-price runs per product (a new run whenever the shown or nominal price or
    # the sale flag changes from one day to the next).
    change = np.ones((P, D), dtype=bool)
    if D > 1:
        change[:, 1:] = ((shown[:, 1:] != shown[:, :-1]) | (nominal[:, 1:] != nominal[:, :-1])
                         | (sale_mask[:, 1:] != sale_mask[:, :-1]))
    flat = change.ravel()
    run = (np.cumsum(flat) - 1).astype(np.int32).reshape(P, D)
    starts = np.nonzero(flat)[0]
    n_runs = len(starts)
    run_product = (starts // D).astype(np.int32)
    run_first = (starts % D).astype(np.int32)
    ends = np.append(starts[1:], P * D) - 1
    run_last = np.where(ends // D == run_product, ends % D, D - 1).astype(np.int32)
    return Prices(nominal=nominal, shown=shown, run=run, run_product=run_product,
                  run_first_day=run_first, run_last_day=run_last,
                  run_shown=shown.ravel()[starts], run_nominal=nominal.ravel()[starts],
                  run_sale=sale_mask.ravel()[starts], is_dynamic=is_dyn, on_sale=on_sale)
