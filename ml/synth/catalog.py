"""Product catalog: category tree, brands, products, popularity and the product sampler.

A product always has the same category_id, category_code and brand (nulls are product
attributes). Products are stored in one global order sorted by (category_l1, major-brand
group), so that "a product of top-level category c" and "a product of c made by brand b" are
contiguous ranges; each range has a Walker alias table, which makes drawing millions of
products one vectorised O(1) lookup each.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.synth.config import SynthConfig
from ml.synth.population import DirichletSampler
from ml.synth.tables import (CATEGORY_CODES, L1_PURCHASE_SHARE, L1_VIEW_SHARE, MAJOR_BRANDS,
                             NULL_CATEGORY_IDS, NULL_L1, NULL_MEDIAN_PRICE, NULL_PRICE_SD,
                             REAL_BRANDS, SMARTPHONE_BRANDS)

SMARTPHONE = "electronics.smartphone"


@dataclass(frozen=True)
class Catalog:
    """Categories, brands and products. Arrays are indexed by product position.

    p_view / p_intent: probability of the product given its top-level category (sums to 1
    within each category_l1) for a browsing view and for a purchase-intent pick.
    alias_view / alias_intent: Walker alias tables (prob, alias) over each category_l1 range
    and over each (category_l1, major brand) range, for O(1) vectorised sampling.
    """

    l1_names: tuple[str, ...]
    l1_view_share: np.ndarray
    l1_intent_tilt: np.ndarray  # tau: P(intent in c) ∝ preference_c * tau_c
    elasticity: np.ndarray  # per category_l1
    cat_id: np.ndarray  # int64 per category
    cat_code: tuple[str | None, ...]
    cat_l1: np.ndarray  # int8 per category
    cat_median: np.ndarray  # median base price per category
    brand_names: tuple[str, ...]
    major_names: tuple[str, ...]
    major_pref_base: np.ndarray  # mean preference weight of each major brand
    product_id: np.ndarray  # int64
    product_cat: np.ndarray  # int32
    product_l1: np.ndarray  # int8
    product_brand: np.ndarray  # int32, -1 = no brand
    product_major: np.ndarray  # int8, index into major_names, K = not a major brand
    base_cents: np.ndarray  # int64 base price in cents
    p_view: np.ndarray
    p_intent: np.ndarray
    alias_view: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # see _alias_tables
    alias_intent: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    l1_lo: np.ndarray  # first product position of each l1
    l1_hi: np.ndarray  # one past the last
    grp_lo: np.ndarray  # (L, K) first product position of (l1, major brand), -1 if empty
    grp_hi: np.ndarray
    view_marginal: np.ndarray  # expected share of all views that fall on each product

    @property
    def n_products(self) -> int:
        return len(self.product_id)

    @property
    def n_l1(self) -> int:
        return len(self.l1_names)

    @property
    def n_major(self) -> int:
        return len(self.major_names)

    def sample(self, l1: np.ndarray, major: np.ndarray, u: np.ndarray, v: np.ndarray,
               intent: bool = False) -> np.ndarray:
        """Draw products: for each i a product of category l1[i], of major brand major[i]
        when major[i] >= 0 and such products exist, with probability proportional to its
        view (or intent) weight. `u`, `v` are independent uniforms in [0, 1). Vectorised:
        one alias-table lookup per draw."""
        lo_t, n_t, prob, alias = self.alias_intent if intent else self.alias_view
        g = np.asarray(l1, dtype=np.int64) * (self.n_major + 1) + (np.asarray(major) + 1)
        lo = lo_t[g]
        n = n_t[g]
        pos = lo + np.minimum((u * n).astype(np.int64), n - 1)
        return np.where(v < prob[pos], pos % self.n_products, alias[pos]).astype(np.int32)


def _alias(p: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of weights `p` (any positive scale); aliases are returned as
    positions shifted by `offset`. Sequential construction, O(n)."""
    n = len(p)
    s = (p * (n / p.sum())).tolist()
    prob = [1.0] * n
    alias = list(range(n))
    small = [i for i, x in enumerate(s) if x < 1.0]
    large = [i for i, x in enumerate(s) if x >= 1.0]
    while small and large:
        i = small.pop()
        j = large[-1]
        prob[i] = s[i]
        alias[i] = j
        s[j] -= 1.0 - s[i]
        if s[j] < 1.0:
            large.pop()
            small.append(j)
    return np.array(prob), np.array(alias, dtype=np.int64) + offset


def _alias_tables(w: np.ndarray, l1_lo: np.ndarray, l1_hi: np.ndarray, grp_lo: np.ndarray,
                  grp_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Alias tables of weights `w` over every l1 range (slots [0, P)) and every (l1, major)
    range (slots [P, 2P)), plus per group g = l1 * (K + 1) + major + 1 the first slot and
    size (an empty brand group falls back to its l1 range). Aliases are product positions."""
    n = len(w)
    L, K = grp_lo.shape
    prob = np.ones(2 * n)
    alias = np.concatenate([np.arange(n), np.arange(n)]).astype(np.int64)
    lo_t = np.zeros(L * (K + 1), dtype=np.int64)
    n_t = np.ones(L * (K + 1), dtype=np.int64)
    for l1, (lo, hi) in enumerate(zip(l1_lo, l1_hi)):
        if hi > lo:
            prob[lo:hi], alias[lo:hi] = _alias(w[lo:hi], int(lo))
        lo_t[l1 * (K + 1):(l1 + 1) * (K + 1)] = lo
        n_t[l1 * (K + 1):(l1 + 1) * (K + 1)] = max(hi - lo, 1)
        for m in range(K):
            a, b = grp_lo[l1, m], grp_hi[l1, m]
            if a >= 0:
                prob[n + a:n + b], alias[n + a:n + b] = _alias(w[a:b], int(a))
                lo_t[l1 * (K + 1) + m + 1] = n + a
                n_t[l1 * (K + 1) + m + 1] = b - a
    return lo_t, n_t, prob, alias


def intent_tilt(view_share: np.ndarray, purchase_share: np.ndarray, concentration: float,
                iterations: int = 30) -> np.ndarray:
    """tau such that E_w[w * tau / sum(w * tau)] = purchase_share for w ~ Dirichlet(
    concentration * view_share): intents pick category c with probability proportional to
    preference * tau, and the per-user normalisation pulls shares back towards the view
    shares, so tau is found by fixed-point iteration on a fixed Monte Carlo sample."""
    w = DirichletSampler(concentration * view_share).sample(
        100_000, np.random.default_rng(20191117)).T.astype(np.float64)
    tau = purchase_share / view_share
    for _ in range(iterations):
        p = w * tau
        got = (p / p.sum(axis=1, keepdims=True)).mean(axis=0)
        tau = tau * purchase_share / got
    return tau / tau.mean()


def _brand_names(n: int, rng: np.random.Generator) -> list[str]:
    """`n` distinct lower-case brand names: the real REES46 ones first, then made-up ones
    (2-3 consonant-vowel syllables and an optional ending), drawn in vectorised batches."""
    names = list(dict.fromkeys(REAL_BRANDS))
    seen = set(names)
    cons = np.array(list("bcdfgklmnprstvz"))
    vow = np.array(list("aeiou"))
    ends = np.array(["", "", "", "x", "n", "s", "r", "l", "-pro", "tek", "ix", "on"])
    while len(names) < n:
        m = 2 * (n - len(names)) + 16
        k = rng.integers(2, 4, m)
        c = cons[rng.integers(0, len(cons), (m, 3))]
        v = vow[rng.integers(0, len(vow), (m, 3))]
        e = ends[rng.integers(0, len(ends), m)]
        for i in range(m):
            word = "".join(c[i, j] + v[i, j] for j in range(k[i])) + e[i]
            if word not in seen:
                seen.add(word)
                names.append(word)
                if len(names) >= n:
                    break
    return names[:max(n, len(SMARTPHONE_BRANDS) + len(MAJOR_BRANDS))]


def _categories(rng: np.random.Generator) -> tuple[list[str | None], np.ndarray, np.ndarray,
                                                   np.ndarray, np.ndarray, np.ndarray]:
    """The category tree: per category_id its code, l1 index, share of all views, median
    price and log-price sd. Codes with several category_ids split their traffic."""
    l1_names = list(L1_VIEW_SHARE)
    codes, l1s, shares, medians, sds = [], [], [], [], []
    by_l1: dict[str, float] = {}
    for code, w, _, _, n_ids in CATEGORY_CODES:
        by_l1[code.split(".")[0]] = by_l1.get(code.split(".")[0], 0.0) + w
    for code, w, med, sd, n_ids in CATEGORY_CODES:
        l1 = code.split(".")[0]
        split = rng.dirichlet(np.full(n_ids, 2.0)) if n_ids > 1 else np.ones(1)
        for part in split:
            codes.append(code)
            l1s.append(l1_names.index(l1))
            shares.append(L1_VIEW_SHARE[l1] * w / by_l1[l1] * part)
            medians.append(med * float(np.exp(rng.normal(0, 0.15))) if n_ids > 1 else med)
            sds.append(sd)
    zipf = 1.0 / (np.arange(NULL_CATEGORY_IDS) + 3.0) ** 1.15
    zipf /= zipf.sum()
    for z in zipf:
        codes.append(None)
        l1s.append(0)
        shares.append(L1_VIEW_SHARE[NULL_L1] * z)
        medians.append(NULL_MEDIAN_PRICE * float(np.exp(rng.normal(0, 0.9))))
        sds.append(NULL_PRICE_SD * float(np.exp(rng.normal(0, 0.2))))
    # 19-digit ids like 2053013555631882655, distinct, in REES46's range.
    span = 2_175_000_000_000_000_000 - 2_053_013_552_000_000_000
    ids = 2_053_013_552_000_000_000 + np.unique(rng.integers(0, span, 2 * len(codes)))
    ids = rng.permutation(rng.permutation(ids)[:len(codes)])
    return (codes, np.array(l1s, dtype=np.int8), np.array(shares), np.array(medians),
            np.array(sds), ids.astype(np.int64))


def make_catalog(cfg: SynthConfig, rng: np.random.Generator) -> Catalog:
    """Build the catalog for `cfg` from `rng` (deterministic for a given stream)."""
    l1_names = tuple(L1_VIEW_SHARE)
    L = len(l1_names)
    view_share = np.array([L1_VIEW_SHARE[c] for c in l1_names])
    view_share /= view_share.sum()
    purchase_share = np.array([L1_PURCHASE_SHARE[c] for c in l1_names])
    tilt = intent_tilt(view_share, purchase_share / purchase_share.sum(), cfg.l1_concentration)
    lo_e, hi_e = cfg.elasticity_range
    elasticity = np.round(rng.uniform(lo_e, hi_e, L), 2)

    codes, cat_l1, cat_share, cat_med, cat_sd, cat_ids = _categories(rng)
    n_cat = len(codes)

    # Products per category grow sub-linearly with its traffic.
    n_prod = cfg.n_products
    raw = cat_share ** 0.6
    n_c = np.maximum(1, np.floor(n_prod * raw / raw.sum()).astype(np.int64))
    total = int(n_c.sum())
    prod_cat = np.repeat(np.arange(n_cat, dtype=np.int32), n_c)
    prod_l1 = cat_l1[prod_cat]

    # Popularity: lognormal within category, scaled to the category's view share.
    pop = np.exp(rng.normal(0.0, cfg.popularity_sigma, total))
    cat_sum = np.bincount(prod_cat, weights=pop, minlength=n_cat)
    p_global = pop / cat_sum[prod_cat] * cat_share[prod_cat]

    # Base prices: lognormal around the category median, within the allowed band.
    base = cat_med[prod_cat] * np.exp(rng.normal(0.0, 1.0, total) * cat_sd[prod_cat])
    base = np.clip(base, cfg.min_price / cfg.price_band[0],
                   cfg.max_price / cfg.price_band[1] * 1.25)
    base_cents = np.round(base * 100).astype(np.int64)

    # Brands.
    n_brands = max(80, int(round(cfg.brands_full * (n_prod / cfg.products_full) ** 0.85)))
    brand_names = _brand_names(n_brands, rng)
    major_names = tuple(MAJOR_BRANDS)
    name_idx = {b: i for i, b in enumerate(brand_names)}
    bw = 1.0 / (np.arange(len(brand_names)) + 8.0) ** cfg.brand_zipf
    # major and smartphone brands only appear where they belong (added below)
    for b in set(MAJOR_BRANDS) | set(SMARTPHONE_BRANDS):
        bw[name_idx[b]] = 0.0
    prod_brand = np.empty(total, dtype=np.int32)
    starts = np.concatenate([[0], np.cumsum(n_c)])
    for c in range(n_cat):
        k = int(n_c[c])
        if k == 0:
            continue
        code = codes[c]
        l1 = l1_names[cat_l1[c]]
        if code == SMARTPHONE:
            pool = np.array([name_idx[b] for b in SMARTPHONE_BRANDS])
            w = np.array(list(SMARTPHONE_BRANDS.values()))
        else:
            size = int(np.clip(round(k / cfg.products_per_brand_pool), 2, 1000))
            pool = rng.choice(len(brand_names), size=min(size, len(brand_names)), replace=False,
                              p=bw / bw.sum())
            w = bw[pool].copy()
            majors = [name_idx[m] for m, ls in MAJOR_BRANDS.items() if l1 in ls]
            if majors and code is not None:
                pool = np.concatenate([pool, majors])
                w = np.concatenate([w, np.full(len(majors), w.sum() * 0.12)])
            pool, first = np.unique(pool, return_index=True)
            w = w[first]
        prod_brand[starts[c]:starts[c + 1]] = rng.choice(pool, size=k, p=w / w.sum())

    major_of_brand = np.full(len(brand_names), len(major_names), dtype=np.int8)
    for i, m in enumerate(major_names):
        major_of_brand[name_idx[m]] = i
    prod_major = major_of_brand[prod_brand]

    # Global product order: by (l1, major group), random within.
    order = np.lexsort((rng.random(total), prod_major, prod_l1))
    prod_cat, prod_l1, prod_major = prod_cat[order], prod_l1[order], prod_major[order]
    prod_brand, base_cents, p_global = prod_brand[order], base_cents[order], p_global[order]

    l1_mass = np.bincount(prod_l1, weights=p_global, minlength=L)
    p_view = p_global / l1_mass[prod_l1]
    phone = np.array([codes[c] == SMARTPHONE for c in range(n_cat)])[prod_cat]
    price_tilt = np.where(phone, cfg.smartphone_price_tilt, cfg.intent_price_tilt)
    tilt_w = p_view * (base_cents / (cat_med[prod_cat] * 100.0)) ** price_tilt
    tilt_w = np.where(phone, tilt_w * cfg.smartphone_intent_boost, tilt_w)
    p_intent = tilt_w / np.bincount(prod_l1, weights=tilt_w, minlength=L)[prod_l1]

    l1_lo = np.searchsorted(prod_l1, np.arange(L), side="left")
    l1_hi = np.searchsorted(prod_l1, np.arange(L), side="right")
    K = len(major_names)
    key = prod_l1.astype(np.int64) * (K + 1) + prod_major
    grp_lo = np.full((L, K), -1, dtype=np.int64)
    grp_hi = np.full((L, K), -1, dtype=np.int64)
    for l1 in range(L):
        for m in range(K):
            k = l1 * (K + 1) + m
            a, b = np.searchsorted(key, k, "left"), np.searchsorted(key, k, "right")
            if b > a:
                grp_lo[l1, m], grp_hi[l1, m] = a, b

    # Mean brand preference: major brands weighted by their view mass.
    major_mass = np.bincount(prod_major, weights=p_global, minlength=K + 1)[:K]
    major_pref_base = major_mass / major_mass.sum()

    # Expected view share per product including brand-loyal picks (for the null-brand pick).
    rho = cfg.brand_loyalty
    marg = (1 - rho) * p_view
    for l1 in range(L):
        lost = 0.0
        for m in range(K):
            a, b = grp_lo[l1, m], grp_hi[l1, m]
            if a < 0:
                lost += major_pref_base[m]
                continue
            seg = p_view[a:b]
            marg[a:b] += rho * major_pref_base[m] * seg / seg.sum()
        a, b = l1_lo[l1], l1_hi[l1]
        marg[a:b] += rho * lost * p_view[a:b]
    marg = marg * view_share[prod_l1]
    marg /= marg.sum()

    # Null brands: a random set of non-major products whose expected view share is the
    # published null-brand share (choosing by expected rows, not by product count, keeps
    # the row share on target although popularity is heavy-tailed).
    cand = rng.permutation(np.nonzero(prod_major == K)[0])
    cum = np.cumsum(marg[cand])
    take = cand[cum <= cfg.null_brand_share]
    prod_brand[take] = -1

    # Product ids: each category owns a run of 10k-blocks in [1e6, 1e8), in random order.
    blocks = np.ceil(n_c * 1.6 / 10_000).astype(np.int64)
    free = max(9_900 - int(blocks.sum()), 0)
    gaps = np.floor(rng.dirichlet(np.ones(n_cat)) * free).astype(np.int64)
    first_block = np.empty(n_cat, dtype=np.int64)
    pos = 100
    for c in rng.permutation(n_cat):
        pos += int(gaps[c])
        first_block[c] = pos
        pos += int(blocks[c])
    prod_id = np.empty(total, dtype=np.int64)
    by_cat = np.argsort(prod_cat, kind="stable")
    cat_start = np.searchsorted(prod_cat[by_cat], np.arange(n_cat + 1))
    for c in range(n_cat):
        members = by_cat[cat_start[c]:cat_start[c + 1]]
        if len(members) == 0:
            continue
        offs = np.sort(rng.choice(int(blocks[c]) * 10_000, size=len(members), replace=False))
        prod_id[members] = first_block[c] * 10_000 + offs

    return Catalog(
        l1_names=l1_names, l1_view_share=view_share, l1_intent_tilt=tilt,
        elasticity=elasticity, cat_id=cat_ids, cat_code=tuple(codes), cat_l1=cat_l1,
        cat_median=cat_med, brand_names=tuple(brand_names), major_names=major_names,
        major_pref_base=major_pref_base, product_id=prod_id, product_cat=prod_cat,
        product_l1=prod_l1, product_brand=prod_brand, product_major=prod_major,
        base_cents=base_cents, p_view=p_view, p_intent=p_intent,
        alias_view=_alias_tables(p_view, l1_lo, l1_hi, grp_lo, grp_hi),
        alias_intent=_alias_tables(p_intent, l1_lo, l1_hi, grp_lo, grp_hi),
        l1_lo=l1_lo, l1_hi=l1_hi, grp_lo=grp_lo, grp_hi=grp_hi, view_marginal=marg)
