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
* traffic: price moves a product's share of its category's views (ranking, price filters,
  comparison sites). A product j is drawn for a view with weight popularity x
  (nominal / base_price) ** t_j, t_j = the category's traffic elasticity + N(0, sd) per
  product; `sample_at_price` draws by rejection against a per-category bound.
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
    traffic_elasticity_l1: np.ndarray  # per category_l1
    traffic_elasticity: np.ndarray  # per product (the category's plus product noise)
    traffic_accept: np.ndarray  # float32 (P, D): traffic weight / its category's maximum


def traffic_weight(prices: Prices, cat: Catalog) -> np.ndarray:
    """(P, D) multiplier of every product's view weight, (nominal / base) ** t_j."""
    ratio = prices.nominal / cat.base_cents[:, None].astype(np.float64)
    return ratio ** prices.traffic_elasticity[:, None]


def _traffic(cfg: SynthConfig, cat: Catalog, nominal: np.ndarray, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Traffic elasticities (per category_l1, stratified over the range so that every seed
    has categories near both ends; per product with noise) and the acceptance table."""
    L = cat.n_l1
    lo, hi = cfg.traffic_elasticity_range
    strata = (rng.permutation(L) + rng.random(L)) / L
    t_l1 = np.round(hi - (hi - lo) * strata, 2)
    t = t_l1[cat.product_l1] + rng.normal(0.0, cfg.traffic_elasticity_product_sd,
                                          cat.n_products)
    weight = (nominal / cat.base_cents[:, None].astype(np.float64)) ** t[:, None]
    bound = np.zeros(L)
    np.maximum.at(bound, cat.product_l1, weight.max(axis=1))
    accept = (weight / bound[cat.product_l1][:, None]).astype(np.float32)
    return t_l1, t, accept


def sample_at_price(cat: Catalog, prices: Prices, l1: np.ndarray, major: np.ndarray,
                    day: np.ndarray, u: np.ndarray, v: np.ndarray, rng: np.random.Generator,
                    intent: bool = False, max_rounds: int = 60) -> np.ndarray:
    """`Catalog.sample` with every product's weight multiplied by its traffic weight on
    `day` (rejection: a draw is kept with probability traffic_accept[product, day]). A
    rejected draw is drawn again in the whole category: a brand-loyal shopper who finds
    the brand's product too dear looks across the category (redrawing inside the brand
    group would make a product that dominates its group immune to its own price). After
    max_rounds the last draw is kept (a share below 1e-9 at the planted ranges)."""
    prod = cat.sample(l1, major, u, v, intent=intent)
    todo = np.nonzero(rng.random(len(prod)) >= prices.traffic_accept[prod, day])[0]
    anywhere = np.full(len(prod), -1, dtype=np.int64)
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        n = len(todo)
        prod[todo] = cat.sample(l1[todo], anywhere[:n], rng.random(n), rng.random(n),
                                intent=intent)
        todo = todo[rng.random(n) >= prices.traffic_accept[prod[todo], day[todo]]]
    return prod


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
    t_l1, t, accept = _traffic(cfg, cat, nominal, rng)
    return Prices(nominal=nominal, shown=shown, run=run, run_product=run_product,
                  run_first_day=run_first, run_last_day=run_last,
                  run_shown=shown.ravel()[starts], run_nominal=nominal.ravel()[starts],
                  run_sale=sale_mask.ravel()[starts], is_dynamic=is_dyn, on_sale=on_sale,
                  traffic_elasticity_l1=t_l1, traffic_elasticity=t, traffic_accept=accept)
